"""``frugalseg train``: read images and labels (or a dataset spec), train, save the bundle;
Ctrl-C keeps the best model so far."""

from __future__ import annotations

import signal
import sys
import threading
import time

from napari_frugalseg.core.config import TrainConfig
from napari_frugalseg.core.errors import FrugalsegError

from .errors import EXIT_ERROR


def _load_training(args):
    from napari_frugalseg.core.io import is_zarr, paired_files, read_image, read_labels
    from napari_frugalseg.core.labels import fit_labels

    given = (args.image or []) + (args.labels or [])
    if len(given) == 2 and len(args.image or []) == 1 and all(p.is_dir() and not is_zarr(p) for p in given):
        args.image, args.labels, unlabelled = paired_files(args.image[0], args.labels[0])
        if unlabelled:
            print(f"note: {len(unlabelled)} image(s) without labels left out: "
                  f"{', '.join(p.name for p in unlabelled[:5])}{', ...' if len(unlabelled) > 5 else ''}")
    if len(args.image or []) != len(args.labels or []):
        raise FrugalsegError(
            f"{len(args.image or [])} --image file(s) but {len(args.labels or [])} --labels file(s); "
            "give one label file per image, in the same order"
        )
    images, labels = [], []
    for im_path, lab_path in zip(args.image, args.labels):
        image = read_image(im_path, args.channel_axis)
        lab = fit_labels(read_labels(lab_path), image.shape[1:], str(lab_path), str(im_path))
        if images and image.shape[0] != images[0].shape[0]:
            raise FrugalsegError(
                f"{im_path}: {image.shape[0]} channel(s), but {args.image[0]} has "
                f"{images[0].shape[0]}"
            )
        images.append(image)
        labels.append(lab)
    return images, labels


def train(args) -> int:
    from tqdm import tqdm

    from napari_frugalseg.core.axes import planes
    from napari_frugalseg.core.bundle import check_model_target, load_bundle, save_bundle
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.ensemble import EnsembleTrainer
    from napari_frugalseg.core.labels import default_class_names, labelled_classes
    from napari_frugalseg.core.library import add_model, check_name, resolve_model
    from napari_frugalseg.core.train import TrainingData
    from napari_frugalseg.core.transfer import transfer

    if bool(args.dataset) == bool(args.image or args.labels):
        raise FrugalsegError("give either --dataset SPEC or --image ... --labels ...")
    max_seconds = args.max_seconds
    if max_seconds is None and args.max_steps is None:
        max_seconds = 120.0
    try:
        tc = TrainConfig(
            max_steps=args.max_steps,
            max_seconds=max_seconds,
            batch_size=args.batch_size,
            seed=args.seed,
            device=args.device,
            exclusion_weight=args.exclusion_weight,
            robust_q=args.robust,
            affinity_weight=args.affinity,
            scale_jitter=args.scale_jitter,
            mixed_precision=not args.fp32,
        )
    except ValueError as exc:  # a bad option: say so before reading any file
        raise FrugalsegError(str(exc)) from None
    if args.ensemble < 1:
        raise FrugalsegError("--ensemble needs at least 1 member")
    if args.name:
        check_name(args.name)
    check_model_target(args.out)  # before training: the model could not be saved there
    if args.dataset:
        from napari_frugalseg.core.dataset_spec import load_dataset

        merged = load_dataset(args.dataset)
        images, labels, sets, weights = merged.images, merged.labels, merged.partial_sets, merged.weights
        sources, class_names = merged.names, merged.classes
        n_classes = len(class_names)
    else:
        images, labels = _load_training(args)
        sets, weights = [], None
        sources, class_names = [str(p) for p in args.image], args.classes
        present = labelled_classes(labels, [str(p) for p in args.labels])
        n_classes = max(present)
        missing = sorted(set(range(1, n_classes + 1)) - present)
        if missing:  # the values stay those of the labels; these classes get no pixel to learn
            print(f"note: no pixel of class(es) {', '.join(map(str, missing))} is labelled; the model "
                  f"has {n_classes} classes and will not predict those")
    names = tuple(class_names) if class_names else None
    if names and len(names) != n_classes:
        raise FrugalsegError(f"--classes names {len(names)} classes, labels use {n_classes}")
    start, init = None, None
    if args.init:
        path = resolve_model(args.init)
        init = load_bundle(path)
    ndim = args.ndim or (init.config.ndim if init else 2)
    data_shape = list(images[0].shape)
    for i, source in enumerate(sources):
        if images[i].ndim - 1 < ndim:
            raise FrugalsegError(f"{source}: a 3D model (--ndim 3) needs a 3D stack")
        # a time series (of stacks, for a 2D model) is one series of planes (stacks)
        images[i], labels[i] = planes(images[i], keep=1, ndim=ndim), planes(labels[i], ndim=ndim)
        if weights and weights[i] is not None:
            weights[i] = planes(weights[i], ndim=ndim)
    if init:
        if names is None:
            same = init.config.n_classes == n_classes
            names = init.config.classes if same else default_class_names(n_classes)
        start, config = transfer(init, names, images[0].shape[0], ndim, str(path))
        if config.classes != init.config.classes:
            print(f"starting from {path} with a new output head for {', '.join(names)}")
    else:
        try:
            config = new_model_config(
                names or default_class_names(n_classes), images[0].shape[0], ndim,
                min(im.shape[-3] for im in images), args.patch_size, args.width, args.depth,
            )
        except ValueError as exc:  # --width, --depth or --patch-size
            raise FrugalsegError(str(exc)) from None
    trainer = EnsembleTrainer(
        TrainingData(images, labels, config.norm_percentiles, sets, weights),
        config, tc, args.ensemble, start,
    )
    what = f"an ensemble of {args.ensemble} {config.ndim}D U-Nets" if args.ensemble > 1 else f"a {config.ndim}D U-Net"
    print(f"training {what} for {n_classes} classes on {trainer.device}")
    total = args.max_steps if args.max_steps else int(max_seconds)
    unit = "step" if args.max_steps else "s"
    bar = tqdm(total=total, unit=unit, dynamic_ncols=True, file=sys.stderr, mininterval=1.0)
    run, t0 = trainer.run(), time.perf_counter()
    interrupted = False

    def on_ctrl_c(signum, frame) -> None:
        # a flag, not an exception that library code could swallow: training ends at the next
        # step; a second Ctrl-C interrupts at once
        nonlocal interrupted
        interrupted = True
        trainer.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_ctrl_c) if main_thread else None
    try:
        for p in run:
            bar.n = trainer.step if args.max_steps else min(total, int(time.perf_counter() - t0))
            post = {"loss": f"{p.loss:.3f}"}
            if trainer.val_score is not None:
                post["val_dice"] = f"{trainer.val_score:.3f}"
            bar.set_postfix(post, refresh=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        run.close()  # restores the best weights
        bar.close()
    if trainer.step == 0:
        raise FrugalsegError(f"{args.out}: interrupted before the first step; nothing saved")
    info = {"data_shape": data_shape, "val_score": trainer.val_score}
    save_bundle(args.out, trainer.models, trainer.config, tc, trainer.history, info)
    if args.name:
        print(f"kept in the library as '{args.name}': {add_model(args.out, args.name)}")
    if interrupted:
        print(
            f"frugalseg: error: interrupted at step {trainer.step}; the best model so far "
            f"is saved in {args.out}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    print(f"trained {trainer.step} steps{trainer.kept_note}; model saved in {args.out}")
    return 0
