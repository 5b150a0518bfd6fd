"""blurtools.weights"""
