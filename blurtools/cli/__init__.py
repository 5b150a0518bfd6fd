"""blurtools.cli"""
