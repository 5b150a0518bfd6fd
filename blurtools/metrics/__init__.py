"""blurtools.metrics"""
