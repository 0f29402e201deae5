"""The one exception type for user mistakes: the CLI prints its message as one line, no traceback.

Messages quote the user's values through :func:`quote`, so a huge or deeply nested value (a
YAML alias bomb, a pasted blob) never makes a "one-line" error megabytes long.
"""

from __future__ import annotations

import reprlib
from typing import Any

#: Longest quoted value in a message (characters, the quotes included).
QUOTE_LIMIT = 80


#: Longest message (characters): a longer one keeps its head and tail around a marked cut.
MESSAGE_LIMIT = 1000


class UserError(Exception):
    """A mistake the user can fix (bad params, missing file, bad data); the message names the culprit.

    The message is kept to one bounded line whatever values went into it: line breaks become
    ``\\n`` and a message past :data:`MESSAGE_LIMIT` characters keeps its start (the culprit)
    and its end (what to do)."""

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(str(message)))


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line, at most about ``limit`` characters (head and tail kept)."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 3):]
    return f"{head} [... {len(text) - len(head) - len(tail)} characters cut ...] {tail}"


def _short_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother = 3, QUOTE_LIMIT, QUOTE_LIMIT
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = 8
    return r


_REPR = _short_repr()


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for a message, cut to a short prefix (never building the whole repr of a
    huge value): ``'abc...'`` with the full length when a string was cut."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit - 8]!r}... ({len(value)} characters)"
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def first_line(exc: BaseException, limit: int = 2 * QUOTE_LIMIT) -> str:
    """An exception's first line, cut to ``limit`` characters: the cause quoted in a one-line error."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return first if len(first) <= limit else first[:limit - 3] + "..."
