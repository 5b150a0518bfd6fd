"""blurtools.losses"""
