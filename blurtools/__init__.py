"""blurtools: a toolchain for motion blur (synthesis, coded cameras, training, deblurring, video from blur, scoring)."""

__version__ = "0.1.0"
