"""One exception type for problems a user can fix (bad files, bad labels, bad models)."""


class FrugalsegError(ValueError):
    """A user-facing error: its message names the file or layer and says what is wrong."""
