"""blurtools.io"""
