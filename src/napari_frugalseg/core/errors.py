"""One exception type for problems a user can fix (bad files, bad labels, bad models)."""

from __future__ import annotations


class FrugalsegError(ValueError):
    """A user-facing error: its message names the file or layer and says what is wrong."""

    @classmethod
    def from_os(cls, exc: OSError) -> FrugalsegError:
        """The system refusing a read or write (disk full, no permission, ...), said as a
        user-facing error: ``<file>: <why>``."""
        where = f"{exc.filename}: " if exc.filename else ""
        return cls(f"{where}{exc.strerror or exc}")
