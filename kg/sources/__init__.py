"""Read articles from feed pages, Markdown, text, HTML, RSS/Atom and JSON Lines files."""
from __future__ import annotations

import hashlib
import logging
import marshal
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from kg.errors import SourceError
from kg.model import Article
from kg.sources.dedup import article_id, merge_duplicates
from kg.sources.formats import FORMATS, check_format, parse, sniff_format
from kg.sources.text import clean_text, decode, derive_title

__all__ = ["read_articles", "read_file", "iter_files", "merge_duplicates", "article_id",
           "decode", "clean_text", "derive_title", "sample_path", "MAX_FILE_BYTES", "FileMemo"]

log = logging.getLogger(__name__)

#: Files larger than this are skipped with a message (a feed page is a few kB).
MAX_FILE_BYTES = 200 * 1024 * 1024


def sample_path() -> Path:
    """The folder of the bundled sample feed."""
    return Path(__file__).resolve().parent.parent / "data" / "sample"


def iter_files(paths: Iterable[Path], *, problem: Callable[[str], None] | None = None
               ) -> Iterator[tuple[Path, str]]:
    """Yield ``(file, display name)`` for every readable file under ``paths``, sorted.

    Folders are walked recursively, skipping hidden entries and files whose extension is
    not an article format; links are followed once (a link loop is not walked twice).
    The display name is relative to the folder given, prefixed with its name. Files and
    folders passed over are reported to ``problem`` (by default, logged).
    """
    notes = problem or (lambda message: log.warning("%s", message))
    for root in paths:
        root = Path(root)
        if root.is_dir():
            base = root.resolve().name or str(root)
            seen: set[Path] = set()
            yield from _walk(root, base, seen, notes)
        elif root.exists():
            yield root, root.name
        else:
            raise SourceError(f"{root}: no such file or folder")


def _walk(folder: Path, prefix: str, seen: set[Path], notes: Callable[[str], None]
          ) -> Iterator[tuple[Path, str]]:
    real = folder.resolve()
    if real in seen:
        notes(f"{prefix}: a link back to a folder already read (not followed)")
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as err:
        notes(f"{prefix}: cannot list the folder ({err.strerror})")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        name = f"{prefix}/{entry.name}"
        path = Path(entry.path)
        try:
            if entry.is_dir():
                yield from _walk(path, name, seen, notes)
            elif entry.is_file() and Path(entry.name).suffix.lower() in FORMATS:
                yield path, name
            elif entry.is_file():
                suffix = Path(entry.name).suffix.lower() or "no extension"
                notes(f"{name}: not an article format ({suffix})")
            elif not entry.is_dir():
                notes(f"{name}: a broken link or not a regular file")
        except OSError as err:
            notes(f"{name}: cannot read ({err.strerror})")


def read_file(path: Path, name: str, *, fmt: str | None = None,
              problem: Callable[[str], None] | None = None) -> list[Article]:
    """Read the articles of one file (ids unset; see `merge_duplicates`).

    Raises
    ------
    SourceError
        When the whole file cannot be read; parts that cannot be read are passed to
        ``problem`` and skipped.
    """
    if fmt is not None:
        check_format(fmt)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SourceError(f"{name} is {size // 2**20} MB, over the "
                              f"{MAX_FILE_BYTES // 2**20} MB a source file may have")
        data = path.read_bytes()
    except OSError as err:
        raise SourceError(f"{name}: cannot read ({err.strerror})") from err
    if not data.strip():
        raise SourceError(f"{name} is empty")
    text = decode(data, name)
    notes = problem or (lambda message: log.warning("%s", message))
    return parse(fmt or sniff_format(path, text), text, name, notes)


class FileMemo:
    """What each file held when it was last read, so a rebuild parses only the files that
    changed. A file counts as unchanged while its path, size, modification and change
    times and inode are; the reading code is part of the key too.

    ``stored`` maps keys to what `save` gave before; after reading, ``fresh`` holds the
    entries of this read and ``seen`` every key used (entries of files no longer read can
    be dropped).
    """

    def __init__(self, stored: dict[str, bytes] | None = None) -> None:
        self.stored = stored or {}
        self.fresh: dict[str, bytes] = {}
        self.seen: set[str] = set()

    @staticmethod
    def key(path: Path, name: str, fmt: str | None) -> str:
        # the device and inode name the file whatever links lead to it (resolving every
        # path was a quarter of a second for 10,000 files)
        status = os.stat(path)
        return (f"{_READER}|{os.path.abspath(path)}|{name}|{fmt}|{status.st_size}|"
                f"{status.st_mtime_ns}|{status.st_ctime_ns}|{status.st_ino}|{status.st_dev}")

    def read(self, path: Path, name: str, fmt: str | None,
             notes: Callable[[str], None]) -> list[Article]:
        """`read_file`, or what it gave last time; problems are reported either way."""
        try:
            key = self.key(path, name, fmt)
        except OSError:
            return read_file(path, name, fmt=fmt, problem=notes)
        self.seen.add(key)
        if key in self.stored:
            try:
                rows, messages = marshal.loads(self.stored[key])
                articles = [Article("", *row) for row in rows]
            except (ValueError, EOFError, TypeError):
                pass
            else:
                for message in messages:
                    notes(message)
                return articles
        messages: list[str] = []
        try:
            articles = read_file(path, name, fmt=fmt, problem=messages.append)
        except SourceError as err:
            messages.append(str(err))
            articles = []
        self.fresh[key] = marshal.dumps(
            ([(a.title, a.text, a.sources, a.url, a.date, a.truncated) for a in articles],
             messages))
        for message in messages:
            notes(message)
        return articles


# the code that reads files is part of every memo key
_READER = hashlib.sha256(b"".join(
    p.read_bytes() for p in sorted(Path(__file__).resolve().parent.glob("*.py")))).hexdigest()[:12]


def read_articles(paths: Iterable[Path], *, fmt: str | None = None,
                  problem: Callable[[str], None] | None = None,
                  memo: FileMemo | None = None,
                  on_file: Callable[[list[Article]], None] | None = None) -> list[Article]:
    """Read every article under ``paths`` and merge copies seen on several pages.

    Parameters
    ----------
    paths : iterable of Path
        Files or folders (walked recursively).
    fmt : str, optional
        Force one format for every file instead of detecting it.
    problem : callable, optional
        Called with a one-line message for each file or part of a file that is skipped;
        by default the message is logged as a warning.
    memo : FileMemo, optional
        Files read before; unchanged ones are not parsed again.
    on_file : callable, optional
        Called with each file's articles as soon as it is read (before copies are merged).

    Returns
    -------
    list of Article
        Distinct articles with stable ids, in reading order.

    Raises
    ------
    SourceError
        When a path does not exist.
    """
    notes = problem or (lambda message: log.warning("%s", message))
    raw: list[Article] = []
    for path, name in iter_files(paths, problem=notes):
        try:
            found = memo.read(path, name, fmt, notes) if memo is not None \
                else read_file(path, name, fmt=fmt, problem=notes)
        except SourceError as err:
            notes(str(err))
            continue
        raw.extend(found)
        if on_file is not None:
            on_file(found)
    return merge_duplicates(raw)
