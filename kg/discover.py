"""Rules that find terms the vocabulary lacks: term shapes, definitions, cue words, noise."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from kg.names import abbreviation_matches, is_code

__all__ = ["find_terms", "find_definitions", "cue_type", "is_noise", "word_zipf", "URL"]

URL = re.compile(r"(?:https?://|www\.)[^\s\u3000-\u303f\uff00-\uffef\u3400-\u9fff]+|"
                 r"[\w.+-]+@[\w-]+\.[\w.]+")
_MAYBE_URL = re.compile(r"://|www\.|@")
_LATIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9+#]|[.\-_/'](?=[A-Za-z0-9]))*")
_WORD = r"[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"
_PHRASE = re.compile(rf"(?<![A-Za-z0-9.\-]){_WORD}(?:[ -](?:of|for|to|and|with|in|on|{_WORD})){{1,9}}"
                     rf"(?![A-Za-z0-9])")
_HAN = re.compile(r"[\u3400-\u9fff]")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]{2}")
_ACRONYM = re.compile(r"^[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*$|^[A-Z]{2,}s?$")
_DIGIT_NAME = re.compile(r"^[A-Za-z][A-Za-z.\-]*\d")
_UNIT = re.compile(r"^\d|^[vV]\d+(?:\.\d+)*$|^[xX]\d|^\d+[x×*]\d+$|^(?:top|rank|step|layer|epoch|"
                   r"stage|block|level|phase|part|chapter|section|fig|figure|table|eq|page)"
                   r"[-_]?\d+$", re.IGNORECASE)
_CAMEL_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_MODEL_SUFFIX = ("net", "former", "gpt", "bert", "llm", "lm", "gan", "vit", "diffusion", "vl")

#: Words that end an English multi-word term (``Spatial Attention Module``).
HEADS = frozenset("""
    module network networks net model models attention layer layers block blocks encoder decoder
    transformer transformers learning decoding tuning prediction sampling optimization algorithm
    framework loss normalization norm embedding embeddings head heads mechanism machine
    regression classification segmentation detection generation retrieval search estimation
    descent propagation pooling convolution distillation quantization pruning policy gradient
    iteration memory cache processing diffusion autoencoder flow field inference alignment
    reasoning adaptation ranking filtering clustering forest tree trees graph process unit units
    parallelism training fine-tuning finetuning pretraining scaling interpolation matching
    projector adapter adapters tokenizer router gate kernel optimizer scheduler
""".split())

#: First parts of code identifiers that name a library API (``torch.optim.Adam``).
CODE_ROOTS = frozenset("""torch nn F tf keras np numpy jax jnp flax transformers sklearn pd pandas
    cv2 paddle mx mindspore datasets peft trl accelerate deepspeed vllm optax scipy""".split())

#: Upper-case words that are markup or section labels, never concepts.
_NOT_TERMS = frozenset("""
    TLDR TL FAQ PDF URL URI HTTP HTTPS HTML JSON YAML XML CSV TSV TODO NOTE ID OK PS QA DIY
    II III IV VI VII VIII IX XI XII PPT PNG JPG JPEG GIF SVG MP4 WIP TBD FYI EOF UTF ASCII
    Github GitHub Paper Code Task Model Prompt Step Figure Table Introduction Overview Background
    NaN Inf None True False Null NULL
""".split())

_LEADING = set("在对为用从向于以中个种才算就将把被让使等")
#: How Chinese technical terms commonly end; a long candidate must end so.
_TERM_ENDS = tuple("""模型 网络 算法 方法 学习 训练 解码 采样 注意力 机制 层 器 头 函数 损失 编码 嵌入 优化 蒸馏
    剪枝 量化 检测 分割 分类 生成 预测 估计 搜索 匹配 对齐 推理 框架 架构 矩阵 向量 分布 策略 插值 卷积 池化
    归一化 正则化 微调 精度 缓存 并行 迭代 规划 回归 聚类 降维 分解 变换 表示 差分 梯度 下降 传播""".split())
_STOP_WORDS = ("进行", "通过", "使用", "采用", "利用", "基于", "称为", "叫做", "以及", "或者", "一个",
               "一种", "这个", "那个", "所有", "可以", "需要", "包括", "对于", "关于", "作为", "用于",
               "在于", "这种", "那种", "之一", "一下", "提出", "引入", "实现", "得到")
_STOP_HAN = set("如的了是和与及或将把被从其即也此每该都就又已让")

_CUES = (
    (re.compile(r"^\s*(?:模型|网络|架构|大模型|model\b|network\b|architecture\b|LLM\b)", re.I), "model"),
    (re.compile(r"^\s*(?:优化器|optimizer\b)", re.I), "optimizer"),
    (re.compile(r"^\s*(?:算法|方法|机制|技术|algorithm\b|method\b|mechanism\b|technique\b)", re.I), "method"),
    (re.compile(r"^\s*(?:数据集|基准|评测集|dataset\b|benchmark\b|corpus\b)", re.I), "dataset"),
    (re.compile(r"^\s*(?:框架|库|工具|平台|framework\b|library\b|toolkit\b|package\b)", re.I), "library"),
    (re.compile(r"^\s*(?:指标|metric\b|score\b)", re.I), "metric"),
    (re.compile(r"^\s*(?:任务|task\b)", re.I), "task"),
    (re.compile(r"^\s*(?:公司|团队|实验室|company\b|lab\b|team\b)", re.I), "organization"),
)


@lru_cache(maxsize=65536)
def word_zipf(word: str) -> float:
    """How common ``word`` is in English, on the Zipf scale (0 = unseen, 7 = "the").

    From wordfreq's small list, which holds the words seen once per million or more
    (Zipf 3 up) with the values of the large one: every rule here asks about Zipf 3 or
    more, and it loads in 0.01 s, not 0.15 s (in every extraction process). Words at
    exactly 3.0 in the large list (a few hundred, such as "aes") read as unseen.

    >>> word_zipf("the") > 7 > word_zipf("medusa")
    True
    """
    if _LOWER_WORD.fullmatch(word):     # one token as it is: looked up directly, as
        frequency = _small_list().get(word)      # wordfreq would (45 us a call there)
        if frequency is None:
            return 0.0
        frequency = round(frequency, math.floor(-math.log10(frequency)) + 3)
        return round(math.log10(frequency) + 9, 2)
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en", wordlist="small")


_LOWER_WORD = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def _small_list() -> dict[str, float]:
    from wordfreq import get_frequency_dict

    return get_frequency_dict("en", "small")


def is_noise(term: str, *, han_context: bool = False) -> bool:
    """Say whether a term-shaped string is noise rather than a concept name.

    Sizes, units, numbers and versions, URLs, code identifiers, markup words and common
    English words are noise.

    >>> [t for t in ["2.8B", "320×320", "1x1", "v2", "nn.Xxx", "requires_grad", "JSON",
    ...              "The", "MoonViT", "BAGEL", "A800", "FP16"]
    ...  if not is_noise(t, han_context=True)]
    ['MoonViT', 'BAGEL', 'A800', 'FP16']
    """
    return _is_noise(term, han_context)


@lru_cache(maxsize=131072)
def _is_noise(term: str, han_context: bool) -> bool:
    """Cached body of `is_noise`."""
    if len(term) < 2 or _UNIT.search(term) or URL.search(term) or "_" in term:
        return True
    if term in _NOT_TERMS or term.upper() in _NOT_TERMS:
        return True
    if is_code(term):                       # an API of a known library is a concept
        return term.split(".")[0] not in CODE_ROOTS or \
            bool(re.search(r"\.(?:x{2,}|foo|bar|baz)$", term, re.IGNORECASE))
    if "/" in term:                         # paths, domains
        return True
    words = term.split()
    if len(words) > 1:      # "Our Method", "Vision Layers": ordinary words, capitalised
        return all(word_zipf(w.lower()) >= 4.0 for w in words if w[:1].isupper())
    if _CAMEL.search(term) or _DIGIT_NAME.match(term):
        if term.islower():
            return True
        parts = _CAMEL_PART.findall(term)
        return not any(c.isdigit() for c in term) and len(parts) > 1 \
            and parts[-1].lower() not in _MODEL_SUFFIX \
            and all(p.islower() or p[1:].islower() for p in parts) \
            and all(word_zipf(p.lower()) >= 3.0 for p in parts)
    if term.isupper():
        return len(term.rstrip("s")) < 3 or word_zipf(term.lower()) >= (3.5 if han_context else 3.0)
    if term[:1].isupper() and term[1:].islower():
        return not han_context or word_zipf(term.lower()) >= 3.3
    return True


def find_terms(text: str) -> list[tuple[int, int, str]]:
    """Find term-shaped names: CamelCase, acronyms, names with digits, Title Case phrases.

    Returns ``(start, end, type)`` triples, ``type`` being a guess or ``""``.

    >>> text = "BAGEL 使用 MoonViT 和 Spatial Attention Module, 80GB"
    >>> [text[s:e] for s, e, _ in find_terms(text)]
    ['BAGEL', 'MoonViT', 'Spatial Attention Module']
    """
    urls = [m.span() for m in URL.finditer(text)] if _MAYBE_URL.search(text) else []
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for match in _PHRASE.finditer(text):
        start, end = match.span()
        words = match.group().split()
        if (urls and _inside(start, urls)) or words[-1].lower() not in HEADS or len(words) > 5:
            continue
        if len(words) > 1 and not is_noise(match.group()):
            found.append((start, end, ""))
            taken.append((start, end))
    size = len(text)
    for match in _LATIN.finditer(text):
        start, end = match.span()
        term = match.group()
        if (urls and _inside(start, urls)) or (taken and _inside(start, taken)):
            continue
        han = (start > 0 and "\u3400" <= text[start - 1] <= "\u9fff") or \
            (start > 1 and text[start - 1] == " " and "\u3400" <= text[start - 2] <= "\u9fff") or \
            (end < size and "\u3400" <= text[end] <= "\u9fff") or \
            (end + 1 < size and text[end] == " " and "\u3400" <= text[end + 1] <= "\u9fff")
        if not _is_noise(term, han):
            found.append((start, end, "library" if is_code(term) else ""))
    found.sort()
    return found


def _inside(position: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(s <= position < e for s, e in spans)


def cue_type(text: str, start: int, end: int) -> str:
    """The type a cue word right after a term gives it (``BAGEL 模型`` -> model), or "".

    >>> cue_type("BAGEL 模型原生支持", 0, 5)
    'model'
    """
    after = text[end:end + 16]
    for pattern, kind in _CUES:
        if pattern.match(after):
            return kind
    return ""


_OPEN, _CLOSE = "(（", ")）"
_BRACKET = re.compile(r"[(（]([^()（）\n]{1,80})[)）]")
_ALSO = re.compile(r"\s*(?:也叫|又叫|也称为|也称|又称为|又称|简称|俗称|亦称|,\s*also (?:called|known as)|"
                   r"\(also (?:called|known as))\s*", re.IGNORECASE)
_SPLIT = re.compile(r"\s*[,，;；]\s*")


def find_definitions(text: str, known: Sequence[tuple[int, int]] = ()
                     ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Find name pairs the text defines as one concept.

    Forms: ``中文(English)``, ``English(中文)``, ``English Name (ABBR)``,
    ``ABBR(English Name)``, ``中文(English Name, ABBR)``, ``X也叫Y/Z``, ``X, also called Y``.
    ``known`` holds spans already recognised (vocabulary matches); a Chinese side that
    ends where a known span ends takes that span's bounds.

    Returns pairs of character spans ``((long_start, long_end), (short_start, short_end))``.

    >>> t = "推测解码(speculative decoding)又称投机采样/预测解码"
    >>> [(t[a:b], t[c:d]) for (a, b), (c, d) in find_definitions(t)]
    [('推测解码', 'speculative decoding'), ('推测解码', '投机采样'), ('推测解码', '预测解码')]
    """
    ends = {e: s for s, e in known}
    pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for match in _BRACKET.finditer(text):
        inner_start = match.start(1)
        parts, offset = [], inner_start
        for piece in _SPLIT.split(match.group(1)):
            at = text.index(piece, offset) if piece else offset
            parts.append((at, at + len(piece)))
            offset = at + len(piece)
        parts = [(s, e) for s, e in parts if e > s]
        left_end = match.start()
        while left_end > 0 and text[left_end - 1] == " ":
            left_end -= 1
        han = _han_term_before(text, left_end, ends)
        latin = _latin_before(text, left_end, ends)
        if len(parts) == 2 and _is_acronym(text[slice(*parts[1])]) \
                and _is_latin_term(text[slice(*parts[0])]) \
                and abbreviation_matches(text[slice(*parts[1])], text[slice(*parts[0])]):
            pairs.append((parts[0], parts[1]))
            if han:
                pairs.append((han, parts[0]))
            continue
        if len(parts) != 1:
            continue
        inner = parts[0]
        inner_text = text[slice(*inner)]
        if _is_acronym(inner_text):
            long = _long_form_before(text, left_end, inner_text)
            if long:
                pairs.append((long, inner))
            elif han and not any(c.isdigit() for c in inner_text) \
                    and (len(inner_text) > 2 or han[1] in ends):
                pairs.append((han, inner))
        elif _is_latin_term(inner_text):
            if latin and _is_acronym(text[slice(*latin)]) \
                    and abbreviation_matches(text[slice(*latin)], inner_text):
                pairs.append((inner, latin))
            elif han and not any(c.isdigit() for c in inner_text) \
                    and (len(inner_text) > 2 or han[1] in ends):
                pairs.append((han, inner))
        elif _is_han_term(inner_text) and latin and not _is_acronym(text[slice(*latin)]):
            pairs.append((latin, inner))
    for match in _ALSO.finditer(text):
        left_end = match.start()
        while left_end > 0 and text[left_end - 1] in _CLOSE:    # X(English)也叫Y
            left_end = text.rfind(_OPEN[_CLOSE.index(text[left_end - 1])], 0, left_end)
            if left_end < 0:
                break
        if left_end <= 0:
            continue
        head = _han_term_before(text, left_end, ends) or _latin_before(text, left_end, ends)
        if not head:
            continue
        for alias in _alias_list(text, match.end()):
            pairs.append((head, alias))
    return pairs


def _is_acronym(term: str) -> bool:
    return 2 <= len(term) <= 10 and bool(_ACRONYM.match(term)) and term[0].isupper() \
        and sum(c.islower() for c in term.rstrip("s")) <= 1


def _is_latin_term(term: str) -> bool:
    words = term.split()
    if not words or len(words) > 6 or _HAN.search(term) or not term[0].isalpha():
        return False
    if not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.\-+']*", w) for w in words):
        return False
    if len(words) == 1:
        return bool(_CAMEL.search(term) or term.isupper() or any(c.isdigit() for c in term)
                    or word_zipf(term.lower()) < 3.0)
    return True


def _is_han_term(term: str) -> bool:
    return 2 <= len(term) <= 10 and all(_HAN.match(c) for c in term) \
        and not any(c in _STOP_HAN for c in term)


def _han_term_before(text: str, end: int, ends: dict[int, int]) -> tuple[int, int] | None:
    known = (ends[end], end) if end in ends and _HAN.match(text[end - 1]) else None
    run = _han_run_before(text, end)
    if known and (run is None or known[1] - known[0] >= 4
                  or run[1] - run[0] <= known[1] - known[0]):
        return known
    return run or known


def _han_run_before(text: str, end: int) -> tuple[int, int] | None:
    start = end
    while start > 0 and end - start < 12 and _HAN.match(text[start - 1]):
        start -= 1
    run = text[start:end]
    cut = max((i for i, c in enumerate(run) if c in _STOP_HAN), default=-1)
    for word in _STOP_WORDS:
        at = run.rfind(word)
        if at >= 0:
            cut = max(cut, at + len(word) - 1)
    start += cut + 1
    while start < end and text[start] in _LEADING:
        start += 1
    term = text[start:end]
    if len(term) < 2 or len(term) > 8 or (len(term) > 4 and not term.endswith(_TERM_ENDS)):
        return None
    return start, end


def _latin_before(text: str, end: int, ends: dict[int, int] | None = None
                  ) -> tuple[int, int] | None:
    if ends and end in ends and not _HAN.match(text[end - 1]):
        return ends[end], end
    match = re.search(r"(?:[A-Z][A-Za-z0-9.\-+]* )*[A-Za-z][A-Za-z0-9.\-+]*$",
                      text[max(0, end - 60):end])
    if not match:
        return None
    start = end - len(match.group())
    if start > 0 and (text[start - 1].isalnum() and not _HAN.match(text[start - 1])):
        return None
    return start, end


def _long_form_before(text: str, end: int, short: str) -> tuple[int, int] | None:
    window = text[max(0, end - 120):end]
    words = list(re.finditer(r"[A-Za-z][A-Za-z0-9\-']*", window))
    base = end - len(window)
    limit = len(short) + 3
    for n in range(1, min(limit, len(words)) + 1):
        chunk = words[-n:]
        gap = window[chunk[0].start():]
        if re.search(r"[^A-Za-z0-9\-' ]", gap):
            break
        if abbreviation_matches(short, gap) and len(gap) > len(short):
            return base + chunk[0].start(), end
    return None


def _alias_list(text: str, start: int) -> list[tuple[int, int]]:
    tail = re.match(r"[^,，。;；:：!！?？\n()（）]{1,40}", text[start:])
    if not tail:
        return []
    out, offset = [], start
    for piece in re.split(r"\s*[/、]\s*|\s*(?:或|or)\s+", tail.group()):
        at = text.index(piece, offset) if piece else offset
        offset = at + len(piece)
        piece_span = (at, at + len(piece))
        if _is_han_term(piece[:10]) and len(piece) <= 10:
            out.append(piece_span)
        elif _is_latin_term(piece):
            out.append(piece_span)
        else:
            break
    return out
