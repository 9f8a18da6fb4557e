"""The one error the command reports: a one-line reason and an exit code."""

from __future__ import annotations

#: Exit codes: 0 done, 1 a failure (no credentials, stack or queue not found), 2 usage.
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure the user can act on; its message is printed as one line on stderr."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
