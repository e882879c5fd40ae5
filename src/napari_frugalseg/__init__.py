"""napari-frugalseg: learn a segmentation network from a few scribbles."""

__version__ = "0.1.0"
