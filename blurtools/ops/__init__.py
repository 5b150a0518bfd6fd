"""blurtools.ops"""
