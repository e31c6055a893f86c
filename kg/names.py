"""Plain string functions on concept names, shared by extraction and linking."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["normalize", "compact", "to_simplified", "numbers", "abbreviation_matches", "initials", "is_code"]

_HAN = re.compile(r"[\u3400-\u9fff]")
_SEPARATORS = re.compile(r"[\s\-_·•‧]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_CODE = re.compile(r"[A-Za-z_]\.[A-Za-z_]")
_TYPE_WORDS = ("模型", "算法", "方法", "网络", "优化器", "框架", "机制", "model", "models",
               "algorithm", "method", "optimizer", "framework")
_TYPE_SUFFIX = re.compile(rf"(?:\s*(?:{'|'.join(_TYPE_WORDS[:7])})|"
                          rf"\s+(?:{'|'.join(_TYPE_WORDS[7:])}))$", re.I)


@lru_cache(maxsize=2)
def _opencc(config: str):
    from opencc import OpenCC

    return OpenCC(config)


def to_simplified(text: str) -> str:
    """Traditional Chinese to simplified, with Taiwan phrases (網路 -> 网络) when the text
    is traditional; simplified text is left as it is.

    >>> to_simplified("卷積神經網路"), to_simplified("程序设计")
    ('卷积神经网络', '程序设计')
    """
    if _opencc("t2s").convert(text) == text:
        return text
    return _opencc("tw2sp").convert(text)


@lru_cache(maxsize=262144)
def normalize(term: str) -> str:
    """Fold width, case and traditional characters so equal names compare equal.

    >>> normalize("ＬｏＲＡ "), normalize("投機解碼")
    ('lora', '投机解码')
    """
    if term.isascii():      # NFKC keeps ASCII as it is; casefold is lower() there
        return " ".join(term.lower().split())
    text = unicodedata.normalize("NFKC", term).casefold().strip()
    if _HAN.search(text):
        text = to_simplified(text)
    return " ".join(text.split())


@lru_cache(maxsize=262144)
def compact(term: str) -> str:
    """`normalize`, then drop separators and a type suffix: the key for equal names.

    >>> compact("Kimi-VL") == compact("KimiVL") == compact("Kimi VL")
    True
    >>> compact("Qwen1.5-7B-Chat") == compact("Qwen1.57BChat")
    True
    """
    text = normalize(term)
    if text.endswith(_TYPE_WORDS):          # the suffix pattern's words, end anchored
        text = _TYPE_SUFFIX.sub("", text) or text
    return _SEPARATORS.sub("", text)


_PLURAL_CAPS = re.compile(r"[A-Z]{2,}s$")
_PLURAL = re.compile(r"[a-z]{3}s$")
_NOT_PLURAL = re.compile(r"(?:ss|us|is|ics)$")

@lru_cache(maxsize=262144)
def singular(term: str) -> str:
    """The compact key of a plural name without its ``s`` (``LLMs``, ``decoding heads``).

    >>> singular("LLMs"), singular("loss"), singular("GPUs"), singular("Medusa heads")
    ('llm', 'loss', 'gpu', 'medusahead')
    """
    key = compact(term)
    if _PLURAL_CAPS.search(term) or (_PLURAL.search(term) and not _NOT_PLURAL.search(term)):
        return key[:-1]
    return key


def numbers(term: str) -> list[str]:
    """The numbers in a name, read from its compact form.

    >>> numbers("Qwen1.5-72B"), numbers("DeepSeek-V3")
    (['1.572'], ['3'])
    """
    return _NUMBER.findall(compact(term))


def is_code(term: str) -> bool:
    """A code identifier such as ``nn.Dropout`` or ``torch.nn``."""
    return bool(_CODE.search(term))


def initials(term: str) -> str:
    """First letters of a name's words, splitting CamelCase and hyphens.

    >>> initials("Multi-Token Prediction"), initials("FlashAttention")
    ('mtp', 'fa')
    """
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", term)
    return "".join(w[0] for w in words).lower()


def abbreviation_matches(short: str, long: str) -> bool:
    """Say whether ``short`` abbreviates ``long``, letter by letter.

    Every letter of the short form must appear in order in the long form, the first one
    at the start of the long form.

    >>> abbreviation_matches("MTP", "Multitoken Prediction")
    True
    >>> abbreviation_matches("PEFT", "parameter-efficient fine-tuning")
    True
    >>> abbreviation_matches("BART", "Summarization")
    False
    """
    letters = [c.lower() for c in short if c.isalnum()]
    text = long.lower()
    if not letters or len(text) <= len(letters) or text[0] != letters[0]:
        return False
    i = len(text) - 1
    for k in range(len(letters) - 1, -1, -1):
        while i >= 0 and (text[i] != letters[k] or
                          (k == 0 and i > 0 and text[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return False
        i -= 1
    return True
