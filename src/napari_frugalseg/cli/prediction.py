"""``frugalseg predict``: masks (and probabilities, uncertainty, proposals) for each image;
every input is checked first, and a failure removes what was written."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from napari_frugalseg.core.axes import channels_hint
from napari_frugalseg.core.errors import FrugalsegError

from .errors import check_outputs_spare_inputs

# where a proposal lies, by the number of axes before the plane's
PLACES = {0: "", 1: "slice {}, ", 2: "time point {}, slice {}, "}


def _check_undeclared_channels(path: Path, image, channels: int) -> None:
    """A file that declares no axes, read as one channel for a model of several, with an axis
    of that many before its planes: say which --channel-axis would read them as channels."""
    axis = channels_hint(image.shape[1:], channels) if image.shape[0] == 1 else None
    if axis is not None:
        raise FrugalsegError(f"{path}: read as one channel, but the model expects {channels}; if its "
                             f"axis {axis} (of {channels}) holds channels, say so: --channel-axis {axis}")


def predict(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from napari_frugalseg.core.axes import planes
    from napari_frugalseg.core.bundle import check_image_fits, grey_for_colour, load_bundle
    from napari_frugalseg.core.device import resolve_device
    from napari_frugalseg.core.export import mask_path, write_mask
    from napari_frugalseg.core.guidance import propose, write_proposals
    from napari_frugalseg.core.io import image_files, read_image_and_axes, stem, write_csv, write_tiff
    from napari_frugalseg.core.library import resolve_model
    from napari_frugalseg.core.predict import predict_image

    if args.propose < 0 or args.propose_size < 1:
        raise FrugalsegError(f"--propose {args.propose} --propose-size {args.propose_size}: give a number "
                             f"of squares >= 0 and a square side >= 1 px")
    args.image = image_files(args.image, skip_labels=True)  # a folder of images and their scribbles
    device = resolve_device(args.device)
    bundle = load_bundle(resolve_model(args.model), device)
    stems = [stem(p) for p in args.image]
    if len(set(stems)) != len(stems):
        raise FrugalsegError("two input images share a file name stem; outputs would collide")
    suffixes = ["_probabilities", "_uncertainty", "_disagreement"]
    masks = {p: mask_path(args.out, stem(p), args.format) for p in args.image}
    check_outputs_spare_inputs([*masks.values(), *(args.out / f"{stem(p)}{s}.tif" for p in args.image
                                                   for s in suffixes)], args.image)
    ndim = bundle.config.ndim

    def read(path: Path):
        """The image as read, as the model sees it (a time series as one series), and whether
        the file declared its axes."""
        image, declared = read_image_and_axes(path, args.channel_axis)
        return image, planes(image, keep=1, ndim=ndim), declared

    # check every input first so that a bad one leaves no partial output behind
    for path in args.image:
        image, seen, declared = read(path)
        if args.channel_axis is None and not declared:
            _check_undeclared_channels(path, image, bundle.config.in_channels)
        check_image_fits(bundle.config, seen, str(path))
        if grey_for_colour(bundle.config, image.shape[0]):
            print(f"note: {path} is grey and the model takes RGB: its grey value goes into each colour")
    maps = args.uncertainty or args.propose > 0
    several = len(bundle.models) > 1 or args.tta
    written: list[Path] = []
    scores, proposals = [], []
    try:
        for path in args.image:
            image, seen, _ = read(path)
            gen = predict_image(
                bundle.models, bundle.config, seen, device, probabilities=args.probabilities,
                name=str(path), tta=args.tta, uncertainty=maps,
                prior_correction=args.prior_correction,
            )
            with tqdm(desc=path.name, unit="band", file=sys.stderr, leave=False, delay=0.5) as bar:
                while True:
                    try:
                        prog = next(gen)
                    except StopIteration as stop:
                        result = stop.value
                        break
                    bar.total = prog.total
                    bar.update(prog.done - bar.n)
            out = {"": result.classes}
            if args.probabilities:
                out["_probabilities"] = result.probabilities
            if args.uncertainty:
                out["_uncertainty"] = result.uncertainty
                if several:
                    out["_disagreement"] = result.disagreement
                scores.append((stem(path), f"{result.score:.6f}"))
            spatial = image.shape[1:]
            for suffix, array in out.items():  # a time series: back from its planes
                array = array.reshape(*array.shape[:array.ndim - len(seen.shape[1:])], *spatial)
                written.append(write_mask(masks[path], array, args.format) if not suffix
                               else write_tiff(args.out / f"{stem(path)}{suffix}.tif", array))
            line = f"{path} -> {masks[path]}"
            if args.uncertainty:
                line += f" (uncertainty score {result.score:.4f})"
            print(line)
            if args.propose:
                found = propose(result.uncertainty, args.propose, args.propose_size)
                proposals += [(stem(path), rank, p) for rank, p in enumerate(found, 1)]
                for rank, p in enumerate(found, 1):
                    plane = () if p.z is None else tuple(map(int, np.unravel_index(p.z, image.shape[1:-2])))
                    where = PLACES[len(plane)].format(*plane) if len(plane) in PLACES else f"plane {plane}, "
                    print(f"  label here next #{rank}: {where}y {p.y}, x {p.x} "
                          f"({p.size} px square, uncertainty {p.score:.3f})")
        if args.uncertainty:
            written.append(write_csv(args.out / "uncertainty.csv", ["image", "score"], scores))
        if args.propose:
            written.append(write_proposals(args.out / "proposals.csv", proposals))
    except BaseException:
        for w in written:
            if w.is_dir():  # a PNG or OME-Zarr mask
                shutil.rmtree(w)
            else:
                w.unlink(missing_ok=True)
        raise
    return 0
