"""Messy inputs and interrupted builds: every readable article, clear reasons, no lost work."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.cli import main
from kg.extract import extract
from kg.model import Article
from kg.sources import read_articles
from kg.sources.formats import parse

PAGE = ("TECH FEED\n\nNEWS\n"
        "混合精度训练同时使用FP16和FP32两种精度，主权重保留单精度，并用损失缩放避免梯度下溢...\n"
        "LoRA只训练两个低秩矩阵，QLoRA再把底座量化成NF4，显存占用更低，适合单卡微调...\n1 2\n")


@pytest.fixture()
def messy(tmp_path):
    """A feed folder with one file for each kind of trouble, written here."""
    root = tmp_path / "feeds"
    root.mkdir()
    (root / "gbk.txt").write_bytes(PAGE.encode("gbk"))
    (root / "utf16.md").write_bytes("# AdamW 笔记\n\nAdamW 把权重衰减从梯度里解耦。\n".encode("utf-16"))
    (root / "bom.md").write_bytes("\ufeff# FlashAttention\n\nFlashAttention 分块计算注意力。\n".encode())
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (root / "binary.txt").write_bytes(bytes(range(256)) * 16)
    (root / "empty.txt").write_bytes(b"")
    (root / "header-only.txt").write_text("TECH FEED\n\nNEWS\n1 2\n", encoding="utf-8")
    (root / "digest.jsonl").write_text(
        '{"title": "Medusa", "text": "Medusa 用多个解码头做投机解码。"}\n'
        '{"title": "broken", "text": \n'
        '{"title": "EAGLE", "text": "EAGLE-2 用动态草稿树。"}\n', encoding="utf-8")
    (root / "half.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        '<item><title>DPO</title><description>DPO 直接用偏好数据优化策略。</description></item>'
        '<item><title>PPO</title><description>PPO 用裁剪的', encoding="utf-8")
    (root / "control.md").write_text("# Ctrl\x07\n\nKV cache\x00 让解码\x1b更快。\n", encoding="utf-8")
    (root / "long.txt").write_text("标题\n\n" + "SGD 和 Adam 都是优化器。" * 300_000, encoding="utf-8")
    (root / "loop").symlink_to(root)                      # a folder that contains itself
    return root


def test_every_readable_article_is_read_and_every_skip_named(messy):
    problems = []
    start = time.perf_counter()
    articles = read_articles([messy], problem=problems.append)
    assert time.perf_counter() - start < 30                 # a 5 MB line costs no more
    titles = {a.title for a in articles}
    assert {"AdamW 笔记", "FlashAttention", "Medusa", "EAGLE", "DPO", "Ctrl", "标题"} <= titles
    assert any("混合精度训练" in a.text for a in articles)     # the GBK feed page
    assert all("\x00" not in a.text and "\x07" not in a.title for a in articles)
    assert max(len(a.text) for a in articles) <= 100_000
    text = "\n".join(problems)
    for expected in ["photo.png: not an article format", "binary.txt is not text",
                     "empty.txt is empty", "header-only.txt: no article text",
                     "digest.jsonl:2: not valid JSON", "half.xml: the feed is malformed",
                     "loop: a link back to a folder already read"]:
        assert expected in text, expected


def test_build_finishes_with_exit_0_and_a_summary_and_strict_fails(messy, tmp_path):
    result = CliRunner().invoke(main, ["build", str(messy), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "input(s) skipped" in result.output and "Skipped" in result.output
    assert nx.read_graphml(tmp_path / "out" / "graph.graphml").number_of_nodes() > 5
    strict = CliRunner().invoke(main, ["build", str(messy), "-o", str(tmp_path / "s"), "--strict"])
    assert strict.exit_code == 1 and "--strict" in strict.output
    assert not (tmp_path / "s" / "graph.graphml").exists()
    usage = CliRunner().invoke(main, ["build", str(messy), "--jobs", "0"])
    assert usage.exit_code == 2


def test_an_unexpected_error_is_one_line_unless_debug(monkeypatch, tmp_path):
    from kg import pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "build", broken)
    feed = tmp_path / "a.md"
    feed.write_text("# t\n\nLoRA 微调。\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(feed), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "unexpected RuntimeError: boom" in result.output and "--debug" in result.output
    debug = CliRunner().invoke(main, ["build", str(feed), "-o", str(tmp_path / "o"), "--debug"])
    assert isinstance(debug.exception, RuntimeError)


# --- property tests ----------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400) | \
    st.lists(st.sampled_from(["LoRA", "投机解码", "(", ")", "（MTP）", "...", "\n", " ", "GPT-4o",
                              "也叫", "https://x.org/a", "Qwen1.57BChat", "。", "nn.Dropout",
                              "AdamW", "1 2", "{", "\"", "<script>", "\x00"]),
             max_size=60).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT, fmt=st.sampled_from(["feed", "text", "markdown", "jsonl", "html", "rss"]))
def test_arbitrary_text_never_crashes_a_reader(text, fmt):
    for article in parse(fmt, text, "x", lambda message: None):
        assert article.text and "\x00" not in article.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT.filter(lambda t: t.strip()), cut=st.booleans())
def test_arbitrary_text_extracts_with_exact_offsets(nlp, text, cut):
    [result] = extract([Article("a", "", text, truncated=cut)], nlp)
    for mention in result.mentions:
        assert text[mention.start:mention.end] == mention.surface and mention.surface


# --- interrupted builds ------------------------------------------------------------------

def _kg(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kg.cli", "build", *args, "-q", "-j", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _valid_or_absent(out: Path) -> None:
    for name in ("graph.graphml", "graph.html", "concepts.csv", "merges.csv"):
        path = out / name
        if not path.exists():
            continue
        if name.endswith(".graphml"):
            nx.read_graphml(path)
        elif name.endswith(".html"):
            assert path.read_text(encoding="utf-8").rstrip().endswith("</html>")
        else:
            assert path.read_text(encoding="utf-8").endswith("\n")


def test_a_killed_build_leaves_valid_outputs_and_the_rerun_matches(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from generate import write_feed

    feed = tmp_path / "feed"
    write_feed(feed, 3000, seed=1)
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "kg.cli", "build", str(feed), "-o", str(clean), "-q",
                    "--no-cache"], check=True)
    out = tmp_path / "out"
    for delay in (0.8, 2.0, 3.5, 5.0):
        process = _kg(str(feed), "-o", str(out))
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        _valid_or_absent(out)
    import sqlite3

    with sqlite3.connect(out / ".kg-cache.sqlite") as db:      # the killed builds' work is kept
        assert db.execute("SELECT count(*) FROM extractions").fetchone()[0] > 0
    subprocess.run([sys.executable, "-m", "kg.cli", "build", str(feed), "-o", str(out), "-q"],
                   check=True)
    assert (out / "graph.graphml").read_bytes() == (clean / "graph.graphml").read_bytes()


def test_a_feed_that_is_only_a_url_is_never_fetched(monkeypatch):
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("a reader tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)
    problems = []
    assert parse("rss", "http://example.org/feed.xml", "f.xml", problems.append) == []
    assert problems and "not a readable RSS/Atom feed" in problems[0]
