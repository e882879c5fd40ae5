"""``frugalseg consensus``: merge several annotators' labels of one image."""

from __future__ import annotations

from .errors import check_outputs_spare_inputs


def consensus(args) -> int:
    import numpy as np

    from napari_frugalseg.core.consensus import majority_vote, staple
    from napari_frugalseg.core.io import read_labels, write_tiff

    agreement = args.out.with_name(args.out.stem + "_agreement.tif")
    check_outputs_spare_inputs([args.out, agreement], args.labels)
    annotations = [read_labels(p) for p in args.labels]
    n_classes = max(int(a.max()) for a in annotations)
    merge = staple if args.method == "staple" else majority_vote
    result = merge(annotations, n_classes, [str(p) for p in args.labels])
    write_tiff(args.out, result.labels.astype(np.uint8))
    write_tiff(agreement, result.agreement)
    print(f"consensus -> {args.out}; per-pixel agreement -> {agreement}")
    if result.sensitivity is not None:
        for path, sens, spec in zip(args.labels, result.sensitivity, result.specificity):
            per = ", ".join(f"class {k}: {a:.3f}/{b:.3f}" for k, (a, b) in enumerate(zip(sens, spec), 1))
            print(f"{path}: sensitivity/specificity {per}")
    return 0
