"""Screenshot the viewer on the bundled sample feed, for the README.

    python benchmarks/screenshot.py docs/viewer.png [--search Medusa]

Needs Debian's chromium, and fonts-noto-cjk for the Chinese labels.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from kg import pipeline
from kg.export import write_html
from kg.lexicon import load_lexicon
from kg.sources import read_articles, sample_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--search", default="Medusa")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    G = pipeline.build(read_articles([sample_path()]), load_lexicon()).graph
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        page_path = Path(tmp) / "graph.html"
        write_html(G, page_path)
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.goto(page_path.as_uri())
        page.wait_for_function("typeof network !== 'undefined'")
        page.wait_for_timeout(4000)                 # let the layout settle
        page.fill("#search", args.search)
        page.press("#search", "Enter")
        page.wait_for_timeout(1200)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"screenshot -> {args.out}")


if __name__ == "__main__":
    main()
