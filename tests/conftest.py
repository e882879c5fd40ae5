import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _nothing_lands_in_the_users_home(tmp_path_factory):
    """No test writes into the user's ~/.frugalseg: the run gets a home of its own, and a test
    that wrote there (e.g. autosaved after losing its private home) fails the run."""
    home = tmp_path_factory.mktemp("frugalseg-home")
    previous = os.environ.get("FRUGALSEG_HOME")
    os.environ["FRUGALSEG_HOME"] = str(home)
    yield
    if previous is None:
        del os.environ["FRUGALSEG_HOME"]
    else:
        os.environ["FRUGALSEG_HOME"] = previous
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert not written, f"tests wrote into the shared frugalseg home, not their own: {written[:5]}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def blobs():
    """The shipped sample: (image (1, Y, X), scribbles, reference mask values 1..2)."""
    from napari_frugalseg.core.io import read_array, read_image
    from napari_frugalseg.core.samples import demo_sample

    image_path, scribbles_path, truth = demo_sample()
    return read_image(image_path), read_array(scribbles_path).astype(np.int32), truth
