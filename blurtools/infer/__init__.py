"""blurtools.infer"""
