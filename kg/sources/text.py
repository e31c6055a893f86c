"""Bytes to clean text: decoding, control characters, titles."""
from __future__ import annotations

import codecs
import re

from kg.errors import SourceError

__all__ = ["decode", "clean_text", "derive_title", "strip_ellipsis", "ELLIPSIS"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000\u2000-\u200b\u202f\u205f]+")
ELLIPSIS = re.compile(r"\s*(?:\.{3,}|…+|。{3,})\s*$")
_SECTION = re.compile(
    r"^(?:概述|背景|简介|引言与背景|引言|前言|摘要|介绍|导读|导语|综述|总结|写在前面|"
    r"overview|background|introduction|abstract|summary|tl;?dr)(?:\s*[:：]\s*|\s+)", re.IGNORECASE)
_LEAD = re.compile(r"^(?:[^\w\s(（\[【]+|https?://\S+|\s+)+")
_SENTENCE_END = re.compile(r"[。！？!?；;]|[.:：](?=\s)|\s[-–—]\s")


def decode(data: bytes, name: str) -> str:
    """Decode file bytes to text, detecting the encoding.

    UTF-8 (with or without BOM) and UTF-16/32 with a BOM are read directly; anything else
    goes to charset-normalizer.

    Raises
    ------
    SourceError
        When the bytes are binary data or no encoding fits.

    Examples
    --------
    >>> decode("混合精度训练同时使用半精度和单精度浮点数。".encode("gb18030"), "a.txt")
    '混合精度训练同时使用半精度和单精度浮点数。'
    >>> decode(codecs.BOM_UTF8 + "Adam".encode(), "b.txt")
    'Adam'
    """
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as err:
                raise SourceError(f"{name} starts with a {encoding} mark but is not "
                                  f"valid {encoding} text") from err
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    head = data[:4096]
    if head.count(b"\x00") > len(head) // 8:
        if _looks_utf16(head):
            for encoding in ("utf-16-le", "utf-16-be"):
                try:
                    return data.decode(encoding)
                except UnicodeDecodeError:
                    continue
        raise SourceError(f"{name} is binary data, not text")
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise SourceError(f"{name} is not text in any encoding kg recognises "
                          "(save it as UTF-8)")
    return str(best)


def _looks_utf16(head: bytes) -> bool:
    even, odd = head[0::2].count(b"\x00"), head[1::2].count(b"\x00")
    return max(even, odd) > len(head) // 4 and min(even, odd) < len(head) // 16


def clean_text(text: str) -> str:
    """Drop control characters and fold runs of spaces; keep line breaks.

    >>> clean_text("Adam\\x00W \\u3000 and\\tSGD")
    'AdamW and SGD'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    return _SPACES.sub(" ", text)


def strip_ellipsis(text: str) -> tuple[str, bool]:
    """Remove a trailing cut mark; say whether there was one.

    >>> strip_ellipsis("LoRA(LowRank Adapt...")
    ('LoRA(LowRank Adapt', True)
    """
    tail = text[-64:]          # the pattern is anchored at the end: look only there
    cut = ELLIPSIS.search(tail)
    if cut:
        return text[:len(text) - len(tail) + cut.start()], True
    return text, False


def derive_title(text: str, *, limit: int = 48) -> str:
    """Make a title from an article's opening when the source gives none.

    Leading section words (概述, Background, ...) are skipped; the title is the first
    sentence, cut to about ``limit`` characters.

    >>> derive_title("概述 Medusa 是一种投机解码方法。它增加了多个解码头")
    'Medusa 是一种投机解码方法'
    """
    body = _LEAD.sub("", text.strip())
    body = _LEAD.sub("", _SECTION.sub("", body, count=1)) or text.strip()
    end = _SENTENCE_END.search(body)
    title = body[:end.start()] if end and end.start() >= 4 else body
    title = title.strip(" ,，、:：")
    if len(title) > limit:
        clause = max(title.rfind(mark, limit // 3, limit) for mark in ",，、")
        if clause > 0:
            title = title[:clause]
        else:
            cut = title.rfind(" ", limit // 2, limit)
            title = title[:cut if cut > 0 else limit].rstrip(" ,，、") + "…"
    return title or text.strip()[:limit]
