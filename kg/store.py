"""On-disk cache of extraction results in SQLite, keyed by content and extractor."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import marshal
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import version
from pathlib import Path

from kg.model import AliasPair, Article, Extraction, LexiconEntry, Mention
from kg.sources import FileMemo

__all__ = ["ExtractionCache", "cache_key", "extractor_fingerprint", "extraction_of",
           "EXTRACTOR_VERSION"]

log = logging.getLogger(__name__)

_SCHEMA = 2        # 2: entries are marshal blobs (JSON text before)
EXTRACTOR_VERSION = "kg-extract-1"     # raise when extraction changes in a way code hashes miss


def extractor_fingerprint(lexicon: Sequence[LexiconEntry], *, discover_terms: bool = True
                          ) -> str:
    """A hash of everything that shapes extraction, for cache keys: our version, spaCy's,
    the extraction code and the vocabulary. Reading it needs no spaCy import."""
    spacy_version = version("spacy")
    digest = hashlib.sha256(f"{EXTRACTOR_VERSION}|{discover_terms}|{spacy_version}".encode())
    here = Path(__file__).resolve().parent
    for module in ("extract.py", "discover.py", "names.py"):   # the code is part of it too
        digest.update((here / module).read_bytes())
    for entry in lexicon:
        digest.update(repr((entry.key, entry.type, entry.surfaces)).encode("utf-8"))
    return digest.hexdigest()[:16]


def cache_key(text: str, fingerprint: str) -> str:
    """Key a cached result by the text and the extractor that produced it.

    >>> cache_key("ab", "c") != cache_key("a", "bc")
    True
    """
    # the fingerprint holds no NUL, so no other (text, fingerprint) gives the same string
    return hashlib.sha256(f"{fingerprint}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


class ExtractionCache:
    """Mentions and definition pairs per article text, in one SQLite file.

    Beside the extractions it keeps artifacts: blobs that are slow to make from the
    vocabulary (the pipeline, pickled; the linker's index), so a rebuild skips making them;
    and what each file read held (`file_memo`), so a rebuild parses only changed files.
    A pickle runs code when loaded: use cache files made by your own builds only.

    Every write is a transaction, so a build killed at any moment leaves the entries it
    committed and nothing half-written. A file that is not a readable cache is moved
    aside (``<name>.corrupt-<time>``) with a warning and a new one is started. Deleting
    the file is always safe.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> cache = ExtractionCache(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite", "fp")
    >>> article = Article("a1", "t", "LoRA 微调")
    >>> found = Extraction("a1", (Mention("a1", "LoRA", "lora", 0, 4),))
    >>> cache.put([(article, found)])
    >>> cache.get([article])["a1"].mentions[0].concept_key
    'lora'
    >>> cache.close()
    """

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._fetched: dict[str, bytes] = {}     # entries `find` read, for `read`
        self._keys: dict[tuple[str, bool], str] = {}     # `key` of texts seen, by text
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as err:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.warning("%s is not a readable cache (%s); moved to %s and starting a new one",
                        self.path, err, aside.name)
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is not None and row[0] != str(_SCHEMA):     # entries of another form
                db.execute("DROP TABLE IF EXISTS extractions")
                db.execute("DELETE FROM meta WHERE name = 'schema'")
                row = None
            db.execute("CREATE TABLE IF NOT EXISTS extractions "
                       "(key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS artifacts "
                       "(name TEXT PRIMARY KEY, value BLOB NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS files "
                       "(key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(_SCHEMA),))
                db.commit()
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get(self, articles: Sequence[Article]) -> dict[str, Extraction]:
        """Cached extractions of ``articles``, by article id; absent ones are left out."""
        return self.read(self.find(articles))

    def known(self, articles: Sequence[Article]) -> set[int]:
        """``id()`` of the articles that have an entry (keys only, nothing kept)."""
        keys = {self.key(a): a for a in articles}
        return {id(keys[key]) for key, in self._rows("key", list(keys))}

    def find(self, articles: Sequence[Article]) -> dict[str, Article]:
        """The articles that have an entry, by cache key (nothing decoded yet: `read`
        decodes them, without looking them up again; the rows are held until then)."""
        keys = {self.key(a): a for a in articles}
        total = self.db.execute("SELECT count(*) FROM extractions").fetchone()[0]
        if len(keys) * 2 >= total:     # most of the table (a rebuild): one scan, 3x faster
            rows = {key: value for key, value in
                    self.db.execute("SELECT key, value FROM extractions") if key in keys}
        else:
            rows = dict(self._rows("key, value", list(keys)))
        self._fetched.update(rows)
        return {key: keys[key] for key in rows}

    def read(self, found: dict[str, Article], *, tick: Callable[[], None] | None = None
             ) -> dict[str, Extraction]:
        """Decode the entries `find` found, by article id; a damaged one is left out.
        ``tick`` is called every thousand entries (to hand extraction workers their next
        batch meanwhile)."""
        out: dict[str, Extraction] = {}
        fetched, self._fetched = self._fetched, {}
        missing = [key for key in found if key not in fetched]
        fetched.update(self._rows("key, value", missing, tick=tick))
        for n, (key, article) in enumerate(found.items()):
            if tick is not None and n % 1000 == 0:
                tick()
            value = fetched.get(key)
            if value is None:
                continue
            try:
                out[article.id] = _decode(article.id, value)
            except (ValueError, TypeError, KeyError, EOFError):
                log.warning("%s: a damaged cache entry was ignored", self.path)
        return out

    def _rows(self, columns: str, keys: list[str], *, tick: Callable[[], None] | None = None
              ) -> Iterable[tuple]:
        for start in range(0, len(keys), 500):      # SQLite limits the parameters
            if tick is not None:
                tick()
            chunk = keys[start:start + 500]
            yield from self.db.execute(f"SELECT {columns} FROM extractions WHERE key IN "
                                       f"({','.join('?' * len(chunk))})", chunk).fetchall()

    def put(self, results: Iterable[tuple[Article, Extraction]]) -> None:
        """Store results in one transaction."""
        rows = [(self.key(a), _encode(e)) for a, e in results]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO extractions VALUES (?, ?)", rows)

    def put_batch(self, articles: Sequence[Article], results: Sequence[Extraction]) -> None:
        """`put` for the pipeline's batch callback."""
        self.put(zip(articles, results))

    def load_artifact(self, name: str) -> bytes | None:
        """A blob saved by `save_artifact` for this extractor, or None."""
        row = self.db.execute("SELECT value FROM artifacts WHERE name = ?",
                              (f"{name}|{self.fingerprint}",)).fetchone()
        return None if row is None else bytes(row[0])

    @staticmethod
    def peek_artifact(path: Path, name: str) -> tuple[str, bytes] | None:
        """``(fingerprint, blob)`` of the artifact saved under ``name`` in the cache at
        ``path``, read without knowing the fingerprint (nor checking the file): for work
        started on speculation, to be checked against the fingerprint once known."""
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
                row = db.execute("SELECT name, value FROM artifacts WHERE name LIKE ?",
                                 (name.replace("%", "") + "|%",)).fetchone()
        except sqlite3.Error:
            return None
        return None if row is None else (row[0].split("|", 1)[1], bytes(row[1]))

    def save_artifact(self, name: str, value: bytes) -> None:
        """Keep ``value`` (something slow to make from the vocabulary) under ``name``,
        replacing what an older extractor saved under that name."""
        _put_artifact(self.db, name, self.fingerprint, value)

    @staticmethod
    def store_artifact(path: Path, fingerprint: str, name: str, value: bytes) -> None:
        """`save_artifact` into the cache at ``path`` made for ``fingerprint``, through a
        connection of its own (for another process: an open one is not to be shared)."""
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            _put_artifact(db, name, fingerprint, value)

    def file_memo(self) -> FileMemo:
        """The files read by the last build (see `kg.sources.FileMemo`)."""
        return FileMemo(dict(self.db.execute("SELECT key, value FROM files").fetchall()))

    def save_files(self, memo: FileMemo) -> None:
        """Keep what this build read; forget the files it did not read."""
        gone = [(key,) for key in memo.stored if key not in memo.seen]
        with self.db:
            self.db.executemany("DELETE FROM files WHERE key = ?", gone)
            self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?)",
                                memo.fresh.items())

    def key(self, article: Article) -> str:
        """Where ``article``'s extraction is kept: a hash of its text, of whether it was
        cut, and of this cache's fingerprint. Kept for the texts seen: a build asks for
        the key of an article when it looks it up, names it, and stores its extraction."""
        seen = self._keys.get((article.text, article.truncated))
        if seen is None:
            # a cut article drops the mention at its cut, so the flag is part of the key
            seen = self._keys[(article.text, article.truncated)] = cache_key(
                article.text, f"{self.fingerprint}|cut={article.truncated}")
        return seen

    def close(self) -> None:
        self.db.close()


def _put_artifact(db: sqlite3.Connection, name: str, fingerprint: str, value: bytes) -> None:
    with db:
        db.execute("DELETE FROM artifacts WHERE name LIKE ?", (name.replace("%", "") + "|%",))
        db.execute("INSERT INTO artifacts VALUES (?, ?)", (f"{name}|{fingerprint}", value))


def _encode(extraction: Extraction) -> bytes:
    # marshal: json.loads took 3.7 us for a typical entry here, marshal.loads 0.4 us
    mentions = [m[1:] for m in extraction.mentions]     # all but the article id
    pairs = [(p.long, p.short) for p in extraction.pairs]
    return marshal.dumps((mentions, pairs))


_MENTION_FIELDS = len(Mention._fields) - 1     # what a cache entry keeps of a mention


def _decode(article_id: str, value: bytes) -> Extraction:
    mentions, pairs = marshal.loads(value)
    if mentions and len(mentions[0]) != _MENTION_FIELDS:
        raise ValueError("a mention of another shape")
    return extraction_of(article_id, mentions, pairs)


def extraction_of(article_id: str, mentions: Iterable[tuple], pairs: Iterable[tuple[str, str]]
                  ) -> Extraction:
    """The `Extraction` of plain tuples as the cache and the extraction workers keep them:
    each mention without its article id, each pair as ``(long, short)``."""
    new = tuple.__new__      # Mention(...) without its Python-level __new__: 1/3 less time
    return Extraction(article_id, tuple([new(Mention, (article_id, *m)) for m in mentions]),
                      tuple([AliasPair(article_id, long, short) for long, short in pairs]))
