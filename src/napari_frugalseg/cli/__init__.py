"""Command line: ``frugalseg train | predict | consensus | models | sessions | demo`` (also
``python -m napari_frugalseg``): the parser and the dispatch; each command lives in its own
module and imports what it needs (torch included) only when it runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from napari_frugalseg.core.config import ROBUST_Q, SCALE_JITTER, TrainConfig
from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg.core.export import FORMATS
from napari_frugalseg.core.io import NO_CHANNELS

from .consensus import consensus
from .demo import demo
from .errors import EXIT_ERROR
from .library import models, sessions
from .prediction import predict
from .training import train


def channel_axis(text: str) -> int | str:
    return NO_CHANNELS if text.lower() == NO_CHANNELS else int(text)


def _channel_axis_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel-axis", type=channel_axis, default=None, metavar="AXIS",
                   help="the axis of the image files that holds channels, e.g. 0 for a (C, Y, X) "
                   "TIFF, or 'none': every axis is spatial, e.g. a (T, Z, Y, X) time series of "
                   "stacks (default: the axes a Fiji hyperstack or OME-TIFF declares; else a "
                   "last axis of 3 or 4 is colour, other 3D images are stacks)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frugalseg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from scribbles or labels")
    t.add_argument("--image", nargs="+", type=Path,
                   help="image files, or one folder of images (with --labels a folder)")
    t.add_argument("--labels", nargs="+", type=Path,
                   help="one label file per image, in the same order, or a folder of label files "
                   "named after the images (<stem>.tif, <stem>_labels.tif, ...)")
    t.add_argument("--dataset", type=Path, help="YAML/JSON spec merging labelled sets (instead "
                   "of --image/--labels)")
    t.add_argument("--exclusion-weight", type=float, default=0.0,
                   help="weight of the exclusion term for partially annotated items")
    t.add_argument("--robust", type=float, default=0.0, metavar="Q",
                   help="noise-robust loss for noisy masks: the generalized cross-entropy with "
                   f"this q, alone (no Dice term); {ROBUST_Q} typical, 0 = off")
    t.add_argument("--affinity", type=float, default=TrainConfig.affinity_weight, metavar="W",
                   help="weight of the term that makes neighbours of similar intensity agree, "
                   "carrying strokes out to the image's edges (0 = off)")
    t.add_argument("--scale-jitter", type=float, default=TrainConfig.scale_jitter, metavar="S",
                   help="also train on patches zoomed up to 1 + S times in and out, for images of "
                   f"varied magnification or kind ({SCALE_JITTER} typical: README, Label conventions); 0 = off")
    t.add_argument("--out", required=True, type=Path, help="model folder to write")
    _channel_axis_option(t)
    t.add_argument("--max-seconds", type=float, default=None)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    t.add_argument("--fp32", action="store_true", help="train in float32 throughout (default: "
                   "mixed precision where the device is fast at it: CUDA, CPUs with AVX512-BF16/AMX)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init", default=None, metavar="MODEL",
                   help="start from this model (folder or library name); other classes get a "
                   "new output head")
    t.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="train K models (seeds and held-out strokes differ); the budget is for all")
    t.add_argument("--name", default=None, help="also keep the model in the library under NAME")
    t.add_argument("--ndim", type=int, choices=(2, 3), default=None,
                   help="2 (default; stacks slice by slice) or 3; with --init: the model's")
    t.add_argument("--classes", nargs="+", default=None, help="names of classes 1..K")
    t.add_argument("--patch-size", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--depth", type=int, default=3)

    q = sub.add_parser("predict", help="segment images with a trained model")
    q.add_argument("--model", required=True, help="model folder or library name")
    q.add_argument("--image", nargs="+", required=True, type=Path,
                   help="image files, or folders: their image files (not the label files of "
                   "its images, e.g. <stem>_labels.tif)")
    q.add_argument("--out", required=True, type=Path, help="folder for <stem>.tif masks")
    _channel_axis_option(q)
    q.add_argument("--format", choices=FORMATS, default="tiff",
                   help="masks as <stem>.tif (default), <stem>/slice_0000.png... or <stem>.ome.zarr")
    q.add_argument("--probabilities", action="store_true", help="also <stem>_probabilities.tif")
    q.add_argument("--device", default="auto")
    q.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                   help="average over the image's four flips (test-time augmentation, the default; "
                   "--no-tta: one pass, 3-4x faster)")
    q.add_argument("--no-prior-correction", dest="prior_correction", action="store_false",
                   help="keep the model's probabilities as trained, leaning towards the classes' "
                   "shares among the strokes (default: re-weight each image to its own shares)")
    q.add_argument("--uncertainty", action="store_true",
                   help="also <stem>_uncertainty.tif (and _disagreement.tif for ensembles/TTA) "
                   "and uncertainty.csv with a score per image")
    q.add_argument("--propose", type=int, default=0, metavar="N",
                   help="list the N regions per image where strokes would help most "
                   "(proposals.csv)")
    q.add_argument("--propose-size", type=int, default=64, metavar="PX")

    m = sub.add_parser("models", help="list the model library (or add a model to it)")
    m.add_argument("--add", type=Path, default=None, metavar="MODEL_DIR")
    m.add_argument("--name", default=None, help="library name for --add (default: folder name)")

    s = sub.add_parser("sessions", help="list the plugin's autosaved sessions (or remove old ones)")
    s.add_argument("--remove-older-than", type=float, default=None, metavar="DAYS",
                   help="delete the autosaved sessions unchanged for more than DAYS days")

    c = sub.add_parser("consensus", help="merge several annotators' labels of one image")
    c.add_argument("--labels", nargs="+", required=True, type=Path, help="one file per annotator")
    c.add_argument("--out", required=True, type=Path, help="consensus labels file (.tif)")
    c.add_argument("--method", choices=("staple", "vote"), default="staple")

    d = sub.add_parser("demo", help="train on the shipped sample and predict (about a minute)")
    d.add_argument("--out", type=Path, default=Path("frugalseg-demo"))
    d.add_argument("--max-seconds", type=float, default=45.0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        commands = {"train": train, "predict": predict, "consensus": consensus,
                    "models": models, "sessions": sessions, "demo": demo}
        return commands[args.command](args)
    except FrugalsegError as exc:
        print(f"frugalseg: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # the system's refusal: no space left, no permission, ...
        print(f"frugalseg: error: {FrugalsegError.from_os(exc)}", file=sys.stderr)
        return EXIT_ERROR
