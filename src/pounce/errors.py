"""Errors shared by pounce and chirp."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import NoReturn


def did_you_mean(name: str, choices: Iterable[str], prefix: str = "") -> str:
    """`did you mean 'X'?` for the closest of `choices` to a misspelt `name`, or "".

    A `prefix` they all share (`CHIRP_`) is left out of the comparison, where it would make
    every name look alike.
    """
    import difflib

    by_rest = {c[len(prefix) :]: c for c in choices}
    close = difflib.get_close_matches(name[len(prefix) :], list(by_rest), n=1, cutoff=0.6)
    return f"did you mean {by_rest[close[0]]!r}?" if close else ""


class ConfigurationError(ValueError):
    """A setting has a value that cannot work.

    The message always names the field, the bad value and the fix, so that a user
    reading one line of a log knows what to change.
    """

    def __init__(self, field: str, value: object, fix: str) -> None:
        self.field = field
        self.value = value
        self.fix = fix
        super().__init__(f"{field}={value!r} is invalid: {fix}")


class StartupFailed(Exception):
    """The app refused to start: its lifespan startup failed, or a check it runs before serving.

    `str()` is one line; `detail` (a report, say) and `hint` (how to reproduce or fix it) are
    optional. Every launcher prints them once and exits with code 3.
    """

    def __init__(self, message: str, detail: str = "", hint: str = "") -> None:
        self.detail = detail
        self.hint = hint
        super().__init__(message)


class AppImportError(Exception):
    """The `module:attr` app path could not be resolved to an ASGI callable."""

    def __init__(self, message: str, hint: str) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)


def fail(message: str, hint: str, code: int = 1) -> NoReturn:
    """A command's error: one `error:` line and a `hint:` line on stderr, then exit `code`."""
    sys.stderr.write(f"error: {message}\n" + (f"hint: {hint}\n" if hint else ""))
    sys.exit(code)
