"""What every benchmark script shares: its command line with the path of the shared data."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from napari_frugalseg.core.config import ModelConfig, TrainConfig

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser showing the script's docstring, with ``--data`` (../shared/data)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    return p


def add_batch_options(p: argparse.ArgumentParser) -> None:
    """``--patch`` and ``--batch-size`` of the training steps, defaulting to the package's."""
    p.add_argument("--patch", type=int, default=ModelConfig.patch_size[0], help="in-plane patch side, px")
    p.add_argument("--batch-size", type=int, default=None,
                   help="patches per step (default: TrainConfig.batch_for)")


def add_deep_supervision_option(p: argparse.ArgumentParser) -> None:
    """``--deep-supervision W ...``, the package's weights by default; with no weight, off."""
    p.add_argument("--deep-supervision", type=float, nargs="*", default=TrainConfig.deep_supervision,
                   help="cross-entropy weights on the decoder's coarser levels, e.g. 0.5 0.25 "
                   "(none given = off)")


def private_home() -> tempfile.TemporaryDirectory:
    """Point frugalseg's own folder (autosaves, model library) at a temporary one, removed when
    the returned object goes, so that benchmarks of the plugin leave no autosaved sessions in
    the user's ~/.frugalseg."""
    home = tempfile.TemporaryDirectory(prefix="frugalseg-bench-")
    os.environ["FRUGALSEG_HOME"] = home.name
    return home
