from __future__ import annotations

import pytest

from kg.link import candidate_pairs, conflict, link_concepts, same_concept
from kg.model import AliasPair, Mention

SAME = [
    ("KimiVL", "Kimi-VL"), ("Kimi VL", "Kimi-VL"), ("投机解码", "Speculative Decoding"),
    ("投机采样", "speculative decoding"), ("MTP", "Multi-Token Prediction"),
    ("LoRA", "Low-Rank Adaptation"), ("lora", "LoRA"), ("ＬｏＲＡ", "LoRA"),
    ("SelfAtention", "Self-Attention"), ("PrefixTuning", "Prefix Tuning"),
    ("DeepSeekV3", "DeepSeek-V3"), ("GPT4o", "GPT-4o"), ("LLMs", "LLM"),
    ("混合精度训练", "Mixed Precision Training"), ("FlashAttention", "Flash Attention"),
]
DIFFERENT = [
    ("Adam", "AdamW"), ("GPT-4", "GPT-4o"), ("Qwen1.5-7B", "Qwen1.5-72B"),
    ("DeepSeek-V3", "DeepSeek-R1"), ("LoRA", "QLoRA"), ("T5", "mT5"), ("ViT", "MoonViT"),
    ("Llama 2", "Llama 3"), ("FP16", "BF16"), ("nn.Dropout", "Dropout"),
    ("EfficientNet-B0", "EfficientNet-B7"), ("注意力机制", "自注意力机制"), ("GPT-3", "GPT-4"),
    ("YOLOv5", "YOLOv8"), ("BERT", "RoBERTa"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_concept(a, b):
    assert same_concept(a, b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_concepts(a, b):
    assert not same_concept(a, b)


def test_guards_name_their_reason():
    assert conflict("Qwen1.5-7B", "Qwen1.57B") is None
    assert conflict("Top-1", "Top-5") == "different numbers"
    assert conflict("torch.nn", "torchnn") == "code identifier and idea"


def test_fuzzy_candidates_come_from_blocking_not_all_pairs():
    names = ["SelfAtention", "Self-Attention", "Cross-Attention", "FlashAttention"]
    assert candidate_pairs(names) == [(96.0, "Self-Attention", "SelfAtention")]


def mention(surface, article="a", key=""):
    return Mention(article, surface, key, 0, len(surface), "discovered" if not key else "vocabulary")


def test_definition_pairs_merge_new_names_and_are_explained(lexicon):
    mentions = [mention("FooNet"), mention("狐狸网络")]
    result = link_concepts(mentions, lexicon, pairs=[AliasPair("a", "狐狸网络", "FooNet")])
    assert result.key_of["FooNet"] == result.key_of["狐狸网络"]
    reasons = {m.surface: m.reason for m in result.merges}
    assert reasons["FooNet"] == "definition in article a"


def test_no_chain_joins_two_forbidden_names(lexicon):
    # BarNet-7B = Bar-Net-7B (definition), Bar-Net-7B = BarNet-72B (a bad definition):
    # the numbers guard refuses the second, whatever the order of the evidence.
    names = ["BarNet-7B", "Bar-Net-7B", "BarNet-72B"]
    pairs = [AliasPair("a", "BarNet-7B", "Bar-Net-7B"), AliasPair("b", "Bar-Net-7B", "BarNet-72B")]
    result = link_concepts([mention(n) for n in names], lexicon, pairs=pairs)
    assert result.key_of["BarNet-7B"] != result.key_of["BarNet-72B"]


def test_a_definition_never_joins_two_vocabulary_concepts(lexicon):
    mentions = [mention("Adam", key="adam"), mention("AdamW", key="adamw")]
    result = link_concepts(mentions, lexicon, pairs=[AliasPair("a", "Adam", "AdamW")])
    assert result.key_of["Adam"] == "adam" and result.key_of["AdamW"] == "adamw"


def test_variants_are_linked_not_merged(lexicon):
    mentions = [mention("Qwen1.5", key="qwen1.5"), mention("Qwen1.57BChat")]
    result = link_concepts(mentions, lexicon)
    assert result.key_of["Qwen1.57BChat"] != "qwen1.5"
    assert (result.key_of["Qwen1.57BChat"], "qwen1.5") in result.variants


def test_linking_does_not_depend_on_mention_order(lexicon):
    mentions = [mention(n, article=str(i)) for i, n in enumerate(
        ["KimiVL", "Kimi-VL", "SelfAtention", "FooNet", "FOONet", "BarViT", "MoonViT"])]
    one = link_concepts(mentions, lexicon).key_of
    two = link_concepts(list(reversed(mentions)), lexicon).key_of
    assert one == two
