"""One parser per input format; each turns a file's text into articles (ids unset)."""
from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from kg.errors import SourceError
from kg.model import Article
from kg.sources.text import clean_text, derive_title, strip_ellipsis

__all__ = ["FORMATS", "sniff_format", "parse", "looks_like_feed_page", "MAX_ARTICLE_CHARS"]

log = logging.getLogger(__name__)

#: Extensions read when walking a folder, with the format each suggests.
FORMATS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
           ".html": "html", ".htm": "html", ".xhtml": "html", ".xml": "rss", ".rss": "rss",
           ".atom": "rss", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

Problem = Callable[[str], None]   # called with "where: why" for a skipped part of a file

_PAGINATION = re.compile(r"^[\s\d«»‹›<>|/·.…-]*(?:\d[\s\d«»‹›<>|/·.…-]*)$|"
                         r"^\s*(?:上一页|下一页|首页|尾页|next|prev(?:ious)?|older|newer)\b.*$",
                         re.IGNORECASE)
_ARTICLE_MIN = 30          # shorter lines on a feed page are headers or navigation
_SENTENCE_MARK = re.compile(r"[。！？.!?，,；;]\s*\S")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"(?m)^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+(?=\S)|\d+\.\s+)|[*_~`]{1,3}(?=\S)|"
                       r"(?<=\S)[*_~`]{1,3}")
_TAG = re.compile(r"<[^>]{1,200}>")


def sniff_format(path: Path, text: str) -> str:
    """Decide a file's format from its content first, its extension second.

    >>> sniff_format(Path("x.txt"), '<?xml version="1.0"?><rss version="2.0">')
    'rss'
    >>> sniff_format(Path("notes"), '{"title": "LoRA", "text": "..."}')
    'jsonl'
    """
    head = text.lstrip("\ufeff \t\r\n")[:2000]
    low = head.lower()
    if low.startswith("<?xml") or low.startswith("<rss") or low.startswith("<feed"):
        if re.search(r"<(rss|feed|rdf:rdf)[\s>]", low):
            return "rss"
    if low.startswith("<!doctype html") or low.startswith("<html") or (
            low.startswith("<") and re.search(r"<(head|body|title)[\s>]", low)):
        return "html"
    if head.startswith("{"):
        first = head.split("\n", 1)[0].strip()
        try:
            if isinstance(json.loads(first), dict):
                return "jsonl"
        except ValueError:
            if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
                return "jsonl"
    suffix = FORMATS.get(path.suffix.lower(), "text")
    if suffix in ("rss", "html", "jsonl"):
        return suffix
    if looks_like_feed_page(text):
        return "feed"
    return suffix


def looks_like_feed_page(text: str) -> bool:
    """A feed page: several article lines, cut with ``...`` or closed by pagination.

    >>> looks_like_feed_page("NEWS\\n\\n" + "x" * 40 + "...\\n" + "y" * 50 + "...\\n1 2\\n")
    True
    >>> looks_like_feed_page("# LoRA\\n\\nA whole article about LoRA.\\n")
    False
    """
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    long = [line for line in lines if len(line) >= _ARTICLE_MIN]
    if len(long) < 2:
        return False
    cut = sum(1 for line in long if strip_ellipsis(line)[1])
    paged = bool(lines) and _is_pagination(lines[-1])
    return cut >= 2 or (paged and cut >= 1) or cut * 2 >= len(long) >= 2


def _is_pagination(line: str) -> bool:
    """``1 2 3``, ``« 1 2 »``, ``下一页``: navigation, never an article (short lines only)."""
    return len(line) <= 120 and line.strip(" .") != "" and bool(_PAGINATION.match(line))


def parse(fmt: str, text: str, name: str, problem: Problem) -> list[Article]:
    """Parse ``text`` read from file ``name`` as format ``fmt``."""
    return list(_PARSERS[fmt](text, name, problem))


#: Longer texts are cut for extraction: one article need not cost unbounded time or memory.
MAX_ARTICLE_CHARS = 100_000


def _article(title: str, text: str, source: str, *, url: str = "", date: str = "",
             truncated: bool | None = None) -> Article | None:
    text = clean_text(text).strip()
    if len(text) > MAX_ARTICLE_CHARS:
        log.warning("%s: an article of %d characters, cut to the first %d", source, len(text),
                    MAX_ARTICLE_CHARS)
        text, truncated = text[:MAX_ARTICLE_CHARS], True
    if truncated is None:
        text, truncated = strip_ellipsis(text)
    text = text.strip()
    if not text:
        return None
    title = " ".join(clean_text(title).split()) or derive_title(text)
    return Article("", title, text, (source,), url.strip(), date.strip(), truncated)


def _feed_page(text: str, name: str, problem: Problem) -> Iterator[Article]:
    lines = text.split("\n")
    found = False
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if len(line) < _ARTICLE_MIN and not strip_ellipsis(line)[1]:
            continue          # header, blank, or navigation
        if _is_pagination(line):
            continue
        article = _article("", line, f"{name}:{number}")
        if article:
            found = True
            yield article
    if not found:
        problem(f"{name}: a feed page with a header but no article lines")


def _plain_text(text: str, name: str, problem: Problem) -> Iterator[Article]:
    lines = [line for line in clean_text(text).split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        problem(f"{name}: empty file")
        return
    real = [line for line in lines if line.strip()]
    if all(len(line.strip()) < _ARTICLE_MIN for line in real) and len(real) <= 6 and \
            not any(_SENTENCE_MARK.search(line) for line in real):
        problem(f"{name}: no article text, only short header or navigation lines")
        return
    first, rest = lines[0].strip(), "\n".join(lines[1:]).strip()
    title = first if rest and len(first) <= 100 and not strip_ellipsis(first)[1] else ""
    body = rest if title else "\n".join(lines)
    article = _article(title, body, f"{name}:1")
    if article:
        yield article
    else:
        problem(f"{name}: no text")


def _markdown(text: str, name: str, problem: Problem) -> Iterator[Article]:
    meta: dict[str, str] = {}
    front = _FRONT.match(text)
    if front:
        for line in front.group(1).split("\n"):
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("'\"")
        text = text[front.end():]
    title = meta.get("title", "")
    kept, fence = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        heading = _HEADING.match(line) if not fence else None
        if heading and not title:
            title = heading.group(2)
            continue
        kept.append(line if fence else _strip_markdown(line))
    article = _article(_strip_markdown(title), "\n".join(kept), f"{name}:1",
                       url=meta.get("url", meta.get("link", "")),
                       date=meta.get("date", ""))
    if article:
        yield article
    else:
        problem(f"{name}: no text")


def _strip_markdown(line: str) -> str:
    line = _MD_IMAGE.sub("", line)
    line = _MD_LINK.sub(r"\1", line)
    line = _TAG.sub("", line)
    return _MD_MARKS.sub("", line)


def _html(text: str, name: str, problem: Problem) -> Iterator[Article]:
    body, title = html_to_text(text)
    article = _article(title, body, f"{name}:1")
    if article:
        yield article
    else:
        problem(f"{name}: an HTML page with no text")


_BLOCKS = ("p, div, li, br, tr, pre, blockquote, section, article, main, table, ul, ol, dd, dt, "
           "h1, h2, h3, h4, h5, h6, figcaption, hr")


def html_to_text(html: str) -> tuple[str, str]:
    """Return the readable text of an HTML page or fragment, and its title."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    title = ""
    node = tree.css_first("title") or tree.css_first("h1")
    if node is not None:
        title = node.text(strip=True)
    tree.strip_tags(["script", "style", "noscript", "template", "svg", "nav", "footer",
                     "header", "aside", "form", "iframe", "object"])
    root = tree.css_first("article") or tree.css_first("main") or tree.body or tree.root
    if root is None:
        return "", title
    h1 = root.css_first("h1")
    if h1 is not None and h1.text(strip=True) == title:
        h1.decompose()
    for node in root.css(_BLOCKS):
        node.insert_after("\n")
    text = "\n".join(" ".join(line.split()) for line in root.text(separator="").split("\n"))
    return re.sub(r"\n{2,}", "\n", text).strip(), title


def _rss(text: str, name: str, problem: Problem) -> Iterator[Article]:
    import feedparser

    # Bytes, never a str: feedparser fetches a str that looks like a URL over the network.
    # The text is decoded already, so its XML declaration must now say UTF-8.
    text = _XML_ENCODING.sub(r'\1"utf-8"', text, count=1)
    parsed = feedparser.parse(io.BytesIO(text.encode("utf-8")))
    starts = [m.start() for m in re.finditer(r"<(?:item|entry)[\s>]", text)]
    if parsed.bozo and not parsed.entries:
        reason = getattr(parsed, "bozo_exception", "")
        problem(f"{name}: not a readable RSS/Atom feed ({reason})")
        return
    if parsed.bozo:
        problem(f"{name}: the feed is malformed after item {len(parsed.entries)}; "
                "the items before it were read")
    for index, entry in enumerate(parsed.entries):
        line = text.count("\n", 0, starts[index]) + 1 if index < len(starts) else 1
        html = ""
        if entry.get("content"):
            html = "\n".join(part.get("value", "") for part in entry["content"])
        html = html or entry.get("summary", "") or entry.get("description", "")
        body = html_to_text(html)[0] if "<" in html else html
        article = _article(entry.get("title", ""), body, f"{name}:{line}",
                           url=entry.get("link", ""),
                           date=_feed_date(entry))
        if article:
            yield article
        else:
            problem(f"{name}:{line}: an item with no text")


_XML_ENCODING = re.compile(r"""^(\ufeff?\s*<\?xml[^>]*?encoding\s*=\s*)["'][^"']*["']""")


def _feed_date(entry) -> str:
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if stamp:
        return f"{stamp.tm_year:04d}-{stamp.tm_mon:02d}-{stamp.tm_mday:02d}"
    return entry.get("published", "") or entry.get("updated", "")


_TEXT_KEYS = ("text", "content", "body", "summary", "abstract")


def _jsonl(text: str, name: str, problem: Problem) -> Iterator[Article]:
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            problem(f"{name}:{number}: not valid JSON ({err.msg})")
            continue
        if not isinstance(record, dict):
            problem(f"{name}:{number}: a JSON {type(record).__name__}, not an object")
            continue
        body = next((record[k] for k in _TEXT_KEYS if isinstance(record.get(k), str)
                     and record[k].strip()), "")
        if not body:
            problem(f"{name}:{number}: no \"text\" field")
            continue
        if "<" in body and re.search(r"</?[a-zA-Z][^>]*>", body):
            body = html_to_text(body)[0]
        title = record.get("title", "")
        article = _article(title if isinstance(title, str) else "", body,
                           f"{name}:{number}", url=_string(record, "url", "link"),
                           date=_string(record, "date", "published"))
        if article:
            yield article


def _string(record: dict, *keys: str) -> str:
    for key in keys:
        value = record.get(key)
        if isinstance(value, (str, int, float)) and str(value).strip():
            return str(value)
    return ""


_PARSERS: dict[str, Callable[[str, str, Problem], Iterator[Article]]] = {
    "feed": _feed_page, "text": _plain_text, "markdown": _markdown, "html": _html,
    "rss": _rss, "jsonl": _jsonl}


def check_format(fmt: str) -> None:
    """Raise SourceError listing the valid formats when ``fmt`` is unknown."""
    if fmt not in _PARSERS:
        raise SourceError(f"unknown format {fmt!r}; choose one of {', '.join(sorted(_PARSERS))}")
