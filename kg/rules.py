"""The user's merge rules: a text file of forced merges, forbidden merges and dropped terms."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kg.errors import AliasFileError

__all__ = ["MergeRules", "read_rules", "DEFAULT_RULES"]

#: Read by `kg build` when present in the current folder.
DEFAULT_RULES = Path("kg-aliases.txt")

_FORBID = re.compile(r"^(.+?)\s*!=\s*(.+)$")
_FORCE = re.compile(r"^(.+?)\s*=\s*(.+)$")
_DROP = re.compile(r"^-\s*(.+)$")


@dataclass(frozen=True)
class MergeRules:
    forced: tuple[tuple[str, str], ...] = ()
    forbidden: tuple[tuple[str, str], ...] = ()
    dropped: tuple[str, ...] = field(default=())


def read_rules(path: Path) -> MergeRules:
    """Read a merge-rules file, one rule a line; ``#`` starts a comment.

    ``A = B`` merges A and B whatever the guards say; ``A != B`` keeps them apart whatever
    the evidence; ``- A`` drops the term A from the graph.

    Raises
    ------
    AliasFileError
        Naming the file and line of a line that is none of these.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rules.txt"
    >>> _ = path.write_text("KimiVL = Kimi-VL\\nAdam != AdamW  # never\\n- Vision Layers\\n")
    >>> read_rules(path)
    MergeRules(forced=(('KimiVL', 'Kimi-VL'),), forbidden=(('Adam', 'AdamW'),), dropped=('Vision Layers',))
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise AliasFileError(f"{path}: cannot read the merge rules ({err})") from err
    forced, forbidden, dropped = [], [], []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if match := _FORBID.match(line):
            forbidden.append((match.group(1).strip(), match.group(2).strip()))
        elif match := _FORCE.match(line):
            forced.append((match.group(1).strip(), match.group(2).strip()))
        elif match := _DROP.match(line):
            dropped.append(match.group(1).strip())
        else:
            raise AliasFileError(f"{path}:{number}: {raw.strip()!r} is not a rule; write "
                                 "'A = B' to merge, 'A != B' to keep apart, '- A' to drop")
        pair = forbidden[-1] if line.find("!=") >= 0 else forced[-1] if "=" in line else None
        if pair and (not pair[0] or not pair[1] or pair[0] == pair[1]):
            raise AliasFileError(f"{path}:{number}: a rule needs two different names")
    return MergeRules(tuple(forced), tuple(forbidden), tuple(dropped))
