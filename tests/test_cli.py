from __future__ import annotations

import networkx as nx
from click.testing import CliRunner

from kg.cli import main
from tests.conftest import ARTICLES


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_build_writes_every_output(tmp_path):
    result = run("build", str(ARTICLES), "-o", str(tmp_path), "--format", "graphml,html,json")
    assert result.exit_code == 0, result.output
    for name in ["graph.graphml", "graph.html", "graph.json", "concepts.csv", "merges.csv"]:
        assert (tmp_path / name).stat().st_size > 0
    assert "articles" in result.output and "concepts" in result.output


def test_two_builds_write_identical_graphml(tmp_path):
    run("build", str(ARTICLES), "-o", str(tmp_path / "a"))
    run("build", str(ARTICLES), "-o", str(tmp_path / "b"))
    assert (tmp_path / "a" / "graph.graphml").read_bytes() == \
        (tmp_path / "b" / "graph.graphml").read_bytes()


def test_a_missing_path_is_a_usage_error_naming_it(tmp_path):
    result = run("build", str(tmp_path / "nope"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == f"Error: {tmp_path / 'nope'}: no such file or folder"


def test_a_folder_without_articles_is_a_one_line_error(tmp_path):
    result = run("build", str(tmp_path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error:") and "holds no readable articles" in result.output


def test_an_unreadable_file_is_named_and_skipped(tmp_path):
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "bad.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "feeds" / "ok.md").write_text("# LoRA\n\nLoRA 微调。\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(tmp_path / "feeds"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0
    assert "Skipped 1 input(s):\n  feeds/bad.txt is not text" in result.output
    assert "1 articles" in result.output and "1 input(s) skipped" in result.output


def test_unknown_format_is_refused():
    result = run("build", str(ARTICLES), "--format", "pdf")
    assert result.exit_code == 2 and "pdf" in result.output


def test_sample_flag_builds_the_bundled_feed(tmp_path):
    result = run("build", "--sample", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    G = nx.read_graphml(tmp_path / "graph.graphml")
    assert sum(1 for _, k in G.nodes(data="kind") if k == "article") >= 30


def test_every_command_has_help():
    assert all(command.help for command in main.commands.values())


def test_user_vocabulary_adds_concepts_and_aliases(tmp_path):
    vocab = tmp_path / "mine.jsonl"
    vocab.write_text('{"name": "Zebra Decoding", "type": "method", "zh": ["斑马解码"]}\n'
                     '{"name": "LoRA", "aliases": ["low rank adapters"]}\n', encoding="utf-8")
    (tmp_path / "a.md").write_text("# t\n\n斑马解码和 low rank adapters 一起用。\n", encoding="utf-8")
    result = run("build", str(tmp_path / "a.md"), "--vocab", str(vocab), "-o", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    G = nx.read_graphml(tmp_path / "o" / "graph.graphml")
    assert G.nodes["concept:zebra-decoding"]["type"] == "method"
    assert "low rank adapters" in G.nodes["concept:lora"]["aliases"]


def test_a_malformed_user_vocabulary_names_file_and_line(tmp_path):
    vocab = tmp_path / "mine.jsonl"
    vocab.write_text('{"name": "A"}\n{"name": "B", "type": "gadget"}\n', encoding="utf-8")
    result = run("build", str(ARTICLES), "--vocab", str(vocab), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1 and "mine.jsonl:2" in result.output and "gadget" in result.output


def test_merge_rules_force_forbid_and_drop(tmp_path):
    (tmp_path / "a.md").write_text("# t\n\nFooNet 用 Adam 和 AdamW 训练，并和 Token 以及 BarNet 比较。\n"
                                   "狐狸网络(FooNet)很快。\n", encoding="utf-8")
    rules = tmp_path / "rules.txt"
    rules.write_text("# mine\nAdam = AdamW\nFooNet != 狐狸网络\n- BarNet\n", encoding="utf-8")
    result = run("build", str(tmp_path / "a.md"), "--aliases", str(rules), "-o", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    G = nx.read_graphml(tmp_path / "o" / "graph.graphml")
    labels = {d["label"] for _, d in G.nodes(data=True) if d["kind"] == "concept"}
    assert "AdamW" not in labels or "Adam" not in labels      # forced into one node
    assert {"FooNet", "狐狸网络"} <= labels                     # kept apart
    assert "BarNet" not in labels                               # dropped
    merges = (tmp_path / "o" / "merges.csv").read_text(encoding="utf-8")
    assert "forced by the user" in merges


def test_a_bad_merge_rule_names_its_line(tmp_path):
    rules = tmp_path / "rules.txt"
    rules.write_text("A = B\nthis is not a rule\n", encoding="utf-8")
    result = run("build", str(ARTICLES), "--aliases", str(rules), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1 and "rules.txt:2" in result.output
