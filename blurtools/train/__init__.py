"""blurtools.train"""
