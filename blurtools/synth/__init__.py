"""blurtools.synth"""
