from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def blobs():
    """The shipped sample: (image (1, Y, X), scribbles, reference mask values 1..2)."""
    from napari_frugalseg.cli import sample_path
    from napari_frugalseg.core.io import read_array, read_image

    image = read_image(sample_path("blobs.tif"))
    scribbles = read_array(sample_path("blobs_annotations.tif")).astype(np.int32)
    truth = (read_array(sample_path("blobs_labeled.tif")) > 0).astype(np.int32) + 1
    return image, scribbles, truth
