"""The platform's error base class: every error a user can act on derives from it, and every command
line reports it the same way (`error: <message>` on stderr, exit status 2)."""

from __future__ import annotations

import sys
from collections.abc import Callable


class PlatformError(Exception):
    """An error whose message names the file, row, key or stage and says what to change."""


class ConfigError(PlatformError, ValueError):
    """The configuration file is missing, unreadable or invalid; the message names file and key."""


def report_errors(main: Callable[[], int | None]) -> int:
    """Run a command line's body; a PlatformError (or a ValueError: a malformed argument such as a
    date) becomes one line on stderr and exit status 2."""
    try:
        return main() or 0
    except (PlatformError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
