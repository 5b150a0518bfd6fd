"""blurtools.data"""
