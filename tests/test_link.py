from __future__ import annotations

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from kg.link import candidate_pairs, conflict, link_concepts, same_concept
from kg.model import AliasPair, Mention

SAME = [
    # separators and hyphens lost
    ("KimiVL", "Kimi-VL"), ("Kimi VL", "Kimi-VL"), ("PrefixTuning", "Prefix Tuning"),
    ("DeepSeekV3", "DeepSeek-V3"), ("GPT4o", "GPT-4o"), ("Llama2", "Llama 2"),
    ("Qwen1.57BChat", "Qwen1.5-7B-Chat"), ("Mixtral 8x7B", "Mixtral-8x7B"),
    ("ResNet50", "ResNet-50"), ("YOLO v8", "YOLOv8"), ("k-means", "K-Means"), ("kmeans", "k-means"),
    ("Q learning", "Q-learning"), ("FlashAttention", "Flash Attention"), ("Flash-Attention-2", "FlashAttention-2"),
    ("TemporalDifference", "Temporal Difference"), ("Multitoken Prediction", "Multi-Token Prediction"),
    # case and width, plurals, type words
    ("lora", "LoRA"), ("ＬｏＲＡ", "LoRA"), ("Pytorch", "PyTorch"), ("Tensorflow", "TensorFlow"),
    ("LLaMa", "LLaMA"), ("LLMs", "LLM"), ("GPUs", "GPU"), ("Adam optimizer", "Adam"), ("Adam优化器", "Adam"),
    ("BERT模型", "BERT"), ("transformers", "Transformer"),
    # traditional script
    ("投機解碼", "投机解码"), ("強化學習", "强化学习"), ("卷積神經網路", "卷积神经网络"),
    # Chinese and English
    ("投机解码", "Speculative Decoding"), ("投机采样", "speculative decoding"), ("推测解码", "Speculative Decoding"),
    ("混合精度训练", "Mixed Precision Training"), ("时序差分", "Temporal Difference Learning"),
    ("蒙特卡洛方法", "Monte Carlo Method"), ("排序学习", "Learning to Rank"), ("低秩适配", "LoRA"),
    ("参数高效微调", "PEFT"), ("知识蒸馏", "Knowledge Distillation"), ("注意力机制", "Attention Mechanism"),
    ("自注意力", "Self-Attention"), ("强化学习", "RL"), ("深度学习", "Deep Learning"), ("卷积神经网络", "CNN"),
    ("直接偏好优化", "DPO"), ("检索增强生成", "RAG"), ("随机梯度下降", "SGD"), ("双线性插值", "Bilinear Interpolation"),
    ("上采样", "Upsampling"), ("思维链", "Chain-of-Thought"), ("混合专家", "Mixture of Experts"),
    # abbreviations
    ("MTP", "Multi-Token Prediction"), ("LoRA", "Low-Rank Adaptation"), ("MHA", "Multi-Head Attention"),
    ("GQA", "Grouped-Query Attention"), ("RLHF", "Reinforcement Learning from Human Feedback"),
    ("MoE", "Mixture of Experts"), ("FFN", "Feed-Forward Network"), ("PPO", "Proximal Policy Optimization"),
    ("NMS", "Non-Maximum Suppression"), ("mAP", "mean Average Precision"), ("BF16", "bfloat16"),
    ("FP16", "half precision"), ("LTR", "Learning to Rank"), ("HDFS", "Hadoop Distributed File System"),
    # typos
    ("SelfAtention", "Self-Attention"), ("Trasformer", "Transformer"), ("Speculative Decodng", "Speculative Decoding"),
    ("Reinforcment Learning", "Reinforcement Learning"), ("Knowlege Distillation", "Knowledge Distillation"),
]
DIFFERENT = [
    ("Adam", "AdamW"), ("GPT-4", "GPT-4o"), ("GPT-4o", "GPT-4o mini"), ("GPT-4", "GPT-4 Turbo"), ("GPT-3", "GPT-4"),
    ("Qwen1.5-7B", "Qwen1.5-72B"), ("Qwen1.57BChat", "Qwen1.572BChat"), ("Qwen2", "Qwen2.5"), ("Qwen2.5-7B", "Qwen2.5-7B-Instruct"),
    ("DeepSeek-V3", "DeepSeek-R1"), ("DeepSeek-V2", "DeepSeek-V3"), ("DeepSeek-R1", "DeepSeek-R1-Zero"), ("DeepSeek-V3", "DeepSeek-V3-Base"),
    ("LoRA", "QLoRA"), ("LoRA", "LoRA+"), ("LoRA", "DoRA"), ("T5", "mT5"), ("ViT", "MoonViT"), ("ViT", "DeiT"), ("BERT", "RoBERTa"),
    ("BERT", "ALBERT"), ("BERT-base", "BERT-large"), ("Llama 2", "Llama 3"), ("Llama 3", "Llama 3.1"), ("LLaMA", "Llama 2"),
    ("FP16", "BF16"), ("FP32", "TF32"), ("FP8", "FP16"), ("INT8", "INT4"), ("Top-1", "Top-5"), ("top-1 accuracy", "top-5 accuracy"),
    ("EfficientNet-B0", "EfficientNet-B7"), ("YOLOv5", "YOLOv8"), ("YOLOv5", "YOLOv5s"), ("ResNet-50", "ResNet-101"), ("ResNet", "ResNeXt"),
    ("ViT-B/16", "ViT-B/32"), ("ViT-B", "ViT-L"), ("A100", "A800"), ("H100", "H800"), ("V100", "A100"),
    ("nn.Dropout", "Dropout"), ("nn.Dropout", "nn.functional.dropout"), ("torch.nn", "PyTorch"), ("nn.Conv2d", "Convolution"),
    ("注意力机制", "自注意力机制"), ("自注意力", "交叉注意力"), ("多头注意力", "多查询注意力"),
    ("Multi-Head Attention", "Multi-Query Attention"), ("Self-Supervised Learning", "Semi-Supervised Learning"),
    ("Speculative Decoding", "Self-Speculative Decoding"), ("Medusa", "Medusa-2"), ("EAGLE", "EAGLE-2"), ("EAGLE-2", "EAGLE-3"),
    ("FlashAttention", "FlashAttention-2"), ("FlashAttention-2", "FlashAttention-3"), ("Stable Diffusion", "Stable Diffusion 3"),
    ("SD3", "SDXL"), ("DDPM", "DDIM"), ("GAN", "WGAN"), ("DQN", "Double DQN"), ("SARSA", "Expected SARSA"), ("PPO", "GRPO"),
    ("DPO", "IPO"), ("RLHF", "RLAIF"), ("SGD", "Adam"), ("Adam", "Adamax"), ("Kimi", "Kimi-VL"), ("Kimi-VL", "Kimi-VL-A3B"),
    ("Hadoop", "HDFS"), ("Spark", "Spark SQL"), ("ZeRO", "ZeRO-3"), ("ZeRO-2", "ZeRO-3"), ("PEFT", "LoRA"), ("o1", "o1-mini"),
    ("o1", "o3"), ("ChatGPT", "GPT-3.5"), ("Gemini 1.5", "Gemini 2.0"), ("Claude 3", "Claude 3.5 Sonnet"),
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


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.text("abcdeé投机-1 ", max_size=14), st.text("abcdeé投机-1 ", max_size=14)),
                max_size=30), st.sampled_from([0.0, 50.0, 80.0, 92.0]))
def test_a_few_pairs_scored_one_by_one_score_as_in_one_call(pairs, threshold):
    from unittest import mock

    from rapidfuzz import fuzz

    from kg.link import candidates

    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    with mock.patch.object(candidates, "_ONE_CALL_FROM", 10**9):
        alone = candidates._scores(left, right, fuzz.ratio, threshold)
    with mock.patch.object(candidates, "_ONE_CALL_FROM", 0):
        assert alone == candidates._scores(left, right, fuzz.ratio, threshold)
    assert all(type(score) is float for _, score in alone)


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


NAMES = st.sampled_from(["KimiVL", "Kimi-VL", "Kimi VL", "SelfAtention", "Self-Attention", "FooNet",
                         "FOONet", "Foo-Net", "BarViT", "MoonViT", "Adam", "AdamW", "GPT-4",
                         "GPT4o", "Qwen1.57BChat", "Qwen1.5-7B-Chat", "Qwen1.572BChat", "投机解码",
                         "投機解碼", "MTP", "Multi-Token Prediction", "ZeroNet-7B", "ZeroNet-72B"])


@settings(max_examples=40, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_linking_is_deterministic_and_order_free(lexicon, names, rng):
    mentions = [mention(n, article=str(i)) for i, n in enumerate(names)]
    shuffled = list(mentions)
    rng.shuffle(shuffled)
    one, two = link_concepts(mentions, lexicon), link_concepts(shuffled, lexicon)
    assert one.key_of == two.key_of
    assert {k: c.name for k, c in one.concepts.items()} == {k: c.name for k, c in two.concepts.items()}
    assert one.merges == two.merges
    for a in names:                       # no cluster joins two names a guard keeps apart
        for b in names:
            if one.key_of.get(a) and one.key_of.get(a) == one.key_of.get(b):
                assert conflict(a, b) is None or \
                    one.concepts[one.key_of[a]].origin == "vocabulary"


def test_a_tie_between_types_is_settled_by_name_not_by_the_order_seen(lexicon):
    # FooNet is called a model twice and a method twice
    mentions = [Mention(str(i), "FooNet", "", 0, 6, "discovered", kind)
                for i, kind in enumerate(["model", "method", "model", "method"])]
    kinds = set()
    for order in (mentions, mentions[::-1]):
        result = link_concepts(order, lexicon)
        kinds.add(result.concepts[result.key_of["FooNet"]].type)
    assert kinds == {"method"}


SURFACES = st.sampled_from(["LoRA", "FooNet", "BarViT", "投机解码", "MTP"])
MENTIONS = st.builds(Mention, st.sampled_from("abcdef"), SURFACES, st.sampled_from(["", "k"]),
                     st.just(0), st.just(3), st.sampled_from(["vocabulary", "discovered"]),
                     st.sampled_from(["", "model", "method"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(MENTIONS, max_size=30), st.randoms(use_true_random=False))
def test_statistics_added_in_parts_are_those_of_the_whole(mentions, rng):
    from kg.link import SurfaceStats
    from kg.model import Extraction
    from kg.pipeline import _Tally

    by_article = {}
    for m in mentions:
        by_article.setdefault(m.article_id, []).append(m)
    extractions = [Extraction(a, tuple(ms)) for a, ms in sorted(by_article.items())]
    tally = _Tally()
    arrived = [e for e in extractions if rng.random() < 0.7]    # as results came in
    arrived += rng.sample(arrived, len(arrived) // 2)           # some offered twice
    rng.shuffle(arrived)
    for start in range(0, len(arrived), 3):
        tally.add(arrived[start:start + 3])
    whole = SurfaceStats(m for e in extractions for m in e.mentions)
    parts = tally.of(extractions)
    for field in ("counts", "types", "origins", "vocab_names"):
        assert dict(getattr(parts, field)) == dict(getattr(whole, field))


def test_statistics_of_extractions_counted_then_dropped_are_made_again():
    from kg.model import Extraction
    from kg.pipeline import _Tally

    kept = Extraction("a", (Mention("a", "LoRA", "lora", 0, 4, "vocabulary"),))
    dropped = Extraction("b", (Mention("b", "FooNet", "", 0, 6, "discovered", "model"),))
    tally = _Tally()
    tally.add([kept, dropped])
    stats = tally.of([kept])
    assert dict(stats.counts) == {"LoRA": 1} and "FooNet" not in stats.types


def test_fuzzy_scoring_in_a_second_process_links_the_same(lexicon, monkeypatch):
    import kg.link as link_module

    names = ["KimiVL", "Kimi-VL", "SelfAtention", "Self-Attention", "CrossAtention",
             "Cross-Attention", "FlashAtention", "MoonViT", "Qwen1.57BChat", "投机解码", "MTP",
             "Multi-Token Prediction", "DeepSeekV3", "DeepSek-V3", "GroupQueryAtention"]
    mentions = [mention(n, article=str(i)) for i, n in enumerate(names)]
    here = link_concepts(mentions, lexicon, jobs=1)
    monkeypatch.setattr(link_module, "_FORK_FROM", 0)      # a few names: fork anyway
    forked = link_concepts(mentions, lexicon, jobs=2)
    assert forked.key_of == here.key_of and forked.merges == here.merges
    assert forked.concepts == here.concepts and forked.variants == here.variants
    assert here.key_of["SelfAtention"] == here.key_of["Self-Attention"]    # fuzzy did work


@given(st.text(alphabet="Qwen1.57BChatKimVLA3-_ ·ＡⅫß\t", max_size=14),
       st.sampled_from(["Qwen1.5", "Kimi-VL", "Upsampling", "A", "ß", "qwen"]))
def test_separators_are_restored_as_the_prefix_rule_says(name, base):
    # plain ASCII names take a short cut to the head; the rule is compact() of each prefix
    from kg.link import naming
    from kg.names import compact

    def by_the_rule(name: str, base: str) -> str:
        if any(c in name for c in " -_"):
            return name
        heads = [i for i in range(len(name) + 1) if compact(name[:i]) == compact(base)]
        head = heads[-1] if heads else 0
        if not head or head == len(name):
            return name
        pieces = naming._PIECE.findall(name[head:])
        if "".join(pieces) != name[head:] or not naming._SIZE.fullmatch(pieces[0]):
            return name
        return "-".join([base, *pieces])

    assert naming.restore_separators(name, base) == by_the_rule(name, base)


@given(st.lists(st.sampled_from(list("aZ9 -_.\t\x1c\x85\xa0ſKİıﬁＭ模型网络") +
                                ["model", "Models", " METHOD", " framework"]),
                max_size=8).map("".join))
def test_name_keys_take_no_shortcut_that_changes_them(name):
    # ASCII names skip NFKC and casefold, and the type-suffix pattern runs only on names
    # ending in one of its words: the keys must be what the full rules give
    import unicodedata

    from kg.names import _HAN, _SEPARATORS, _TYPE_SUFFIX, compact, normalize, to_simplified

    text = unicodedata.normalize("NFKC", name).casefold().strip()
    text = " ".join((to_simplified(text) if _HAN.search(text) else text).split())
    assert normalize(name) == text
    assert compact(name) == _SEPARATORS.sub("", _TYPE_SUFFIX.sub("", text) or text)
