"""The Qt-free, napari-free core: losses, model, sampling, training, tiled prediction, io.

Nothing here imports napari, Qt or magicgui (``tests/core/test_core_is_headless.py`` checks it).
"""
