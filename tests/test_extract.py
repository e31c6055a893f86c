from __future__ import annotations

import pytest

from kg.discover import find_definitions, find_terms, is_noise
from kg.extract import extract, tokenize
from kg.model import Article


def found(nlp, text, *, truncated=False):
    [result] = extract([Article("t", "", text, truncated=truncated)], nlp)
    return result


@pytest.mark.parametrize(("text", "tokens"), [
    ("Qwen1.5-7B-Chat和GPT-4o", ["Qwen1.5-7B-Chat", "和", "GPT-4o"]),
    ("torch.nn.functional里的nn.Dropout", ["torch.nn.functional", "里", "的", "nn.Dropout"]),
    ("Top-1精度, A800显卡, FP16", ["Top-1", "精", "度", ",", "A800", "显", "卡", ",", "FP16"]),
    ("双线性插值", ["双", "线", "性", "插", "值"]),
])
def test_tokenizer_keeps_technical_names_whole(text, tokens):
    assert tokenize(text) == tokens


@pytest.mark.parametrize(("text", "keys"), [
    ("我们用LoRA微调模型", ["lora", "fine-tuning"]),
    ("使用如双线性插值等插值方法", ["bilinear-interpolation"]),
    ("AdamW 与 Adam 不同", ["adamw", "adam"]),
    ("GPT-4o 不是 GPT-4", ["gpt-4o", "gpt-4"]),
])
def test_vocabulary_terms_match_whole_tokens_in_both_scripts(nlp, text, keys):
    mentions = [m for m in found(nlp, text).mentions if m.concept_key]
    assert [m.concept_key for m in mentions] == keys


def test_a_latin_name_never_matches_inside_a_longer_word(nlp, lexicon):
    gan = next(e.key for e in lexicon if "GAN" in e.terms)
    assert not [m for m in found(nlp, "ORGANIC 和 MORGAN").mentions if m.concept_key == gan]
    assert [m.concept_key for m in found(nlp, "ORGAN 不是 GAN").mentions] == [gan]


def test_longest_match_wins(nlp):
    keys = [m.concept_key for m in found(nlp, "参数高效微调很省显存").mentions if m.concept_key]
    assert keys[0] == "peft"


def test_offsets_give_back_the_surface(nlp):
    text = "概述：Medusa 用多个解码头，EAGLE-2 用动态草稿树，两者都属于投机解码。"
    result = found(nlp, text)
    assert result.mentions
    assert all(text[m.start:m.end] == m.surface for m in result.mentions)


def test_a_mention_cut_by_the_ellipsis_is_dropped(nlp):
    keys = [m.concept_key for m in found(nlp, "我们对比了 SGD 和 Adam", truncated=True).mentions]
    assert keys == ["sgd"]   # the cut "Adam" may have been "AdamW"


def test_unknown_names_are_discovered_with_a_type_from_cue_words(nlp):
    result = found(nlp, "FooNet 模型使用 BarViT 作为视觉编码器。")
    discovered = {m.surface: m.type for m in result.mentions if not m.concept_key}
    assert discovered == {"FooNet": "model", "BarViT": ""}


@pytest.mark.parametrize("term", ["2.8B", "320×320", "1x1", "80GB", "v2", "Top1", "nn.Xxx",
                                  "requires_grad", "JSON", "The", "HighResolution"])
def test_noise_is_not_a_term(term):
    assert is_noise(term, han_context=True)


@pytest.mark.parametrize("term", ["MoonViT", "BAGEL", "A800", "ThunderNet", "Qwen1.57BChat"])
def test_names_are_terms(term):
    assert not is_noise(term, han_context=True)


def test_urls_hold_no_terms():
    text = "见 https://github.com/FooLab/BarNet 与 FooNet"
    assert [text[s:e] for s, e, _ in find_terms(text)] == ["FooNet"]


@pytest.mark.parametrize(("text", "pairs"), [
    ("推测解码(speculative decoding)很快", [("推测解码", "speculative decoding")]),
    ("上采样方法包括Upsampling(上采样)", [("Upsampling", "上采样")]),
    ("多头潜在注意力（Multi-head Latent Attention, MLA）",
     [("Multi-head Latent Attention", "MLA"), ("多头潜在注意力", "Multi-head Latent Attention")]),
    ("这就是 Low-Rank Adaptation (LoRA) 的做法", [("Low-Rank Adaptation", "LoRA")]),
    ("DPO(Direct Preference Optimisation)的思路", [("Direct Preference Optimisation", "DPO")]),
    ("知识蒸馏也叫模型蒸馏/蒸馏学习，", [("知识蒸馏", "模型蒸馏"), ("知识蒸馏", "蒸馏学习")]),
    ("Beam search, also called 束搜索, keeps k candidates", [("Beam search", "束搜索")]),
    ("BART(Summarization)", []),
    ("激活 2.8B 参数(FooVLA3B)", []),
])
def test_definition_patterns(text, pairs):
    got = [(text[a:b], text[c:d]) for (a, b), (c, d) in find_definitions(text)]
    assert got == pairs


def test_definition_pairs_reach_the_extraction(nlp):
    result = found(nlp, "草稿头(Drafting Heads)让模型一次猜多个 token")
    assert [(p.long, p.short) for p in result.pairs] == [("草稿头", "Drafting Heads")]


def test_every_vocabulary_form_finds_its_concept_in_running_text(nlp, lexicon):
    # patterns are given to the matcher as token hashes: each form must match as written,
    # with its tokens spaced as in the vocabulary, inside Chinese and English text
    entries = [e for e in lexicon if e.surfaces][::7]
    for entry in entries:
        form = entry.surfaces[0]
        result = found(nlp, f"我们讨论 {form} 的做法")
        covering = [m for m in result.mentions if m.surface == form]
        assert covering and covering[0].concept_key, (entry.key, form)


def test_common_word_names_match_only_as_written(nlp):
    keys = [m.concept_key for m in found(nlp, "用 Apache Spark 处理; a spark of hope").mentions]
    assert keys.count("apache-spark") == 1


def test_doc_ents_agree_with_bulk_extraction(nlp):
    text = "我们用LoRA微调 Kimi-VL, 并比较 Flash Attention (FA) 与 AdamW 优化器。"
    ents = [(e.start_char, e.end_char, e.kb_id_) for e in nlp(text).ents]
    mentions = [(m.start, m.end, m.concept_key) for m in found(nlp, text).mentions]
    assert ents == mentions
    assert ("kimi-vl" in {key for *_, key in ents}) and len(ents) >= 5


def test_reading_and_extracting_leave_no_cycles(nlp):
    # the kg command runs without the cyclic collector: per-article work must make no
    # garbage that only it would free
    import gc

    from kg.sources import read_articles, sample_path
    from tests.conftest import ARTICLES

    list(extract(read_articles([sample_path()])[:3], nlp))      # one-time set-up first
    gc.collect()
    gc.disable()
    try:
        articles = read_articles([sample_path(), ARTICLES])
        list(extract(articles, nlp))
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("word", ["the", "attention", "medusa", "aes", "lora", "zzzq",
                                  "Spark", "o'clock", "gpt4", "naïve", "a"])
def test_word_frequency_is_wordfreqs(word):
    # plain lowercase words are looked up directly, the rest through wordfreq: the same
    from wordfreq import zipf_frequency

    from kg.discover import word_zipf

    assert word_zipf.__wrapped__(word) == zipf_frequency(word, "en", wordlist="small")
