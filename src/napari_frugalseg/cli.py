"""Command line: ``frugalseg train | predict | consensus | models | sessions | demo`` (also
``python -m napari_frugalseg``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from napari_frugalseg.core.config import ROBUST_Q, SCALE_JITTER, TrainConfig
from napari_frugalseg.core.errors import FrugalsegError

EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frugalseg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from scribbles or labels")
    t.add_argument("--image", nargs="+", type=Path)
    t.add_argument("--labels", nargs="+", type=Path)
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
    q.add_argument("--image", nargs="+", required=True, type=Path)
    q.add_argument("--out", required=True, type=Path, help="folder for <stem>.tif masks")
    q.add_argument("--probabilities", action="store_true", help="also <stem>_probabilities.tif")
    q.add_argument("--device", default="auto")
    q.add_argument("--tta", action="store_true", help="average over flips (test-time augmentation)")
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


# -- train ------------------------------------------------------------------------------------
def _load_training(args):
    from napari_frugalseg.core.io import read_array, read_image
    from napari_frugalseg.core.labels import as_label_array

    if len(args.image or []) != len(args.labels or []):
        raise FrugalsegError(
            f"{len(args.image or [])} --image file(s) but {len(args.labels or [])} --labels file(s); "
            "give one label file per image, in the same order"
        )
    images, labels = [], []
    for im_path, lab_path in zip(args.image, args.labels):
        image = read_image(im_path)
        lab = as_label_array(read_array(lab_path), str(lab_path))
        if lab.shape != image.shape[1:]:
            raise FrugalsegError(
                f"{lab_path}: labels have shape {lab.shape} but {im_path} has spatial shape "
                f"{image.shape[1:]}"
            )
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

    from napari_frugalseg.core.bundle import load_bundle, save_bundle
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.ensemble import EnsembleTrainer
    from napari_frugalseg.core.labels import check_training_labels, default_class_names
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
        n_classes = check_training_labels(labels, [str(p) for p in args.labels])
    names = tuple(class_names) if class_names else None
    if names and len(names) != n_classes:
        raise FrugalsegError(f"--classes names {len(names)} classes, labels use {n_classes}")
    start, init = None, None
    if args.init:
        path = resolve_model(args.init)
        init = load_bundle(path)
    ndim = args.ndim or (init.config.ndim if init else 2)
    for image, source in zip(images, sources):
        if image.ndim - 1 < ndim:
            raise FrugalsegError(f"{source}: a 3D model (--ndim 3) needs a 3D stack")
    if init:
        if names is None:
            same = init.config.n_classes == n_classes
            names = init.config.classes if same else default_class_names(n_classes)
        start, config = transfer(init, names, images[0].shape[0], ndim, str(path))
        if config.classes != init.config.classes:
            print(f"starting from {path} with a new output head for {', '.join(names)}")
    else:
        config = new_model_config(
            names or default_class_names(n_classes), images[0].shape[0], ndim,
            min(im.shape[1] for im in images), args.patch_size, args.width, args.depth,
        )
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
    info = {"data_shape": list(images[0].shape), "val_score": trainer.val_score}
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


# -- predict ----------------------------------------------------------------------------------
def predict(args) -> int:
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
    # check every input first so that a bad one leaves no partial output behind
    for path in args.image:
        check_image_fits(bundle.config, read_image(path), str(path))
    maps = args.uncertainty or args.propose > 0
    several = len(bundle.models) > 1 or args.tta
    written: list[Path] = []
    scores, proposals = [], []
    try:
        for path in args.image:
            image = read_image(path)
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
                    where = f"slice {p.z}, " if p.z is not None else ""
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


# -- models -----------------------------------------------------------------------------------
def models(args) -> int:
    from napari_frugalseg.core.library import add_model, library_dir, list_models

    if args.add:
        print(f"added {args.add} to the library as {add_model(args.add, args.name)}")
        return 0
    entries = list_models()
    if not entries:
        print(f"the model library ({library_dir()}) is empty; add models with "
              "'frugalseg train --name NAME' or 'frugalseg models --add DIR'")
    for e in entries:
        print(e.line())
    return 0


# -- sessions ---------------------------------------------------------------------------------
def sessions(args) -> int:
    from napari_frugalseg.core.session import autosave_dir, list_autosaves, remove_autosaves

    if args.remove_older_than is not None:
        removed = remove_autosaves(args.remove_older_than)
        for e in removed:
            print(f"removed {e.line()}")
        print(f"removed {len(removed)} autosaved session(s), {sum(e.size for e in removed) / 2**20:.1f} MiB")
        return 0
    entries = list_autosaves()
    if not entries:
        print(f"no autosaved sessions in {autosave_dir()}")
    for e in entries:
        print(e.line())
    if entries:
        print(f"{len(entries)} session(s), {sum(e.size for e in entries) / 2**20:.1f} MiB in {autosave_dir()}; "
              "open one in the plugin (Open session); nothing is deleted unless you run "
              "'frugalseg sessions --remove-older-than DAYS'")
    return 0


# -- consensus --------------------------------------------------------------------------------
def consensus(args) -> int:
    import numpy as np

    from napari_frugalseg.core.consensus import majority_vote, staple
    from napari_frugalseg.core.io import read_array, write_tiff
    from napari_frugalseg.core.labels import as_label_array

    annotations = [as_label_array(read_array(p), str(p)) for p in args.labels]
    n_classes = max(int(a.max()) for a in annotations)
    merge = staple if args.method == "staple" else majority_vote
    result = merge(annotations, n_classes, [str(p) for p in args.labels])
    agreement = args.out.with_name(args.out.stem + "_agreement.tif")
    write_tiff(args.out, result.labels.astype(np.uint8))
    write_tiff(agreement, result.agreement)
    print(f"consensus -> {args.out}; per-pixel agreement -> {agreement}")
    if result.sensitivity is not None:
        for path, sens, spec in zip(args.labels, result.sensitivity, result.specificity):
            per = ", ".join(f"class {k}: {a:.3f}/{b:.3f}" for k, (a, b) in enumerate(zip(sens, spec), 1))
            print(f"{path}: sensitivity/specificity {per}")
    return 0


# -- demo -------------------------------------------------------------------------------------
def demo(args) -> int:
    from napari_frugalseg.core.io import read_array
    from napari_frugalseg.core.labels import dice_per_class
    from napari_frugalseg.core.samples import DEMO_CLASSES, demo_sample

    image, labels, truth = demo_sample()
    out = args.out
    print(
        "frugalseg demo: 'blobs' (real image, real hand-drawn scribbles: 1 = background, "
        "2 = blob; CC-BY 4.0, R. Haase)"
    )
    t0 = time.perf_counter()
    rc = main([
        "train", "--image", str(image), "--labels", str(labels), "--out", str(out / "model"),
        "--max-seconds", str(args.max_seconds), "--classes", *DEMO_CLASSES,
    ])
    if rc:
        return rc
    rc = main(["predict", "--model", str(out / "model"), "--image", str(image), "--out", str(out)])
    if rc:
        return rc
    pred = read_array(out / "blobs.tif")
    dice = dice_per_class(pred, truth, 2)
    print(f"done in {time.perf_counter() - t0:.0f} s; mask in {out / 'blobs.tif'}, model in {out / 'model'}")
    print(f"Dice against the reference labels: background {dice[0]:.3f}, blob {dice[1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
