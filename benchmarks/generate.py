"""Write a large feed folder made from the bundled sample articles, mutated, deterministic.

    python benchmarks/generate.py OUT --articles 20000 [--seed 0]

Each page holds ten articles in the feed-page shape. Every article differs from every
other (sentences reordered and cut, numbers changed, concept names swapped in from the
vocabulary, a serial number), so spaCy's tokenizer cache cannot flatter the timings.
"""
from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from kg.lexicon import load_lexicon
from kg.sources import read_articles, sample_path

_SENTENCE = re.compile(r"(?<=[。！？；.!?])\s*")
_NUMBER = re.compile(r"\d+")


def mutate(text: str, names: list[str], rng: random.Random, serial: int) -> str:
    """One new article from a sample article's text."""
    sentences = [s for s in _SENTENCE.split(text) if s]
    rng.shuffle(sentences)
    keep = sentences[:max(1, rng.randint(len(sentences) // 2, len(sentences)))]
    body = "".join(keep)
    body = _NUMBER.sub(lambda m: str(rng.randint(1, 999)), body)
    extra = "、".join(rng.sample(names, 3))
    return f"第{serial}篇：{body} 相关：{extra}。"


def write_feed(out: Path, n_articles: int, *, seed: int = 0, per_page: int = 10,
               cut: int = 250) -> list[Path]:
    """Write ``n_articles`` articles as feed pages under ``out``; return the pages."""
    rng = random.Random(seed)
    base = [a.text for a in read_articles([sample_path()])]
    names = sorted({e.name for e in load_lexicon()})
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for page_no in range(0, n_articles, per_page):
        lines = ["ML READING FEED", "", "LATEST POSTS"]
        for serial in range(page_no, min(n_articles, page_no + per_page)):
            text = mutate(rng.choice(base), names, rng, serial)
            if len(text) > cut:
                text = text[:cut] + "..."
            lines.append(text)
        lines.append("1 2")
        page = out / f"page_{page_no // per_page:06d}.txt"
        page.write_text("\n".join(lines) + "\n", encoding="utf-8")
        pages.append(page)
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pages = write_feed(args.out, args.articles, seed=args.seed)
    print(f"{args.articles} articles in {len(pages)} pages -> {args.out}")


if __name__ == "__main__":
    main()
