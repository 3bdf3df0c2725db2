"""Errors that name the host and the field at fault, so a user can fix the inventory."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the inventory: where (host, dotted field) and what."""

    host: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"host {self.host}: " if self.host else ""
        return f"{where}{self.field}: {self.message}"


class InventoryError(Exception):
    """The inventory cannot be turned into a valid cluster; nothing has been touched."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(Exception):
    """The command line itself is wrong (exit code 2)."""


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' where a known name is close to a misspelt one, else ''."""
    close = difflib.get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
