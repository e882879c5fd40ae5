"""``frugalseg models`` and ``frugalseg sessions``: what frugalseg keeps in its own folder
(the model library, the plugin's autosaved sessions)."""

from __future__ import annotations


def _mib(entries) -> float:
    return sum(e.size for e in entries) / 2**20


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


def sessions(args) -> int:
    from napari_frugalseg.core.session import autosave_dir, list_autosaves, remove_autosaves

    if args.remove_older_than is not None:
        removed = remove_autosaves(args.remove_older_than)
        for e in removed:
            print(f"removed {e.line()}")
        print(f"removed {len(removed)} autosaved session(s), {_mib(removed):.1f} MiB")
        return 0
    entries = list_autosaves()
    if not entries:
        print(f"no autosaved sessions in {autosave_dir()}")
    for e in entries:
        print(e.line())
    if entries:
        print(f"{len(entries)} session(s), {_mib(entries):.1f} MiB in {autosave_dir()}; "
              "open one in the plugin (Open session); nothing is deleted unless you run "
              "'frugalseg sessions --remove-older-than DAYS'")
    return 0
