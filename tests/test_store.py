from __future__ import annotations

import sqlite3

from click.testing import CliRunner

from kg.cli import main
from kg.model import Article, Extraction, Mention
from kg.store import ExtractionCache
from tests.conftest import ARTICLES


def result(article_id: str, key: str = "lora") -> Extraction:
    return Extraction(article_id, (Mention(article_id, "LoRA", key, 0, 4),))


def test_entries_are_keyed_by_text_and_extractor(tmp_path):
    a = Article("a", "", "LoRA 微调")
    cache = ExtractionCache(tmp_path / "c.sqlite", "v1")
    cache.put([(a, result("a"))])
    same_text = Article("other-id", "", "LoRA 微调")
    assert cache.get([same_text])["other-id"].mentions[0].article_id == "other-id"
    assert cache.get([Article("a", "", "LoRA 微调!")]) == {}
    assert cache.get([Article("a", "", "LoRA 微调", truncated=True)]) == {}
    cache.close()
    assert ExtractionCache(tmp_path / "c.sqlite", "v2").get([a]) == {}   # new extractor


def test_few_or_most_of_the_entries_are_found_alike(tmp_path):
    # few wanted: looked up by key; most of the table: read in one scan
    articles = [Article(str(i), "", f"LoRA 第{i}篇") for i in range(10)]
    cache = ExtractionCache(tmp_path / "c.sqlite", "v1")
    cache.put([(a, result(a.id)) for a in articles[:8]])
    for wanted in (articles[:1], articles[6:], articles):
        found = cache.get(wanted)
        assert sorted(found) == sorted(a.id for a in wanted[:8] if int(a.id) < 8)
        assert all(found[i].mentions[0].article_id == i for i in found)
    cache.close()


def test_reading_many_entries_lets_the_caller_act_meanwhile(tmp_path):
    articles = [Article(str(i), "", f"LoRA 第{i}篇") for i in range(2500)]
    cache = ExtractionCache(tmp_path / "c.sqlite", "v1")
    cache.put([(a, result(a.id)) for a in articles])
    ticks = []
    found = cache.read(cache.find(articles), tick=lambda: ticks.append(1))
    assert len(found) == 2500 and len(ticks) >= 3      # one a thousand entries decoded
    cache.close()


def test_a_corrupt_cache_is_set_aside_and_rebuilt(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = ExtractionCache(path, "v1")
    assert "not a readable cache" in caplog.text
    assert list(tmp_path.glob("c.sqlite.corrupt-*"))
    cache.put([(Article("a", "", "x"), result("a"))])
    assert cache.get([Article("a", "", "x")])
    cache.close()


def test_entries_of_an_older_form_are_dropped_and_damaged_ones_ignored(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as db:       # a cache written by kg before entries were marshal
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema', '1')")
        db.execute("CREATE TABLE extractions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO extractions VALUES ('k', '[[], []]')")
    db.close()
    cache = ExtractionCache(path, "v1")
    a, b = Article("a", "", "LoRA 微调"), Article("b", "", "QLoRA")
    assert cache.db.execute("SELECT count(*) FROM extractions").fetchone() == (0,)
    cache.put([(a, result("a")), (b, result("b"))])
    cache.db.execute("UPDATE extractions SET value = ? WHERE key = ?", (b"\xff", cache.key(b)))
    assert list(cache.get([a, b])) == ["a"]
    assert "damaged cache entry" in caplog.text
    cache.close()


def test_a_rebuild_reuses_the_cache_and_says_so(tmp_path):
    out = tmp_path / "out"
    first = CliRunner().invoke(main, ["build", str(ARTICLES), "-o", str(out)])
    again = CliRunner().invoke(main, ["build", str(ARTICLES), "-o", str(out)])
    assert first.exit_code == again.exit_code == 0
    assert "reused" not in first.output and "reused from the cache" in again.output
    assert (out / ".kg-cache.sqlite").exists()
    fresh = CliRunner().invoke(main, ["build", str(ARTICLES), "-o", str(tmp_path / "o2"),
                                      "--no-cache"])
    assert not (tmp_path / "o2" / ".kg-cache.sqlite").exists()
    assert (out / "graph.graphml").read_bytes() == (tmp_path / "o2" / "graph.graphml").read_bytes()
    assert fresh.exit_code == 0


def test_cached_and_fresh_extraction_give_the_same_graph(tmp_path):
    cache = tmp_path / "c.sqlite"
    for out in ("a", "b"):
        CliRunner().invoke(main, ["build", "--sample", "-o", str(tmp_path / out),
                                  "--cache", str(cache)])
    assert (tmp_path / "a" / "graph.graphml").read_bytes() == \
        (tmp_path / "b" / "graph.graphml").read_bytes()
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT count(*) FROM extractions").fetchone()[0] >= 40
