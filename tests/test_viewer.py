"""The HTML viewer in headless Chromium (Debian's), with the network blocked."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kg import pipeline
from kg.export import write_html
from kg.sources import read_articles

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("chromium") is None,
                                 reason="Debian's chromium is not installed (make test installs it)")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield browser
        browser.close()


def open_page(browser, path: Path):
    """Open ``path`` with every non-file request blocked and recorded."""
    context = browser.new_context(viewport={"width": 1300, "height": 850})
    page = context.new_page()
    outside, errors = [], []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_function("typeof network !== 'undefined' && NODES.length > 0")
    return page, outside, errors


def build_html(lexicon, paths, out: Path) -> Path:
    G = pipeline.build(read_articles(paths), lexicon).graph
    write_html(G, out)
    return out


@pytest.fixture(scope="module")
def seed_page(seeds, lexicon, tmp_path_factory):
    return build_html(lexicon, [seeds], tmp_path_factory.mktemp("seeds") / "graph.html")


def test_page_loads_offline_with_no_outside_request_and_no_error(browser, seed_page):
    page, outside, errors = open_page(browser, seed_page)
    page.wait_for_timeout(500)
    assert outside == [] and errors == []
    assert page.evaluate("NODES.length") > 100


def test_search_medusa_shows_the_medusa_article(browser, seed_page):
    page, _, errors = open_page(browser, seed_page)
    page.fill("#search", "Medusa")
    page.press("#search", "Enter")
    panel = page.locator("#panel")
    assert panel.locator("h2").inner_text() == "Medusa"
    assert "自投机" in panel.inner_text()        # the Medusa article's sentence is listed
    assert panel.locator("mark").count() >= 1   # with the mention highlighted
    assert errors == []


def test_search_finds_chinese_aliases(browser, seed_page):
    page, _, _ = open_page(browser, seed_page)
    page.fill("#search", "投机解码")
    page.press("#search", "Enter")
    assert page.locator("#panel h2").inner_text() == "Speculative Decoding"


def test_clicking_a_concept_lists_its_articles(browser, seed_page):
    page, _, _ = open_page(browser, seed_page)
    node = page.evaluate("NODES.find(n => n.label === 'AdamW').id")
    page.evaluate("network.stopSimulation()")      # a node still settling can move off
    page.evaluate(f"network.moveTo({{position: network.getPositions(['{node}'])['{node}'], scale: 1.5}})")
    page.wait_for_timeout(300)
    x, y = page.evaluate(f"(() => {{ const p = network.getPositions(['{node}'])['{node}'];"
                         f" const d = network.canvasToDOM(p); const r ="
                         f" document.getElementById('mynetwork').getBoundingClientRect();"
                         f" return [d.x + r.left, d.y + r.top]; }})()")
    page.mouse.click(x, y)
    panel = page.locator("#panel")
    assert panel.locator("h2").inner_text() == "AdamW"
    articles = panel.locator("ul.articles li > a.go")
    assert articles.count() >= 2
    articles.first.click()                       # a list entry moves to that article
    assert page.evaluate("network.getSelectedNodes()[0]").startswith("article:")


def test_type_filter_hides_nodes(browser, seed_page):
    page, _, _ = open_page(browser, seed_page)
    page.uncheck("#legend input[data-type='method']")
    hidden = page.evaluate("nodes.get().filter(n => n.type === 'method' && n.hidden).length")
    assert hidden == page.evaluate("NODES.filter(n => n.type === 'method').length") > 0


def test_feed_markup_never_runs(browser, lexicon, tmp_path):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "evil.md").write_text(
        "# <script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">\n\n"
        "LoRA 微调。<svg onload=\"window.__pwned = 3\"></svg> 用 AdamW 训练。\n", encoding="utf-8")
    (feed / "evil.jsonl").write_text(
        '{"title": "<svg/onload=window.__pwned=4>", "text": "FlashAttention <script>window.__pwned=5</script> 很快"}\n',
        encoding="utf-8")
    page, outside, errors = open_page(browser, build_html(lexicon, [feed], tmp_path / "g.html"))
    for query in ["LoRA", "FlashAttention", "script"]:
        page.fill("#search", query)
        page.press("#search", "Enter")
        page.wait_for_timeout(100)
    for node in page.evaluate("NODES.map(n => n.id)"):
        page.evaluate(f"show({node!r})")
    assert page.evaluate("window.__pwned === undefined")
    assert outside == [] and errors == []
