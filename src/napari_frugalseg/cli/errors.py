"""The exit status of every command that fails on bad input or an interruption, and the check
that no output overwrites an input."""

from collections.abc import Iterable
from pathlib import Path

from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg.core.io import check_folder_for

EXIT_ERROR = 2


def check_outputs_spare_inputs(outputs: Iterable[Path], inputs: Iterable[Path], option: str = "--out") -> None:
    """Refuse to run when an output file would be written over one of the inputs, or in a
    folder that is a file."""
    given = {p.resolve(): p for p in inputs}
    for out in outputs:
        check_folder_for(out)
        if out.resolve() in given:
            raise FrugalsegError(f"{given[out.resolve()]}: an output ({out}) would be written over "
                                 f"this input; choose another {option}")
