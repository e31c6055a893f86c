"""Load the concept vocabulary (kg/data/ml_concepts.jsonl and user files) as LexiconEntry."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from kg.errors import LexiconError
from kg.model import TYPES, LexiconEntry

__all__ = ["load_lexicon", "read_vocab", "slugify", "spelling_variants", "lexicon_fingerprint",
           "BUNDLED"]

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).resolve().parent / "data" / "ml_concepts.jsonl"
_SLUG = re.compile(r"[^0-9a-z.+#\u3400-\u9fff]+")
_LATIN = re.compile(r"[A-Za-z]")


def slugify(name: str) -> str:
    """A concept key from its name.

    >>> slugify("GPT-4o"), slugify("Llama 3.1"), slugify("Speculative Decoding")
    ('gpt-4o', 'llama-3.1', 'speculative-decoding')
    """
    text = unicodedata.normalize("NFKC", name).casefold()
    return _SLUG.sub("-", text).strip("-.") or hashlib.sha1(name.encode()).hexdigest()[:8]


def spelling_variants(term: str) -> list[str]:
    """Forms of a Latin-script term as feeds write it with separators lost.

    >>> spelling_variants("Kimi-VL")
    ['KimiVL', 'Kimi VL']
    >>> spelling_variants("Low-Rank Adaptation")
    ['LowRank Adaptation', 'Low Rank Adaptation', 'LowRankAdaptation']
    >>> spelling_variants("投机解码")
    []
    """
    if not _LATIN.search(term):
        return []
    forms = [term.replace("-", ""), term.replace("-", " "), re.sub(r"[\s_-]+", "", term)]
    if " " in term and "-" not in term and len(term.split()) <= 3:
        forms.append(term.replace(" ", "-"))
    out = []
    for form in forms:
        form = " ".join(form.split())
        if form and form != term and form not in out and len(form) >= 2:
            out.append(form)
    return out


def read_vocab(path: Path) -> list[dict]:
    """Read a vocabulary file: one JSON object a line with at least ``name``.

    Raises
    ------
    LexiconError
        Naming the file and line of the first malformed entry.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LexiconError(f"{path}: cannot read the vocabulary ({err})") from err
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise LexiconError(f"{path}:{number}: not valid JSON ({err.msg})") from err
        if not isinstance(record, dict) or not isinstance(record.get("name"), str) \
                or not record["name"].strip():
            raise LexiconError(f"{path}:{number}: each entry needs a \"name\" string")
        kind = record.get("type", "concept")
        if kind not in TYPES:
            raise LexiconError(f"{path}:{number}: type {kind!r} is not one of "
                               f"{', '.join(TYPES)}")
        for field in ("aliases", "zh", "is_a"):
            value = record.get(field, [])
            if isinstance(value, str):
                record[field] = [value] if value else []
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise LexiconError(f"{path}:{number}: {field!r} must be a list of strings")
        record["_where"] = f"{path.name}:{number}"
        records.append(record)
    return records


def load_lexicon(extra: Sequence[Path] = (), *, bundled: bool = True) -> list[LexiconEntry]:
    """Load the bundled vocabulary plus user vocabulary files.

    A user entry whose name or alias is already known adds its terms to that concept;
    any other user entry is a new concept. Spellings with separators lost (``KimiVL``)
    are added for every Latin term unless another concept already uses them.

    Examples
    --------
    >>> entries = {e.key: e for e in load_lexicon()}
    >>> "Adam" in entries["adamw"].terms, entries["adamw"].is_a
    (False, ('adam',))
    """
    records = read_vocab(BUNDLED) if bundled else []
    for path in extra:
        records.extend({**r, "_user": True} for r in read_vocab(Path(path)))
    return build_entries(records)


def build_entries(records: Iterable[dict]) -> list[LexiconEntry]:
    """Turn vocabulary records into entries with keys, generated spellings and parents."""
    merged: dict[str, dict] = {}
    owner: dict[str, str] = {}            # folded term -> key
    for record in records:
        name = " ".join(record["name"].split())
        terms = [name, *record.get("aliases", []), *record.get("zh", [])]
        target = owner.get(_fold(name))
        if target is None and record.get("_user"):
            target = next((owner[_fold(t)] for t in terms if _fold(t) in owner), None)
        if target is None:
            key = base = record.get("key") or slugify(name)
            suffix = 2
            while key in merged:
                key, suffix = f"{base}-{suffix}", suffix + 1
            merged[key] = {"key": key, "name": name, "type": record.get("type", "concept"),
                           "terms": [], "variants": [], "is_a": list(record.get("is_a", []))}
            target = key
        else:
            merged[target]["is_a"] += record.get("is_a", [])
        for term in terms:
            term = " ".join(term.split())
            folded = _fold(term)
            if not folded:
                continue
            if folded in owner and owner[folded] != target:
                log.debug("%s: %r already names %s", record.get("_where"), term, owner[folded])
                continue
            owner[folded] = target
            if term not in merged[target]["terms"]:
                merged[target]["terms"].append(term)
    for entry in merged.values():   # "PyTorch autograd" would hide PyTorch: both match alone
        entry["terms"] = [t for t in entry["terms"] if t == entry["name"]
                          or not _starts_with_other(t, entry["key"], owner)]
    for entry in merged.values():           # generated spellings come after every given term
        for term in list(entry["terms"]):
            for form in [*spelling_variants(term), *_plurals(term)]:
                folded = _fold(form)
                if folded not in owner:
                    owner[folded] = entry["key"]
                    entry["variants"].append(form)
    by_name = {_fold(e["name"]): e["key"] for e in merged.values()}
    by_name.update({f: k for f, k in owner.items() if f not in by_name})
    out = []
    for entry in merged.values():
        parents = tuple(dict.fromkeys(
            by_name[_fold(p)] for p in entry["is_a"]
            if _fold(p) in by_name and by_name[_fold(p)] != entry["key"]))
        out.append(LexiconEntry(entry["key"], entry["name"], entry["type"],
                                tuple(entry["terms"]), parents, tuple(entry["variants"])))
    return out


def _starts_with_other(term: str, key: str, owner: dict[str, str]) -> bool:
    """``PyTorch autograd`` for torch.autograd: another concept's name, then one of its own."""
    words = term.split()
    return any(owner.get(_fold(" ".join(words[:n])), key) != key
               and owner.get(_fold(" ".join(words[n:]))) == key for n in range(1, len(words)))


def _plurals(term: str) -> list[str]:
    """``GPUs``, ``DataNodes``, ``attention heads``: plural forms of a Latin name."""
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9 .\-]*[A-Za-z]", term) and term[-1] not in "sSxX" \
            and len(term) >= 3:
        return [term + "s"]
    return []


def lexicon_fingerprint(extra: Sequence[Path] = ()) -> str:
    """A hash of every vocabulary file in use, for cache keys."""
    digest = hashlib.sha256()
    for path in (BUNDLED, *extra):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def _fold(term: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", term).casefold().split())
