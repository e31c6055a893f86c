from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kg.errors import SourceError
from kg.model import Article
from kg.sources.dedup import article_id
from kg.sources import merge_duplicates, read_articles, read_file, sample_path
from kg.sources.formats import looks_like_feed_page, sniff_format
from tests.conftest import ARTICLES


def by_title(articles):
    return {a.title: a for a in articles}


def test_markdown_takes_first_heading_front_matter_and_code():
    [a] = read_file(ARTICLES / "lora-notes.md", "lora-notes.md")
    assert a.title == "LoRA 与 QLoRA 笔记"
    assert (a.date, a.url) == ("2025-03-02", "https://example.org/notes/lora")
    assert "QLoRA 在 LoRA 的基础上" in a.text and "get_peft_model" in a.text
    assert "#" not in a.text and "---" not in a.text


def test_html_keeps_article_text_and_drops_scripts_and_navigation():
    [a] = read_file(ARTICLES / "adam.html", "adam.html")
    assert a.title == "Adam vs AdamW"
    assert "权重衰减" in a.text and "训练 Transformer" in a.text
    assert "tracking" not in a.text and "Archive" not in a.text and "©" not in a.text


def test_rss_items_become_articles_with_link_date_and_line():
    items = read_file(ARTICLES / "feed.xml", "feed.xml")
    assert [a.title for a in items] == ["EAGLE-2 in one page", "FlashAttention recap"]
    assert items[0].url == "https://example.org/eagle2" and items[0].date == "2025-01-06"
    assert items[0].text == "EAGLE-2 builds a dynamic draft tree for speculative decoding."
    assert items[0].sources == ("feed.xml:3",) and items[1].sources == ("feed.xml:6",)


def test_jsonl_reads_fields_and_reports_bad_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    good = (ARTICLES / "digest.jsonl").read_text(encoding="utf-8")
    path.write_text(good + '{"title": broken\n[1, 2]\n{"title": "no text"}\n', encoding="utf-8")
    problems = []
    articles = read_file(path, "d.jsonl", problem=problems.append)
    assert [a.title for a in articles] == ["DeepSeek-V3 速读", "GPT-4o 与 GPT-4"]
    assert articles[0].url == "https://example.org/dsv3" and articles[0].date == "2025-01-10"
    assert [p.split(":")[1] for p in problems] == ["3", "4", "5"]
    assert "not valid JSON" in problems[0] and "no \"text\"" in problems[2]


def test_plain_text_uses_a_short_first_line_as_title():
    [a] = read_file(ARTICLES / "plain.txt", "plain.txt")
    assert a.title == "混合精度训练入门"
    assert a.text.startswith("混合精度训练同时使用 FP16")


def test_feed_page_skips_header_and_pagination_and_marks_cuts():
    articles = read_file(ARTICLES / "page.txt", "page.txt")
    assert len(articles) == 3
    assert [a.sources[0] for a in articles] == ["page.txt:4", "page.txt:5", "page.txt:6"]
    assert [a.truncated for a in articles] == [True, False, True]
    assert not articles[0].text.endswith("...")


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("a.txt", '<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom">', "rss"),
    ("a.md", "<!DOCTYPE html><html><body>x</body></html>", "html"),
    ("notes", '{"title": "t", "text": "x"}\n', "jsonl"),
    ("a.md", "# Title\n\nOne article.\n", "markdown"),
    ("a.txt", "Title\n\nOne article with a single paragraph of text here.\n", "text"),
    ("a.md", "NEWS\n" + "x" * 40 + "...\n" + "y" * 40 + "...\n1 2\n", "feed"),
])
def test_format_is_decided_by_content_then_extension(name, text, expected):
    assert sniff_format(Path(name), text) == expected


def test_a_page_of_whole_paragraphs_is_not_a_feed():
    text = "Title\n\n" + "A full paragraph of prose that ends properly.\n" * 3
    assert not looks_like_feed_page(text)


def test_copies_cut_at_other_lengths_become_one_article_with_every_source():
    articles = read_file(ARTICLES / "page.txt", "page.txt")
    merged = merge_duplicates(articles)
    assert len(merged) == 2
    medusa = merged[0]
    assert medusa.sources == ("page.txt:4", "page.txt:5")
    assert medusa.text.endswith("不需要单独的草稿模型。") and not medusa.truncated


def test_articles_that_only_open_alike_stay_apart():
    opening = "参数高效微调系列：本系列整理几种只训练少量参数的方法。"
    a = Article("", "", opening + "本篇讲 LoRA 的低秩分解。", ("p1:3",), truncated=True)
    b = Article("", "", opening + "本篇讲 Prefix Tuning 的前缀向量。", ("p1:4",), truncated=True)
    short = Article("", "", opening + "本篇讲 LoRA", ("p2:3",), truncated=True)
    merged = merge_duplicates([a, b, short])
    assert len(merged) == 2
    assert merged[0].sources == ("p1:3", "p2:3")


def test_a_complete_short_article_is_not_swallowed_by_a_longer_one():
    a = Article("", "", "Adam 很常用。", ("p1:3",))
    b = Article("", "", "Adam 很常用。AdamW 更常用。", ("p1:4",))
    assert len(merge_duplicates([a, b])) == 2


@given(st.lists(st.tuples(st.sampled_from(["ab", "ab c", "ab cd", "a  b", "x"]),
                          st.booleans(), st.sampled_from(["", "", "u1"])), max_size=8))
def test_merging_keeps_reading_order_and_every_source(rows):
    articles = [Article("", "", text, (f"p:{i}",), url, "", cut)
                for i, (text, cut, url) in enumerate(rows)]
    merged = merge_duplicates(articles)
    sources = [s for a in merged for s in a.sources]
    assert sorted(sources) == sorted(a.sources[0] for a in articles)   # each copy once
    firsts = [min(int(s.split(":")[1]) for s in a.sources) for a in merged]
    assert firsts == sorted(firsts)                # in the order first read
    for a in merged:
        assert list(a.sources) == sorted(a.sources, key=lambda s: int(s.split(":")[1]))
        assert a.id == article_id(a.text, a.url)


def test_ids_are_stable_and_namespaced_by_content():
    first = read_articles([ARTICLES])
    again = read_articles([ARTICLES])
    assert [a.id for a in first] == [a.id for a in again]
    assert len({a.id for a in first}) == len(first)


def test_folders_are_read_recursively_with_names_relative_to_the_folder(tmp_path):
    (tmp_path / "feeds" / "more").mkdir(parents=True)
    (tmp_path / "feeds" / "more" / "x.md").write_text("# LoRA\n\nLoRA 很省显存。\n", encoding="utf-8")
    (tmp_path / "feeds" / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    [a] = read_articles([tmp_path / "feeds"])
    assert a.sources == ("feeds/more/x.md:1",)


@pytest.mark.parametrize("encoding", ["gb18030", "utf-16", "utf-8-sig"])
def test_encodings_are_detected(tmp_path, encoding):
    path = tmp_path / "a.txt"
    path.write_bytes("标题\n\n混合精度训练使用 FP16 与 FP32 两种精度来加快训练速度并节省显存。".encode(encoding))
    [a] = read_file(path, "a.txt")
    assert a.title == "标题" and "FP16" in a.text


def test_unreadable_files_are_reported_by_name_and_the_rest_is_read(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "good.md").write_text("# AdamW\n\nAdamW 解耦了权重衰减。\n", encoding="utf-8")
    problems = []
    articles = read_articles([tmp_path], problem=problems.append)
    assert [a.title for a in articles] == ["AdamW"]
    assert sorted(p.split(" ")[0] for p in problems) == [f"{tmp_path.name}/binary.txt",
                                                         f"{tmp_path.name}/empty.txt"]


def test_a_missing_path_raises_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        read_articles([tmp_path / "nope"])


def test_control_characters_never_reach_articles(tmp_path):
    path = tmp_path / "c.md"
    path.write_text("# A\x07B\n\nLoRA\x00 微调\x1b 模型。\n", encoding="utf-8")
    [a] = read_file(path, "c.md")
    assert a.title == "AB" and a.text == "LoRA 微调 模型。"


def test_sample_feed_has_overlapping_pages_and_over_thirty_articles():
    pages = sorted(sample_path().glob("*.txt"))
    articles = read_articles([sample_path()])
    assert len(pages) >= 3 and len(articles) >= 30
    assert sum(1 for a in articles if len(a.sources) > 1) >= 5


def test_seed_pages_hold_31_distinct_articles(seeds):
    articles = read_articles([seeds])
    assert len(articles) == 31
    lines = sum(1 for p in seeds.glob("*.txt")
                for line in p.read_text(encoding="utf-8").splitlines() if len(line.strip()) >= 30)
    assert sum(len(a.sources) for a in articles) == lines     # every article line is kept
    assert all(not a.text.endswith("...") for a in articles)


def test_a_feed_in_gbk_with_its_declaration_reads_right(tmp_path):
    xml = ('<?xml version="1.0" encoding="gb2312"?><rss version="2.0"><channel><title>t</title>'
           '<item><title>投机解码</title><description>投机解码用草稿模型加速。</description></item>'
           '</channel></rss>')
    path = tmp_path / "gbk.xml"
    path.write_bytes(xml.encode("gb2312"))
    [a] = read_file(path, "gbk.xml")
    assert a.title == "投机解码" and a.text == "投机解码用草稿模型加速。"
