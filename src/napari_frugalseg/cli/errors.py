"""The exit status of every command that fails on bad input or an interruption."""

EXIT_ERROR = 2
