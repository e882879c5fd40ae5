"""``frugalseg predict``: masks (and probabilities, uncertainty, proposals) for each image;
every input is checked first, and a failure removes what was written."""

from __future__ import annotations

import sys
from pathlib import Path

from napari_frugalseg.core.errors import FrugalsegError

from .errors import check_outputs_spare_inputs


def predict(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from napari_frugalseg.core.bundle import check_image_fits, load_bundle
    from napari_frugalseg.core.device import resolve_device
    from napari_frugalseg.core.guidance import propose, write_proposals
    from napari_frugalseg.core.io import read_image, write_csv, write_tiff
    from napari_frugalseg.core.library import resolve_model
    from napari_frugalseg.core.predict import predict_image

    device = resolve_device(args.device)
    bundle = load_bundle(resolve_model(args.model), device)
    stems = [p.stem for p in args.image]
    if len(set(stems)) != len(stems):
        raise FrugalsegError("two input images share a file name stem; outputs would collide")
    suffixes = ["", "_probabilities", "_uncertainty", "_disagreement"]
    check_outputs_spare_inputs([args.out / f"{p.stem}{s}.tif" for p in args.image for s in suffixes],
                               args.image)
    # check every input first so that a bad one leaves no partial output behind
    for path in args.image:
        check_image_fits(bundle.config, read_image(path, args.channel_axis), str(path))
    maps = args.uncertainty or args.propose > 0
    several = len(bundle.models) > 1 or args.tta
    written: list[Path] = []
    scores, proposals = [], []
    try:
        for path in args.image:
            image = read_image(path, args.channel_axis)
            gen = predict_image(
                bundle.models, bundle.config, image, device, probabilities=args.probabilities,
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
                scores.append((path.stem, f"{result.score:.6f}"))
            for suffix, array in out.items():
                written.append(write_tiff(args.out / f"{path.stem}{suffix}.tif", array))
            line = f"{path} -> {args.out / (path.stem + '.tif')}"
            if args.uncertainty:
                line += f" (uncertainty score {result.score:.4f})"
            print(line)
            if args.propose:
                found = propose(result.uncertainty, args.propose, args.propose_size)
                proposals += [(path.stem, rank, p) for rank, p in enumerate(found, 1)]
                for rank, p in enumerate(found, 1):
                    plane = () if p.z is None else np.unravel_index(p.z, image.shape[1:-2])
                    where = ["", "slice {}, ", "time point {}, slice {}, "][len(plane)].format(*plane)
                    print(f"  label here next #{rank}: {where}y {p.y}, x {p.x} "
                          f"({p.size} px square, uncertainty {p.score:.3f})")
        if args.uncertainty:
            written.append(write_csv(args.out / "uncertainty.csv", ["image", "score"], scores))
        if args.propose:
            written.append(write_proposals(args.out / "proposals.csv", proposals))
    except BaseException:
        for w in written:
            w.unlink(missing_ok=True)
        raise
    return 0
