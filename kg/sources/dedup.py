"""Merge copies of one article seen on several pages, possibly cut at other lengths."""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

from kg.model import Article

__all__ = ["merge_duplicates", "article_id"]

_BUCKET = 24   # characters of the opening used to find candidate copies


def article_id(text: str, url: str = "") -> str:
    """A short stable id: from the URL when known, else from the full text.

    >>> article_id("LoRA 微调")
    'a1a403da01af'
    """
    return _id(" ".join(text.split()), url)


def _id(spaced: str, url: str) -> str:
    basis = f"url:{url}" if url else spaced
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()[:12]


def merge_duplicates(articles: Iterable[Article]) -> list[Article]:
    """Return one article per distinct text, keeping the longest copy and every source.

    A copy is another article whose text, cut with ``...``, is the start of this one, or
    which has the same URL. Two articles that only open alike (both going on past the
    shared part) stay two. A cut copy that could be the start of several articles joins
    the longest of them. The order of the result is the order of first appearance.

    Examples
    --------
    >>> a = Article("", "", "Adam 与 AdamW 的区别在于", ("p1.txt:4",), truncated=True)
    >>> b = Article("", "", "Adam 与 AdamW 的区别在于权重衰减。", ("p2.txt:5",))
    >>> [(x.text, x.sources) for x in merge_duplicates([a, b])]
    [('Adam 与 AdamW 的区别在于权重衰减。', ('p1.txt:4', 'p2.txt:5'))]
    """
    articles = list(articles)
    # longest first; equal lengths in reading order (the sort is stable, reversed too)
    keyed = sorted([(" ".join(a.text.split()), i, a) for i, a in enumerate(articles)],
                   key=lambda item: len(item[0]), reverse=True)
    groups: list[list[tuple[int, Article]]] = []
    texts: list[str] = []
    firsts: list[int] = []          # where each group's first copy was read
    by_opening: dict[str, list[int]] = defaultdict(list)
    by_url: dict[str, int] = {}
    for text, i, article in keyed:
        home = by_url.get(article.url) if article.url else None
        if home is None:
            candidates = by_opening.get(text[:_BUCKET], ()) if len(text) >= _BUCKET else \
                [g for key, groups in by_opening.items() if key.startswith(text) for g in groups]
            home = next((g for g in candidates
                         if texts[g] == text or (article.truncated and texts[g].startswith(text))),
                        None)
        if home is None:
            home = len(groups)
            groups.append([])
            texts.append(text)
            firsts.append(i)
            by_opening[text[:_BUCKET]].append(home)
        elif i < firsts[home]:
            firsts[home] = i
        groups[home].append((i, article))
        if article.url:
            by_url.setdefault(article.url, home)
    merged = [_merge(group, text) for group, text in zip(groups, texts)]
    return [article for _, article in sorted(zip(firsts, merged), key=lambda p: p[0])]


def _merge(group: list[tuple[int, Article]], spaced: str) -> Article:
    """One article of a group of copies (with where each was read, the longest first);
    ``spaced`` is its text with spacing normalised."""
    longest = group[0][1]
    if len(group) == 1:
        sources = longest.sources
        if len(sources) > 1 or type(sources) is not tuple:
            sources = tuple(dict.fromkeys(sources))
        return Article(_id(spaced, longest.url), longest.title, longest.text, sources,
                       longest.url, longest.date, longest.truncated)
    by_reading = [a for _, a in sorted(group, key=lambda item: item[0])]
    sources = tuple(dict.fromkeys(s for a in by_reading for s in a.sources))
    url = next((a.url for a in by_reading if a.url), "")
    date = next((a.date for a in by_reading if a.date), "")
    return Article(_id(spaced, url), longest.title, longest.text, sources, url, date,
                   longest.truncated)
