"""Errors a user can fix, each naming the file or setting at fault."""
from __future__ import annotations

__all__ = ["KgError", "SourceError", "LexiconError", "AliasFileError", "OutputError"]


class KgError(Exception):
    """A problem the user can fix; the message says what and where."""


class SourceError(KgError):
    """An input file or folder cannot be read as articles."""


class LexiconError(KgError):
    """A vocabulary file is malformed."""


class AliasFileError(KgError):
    """A user merge file (force, forbid, drop) is malformed."""


class OutputError(KgError):
    """An output cannot be written."""
