"""The thin napari layer: translates between layers and the core."""
