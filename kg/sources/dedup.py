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
    order = {id(a): i for i, a in enumerate(articles)}
    keyed = [(" ".join(a.text.split()), a) for a in articles]
    keyed.sort(key=lambda pair: (-len(pair[0]), order[id(pair[1])]))
    groups: list[list[Article]] = []
    texts: list[str] = []
    by_opening: dict[str, list[int]] = defaultdict(list)
    by_url: dict[str, int] = {}
    for text, article in keyed:
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
            by_opening[text[:_BUCKET]].append(home)
        groups[home].append(article)
        if article.url:
            by_url.setdefault(article.url, home)
    merged = [_merge(group, order, text) for group, text in zip(groups, texts)]
    firsts = [min(order[id(a)] for a in group) for group in groups]
    return [article for _, article in sorted(zip(firsts, merged), key=lambda p: p[0])]


def _merge(group: list[Article], order: dict[int, int], spaced: str) -> Article:
    """One article of a group of copies; ``spaced`` is its text with spacing normalised."""
    longest = group[0]
    if len(group) == 1:
        return Article(_id(spaced, longest.url), longest.title, longest.text,
                       tuple(dict.fromkeys(longest.sources)), longest.url, longest.date,
                       longest.truncated)
    by_reading = sorted(group, key=lambda a: order[id(a)])
    sources = tuple(dict.fromkeys(s for a in by_reading for s in a.sources))
    url = next((a.url for a in by_reading if a.url), "")
    date = next((a.date for a in by_reading if a.date), "")
    return Article(_id(spaced, url), longest.title, longest.text, sources, url, date,
                   longest.truncated)
