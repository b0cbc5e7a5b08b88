"""Count the junk kinds of issue 15 in an exported dataset version, with plain checks.

Deliberately independent of ``filters/`` (no ROUGE tokens, no rule code): a second opinion on
what the rules let through. Used by the demo e2e test and runnable by hand on a demo export::

    python -m tests.e2e.export_check data/datasets/demo/v1 data/instructforge.db

Kinds counted (each example is listed with its kind, so a count can be read by eye):

- ``list_number``: the instruction starts with a list number or a numbered label (``2.``,
  ``(2)``, ``#2``, ``Step 2:``, ``Sentence 2 -``, ``问题2：``), found by a loose regular
  expression on the NFKC text: a number right after at most three words, then a marker.
- ``echo``: the output equals the instruction once case, punctuation, spacing and leading
  field labels are set aside, or the input once spacing and labels are, or is a near-copy of
  the instruction: it starts with the instruction's first word and difflib's character ratio
  is at least :data:`NEAR_COPY_RATIO` (the library's rule works on word tokens and LCS; this
  one on characters).
- ``label_residue``: an output holding a line that starts with one of the instance prompt's
  own labels (``Input:``, ``Output:``, ``Example 2``) after its first line: a second pair or a
  second answer run on inside one example; or an input holding a line that starts with
  ``Output:`` or ``Example N`` (a classification input the model ran on past).
- ``truncated_single``: a task exported with a single example whose output is the end of a
  completion cut by the length limit (``finish_reason == "length"``, read from the database).
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import sys
import unicodedata
from pathlib import Path
from typing import Any

from dataformats.jsonl import read_jsonl

NEAR_COPY_RATIO = 0.8
_LIST_NUMBER = re.compile(
    r"^[\[(#【]?\s*(?:"
    r"(?:[^\W\d_]+\s*){0,3}(?:#|no\.?)?\s*\d{1,3}\s*(?:[.)\]】、](?=\s|$|[^\x00-\x7f])|[:：](?!\d)|\s?[-–—]\s)"
    r"|(?:(?<=#)|(?<=#\s))\d{1,3}\s|[IVX]{1,5}[.)]\s|[a-z]\)\s)",
    re.IGNORECASE,
)
_RUN_ON = re.compile(r"\n\s*(?:(?:input|output)\s*\d*\s*[:：]|example\s*\d+\b)", re.IGNORECASE)
_INPUT_RUN_ON = re.compile(r"(?:^|\n)\s*(?:output\s*\d*\s*[:：]|example\s*\d+\b)", re.IGNORECASE)
_LABEL = re.compile(
    r"^\s*(?:input|output|answer|response|instruction|task|example)\s*\d*\s*[:：]", re.IGNORECASE
)


def _spaced(text: str) -> str:
    """NFKC text without a leading field label, whitespace collapsed."""
    return " ".join(_LABEL.sub("", unicodedata.normalize("NFKC", text).strip()).split())


def _plain(text: str) -> str:
    """Casefolded words of letters and digits, without a leading label or list number."""
    return " ".join(re.findall(r"\w+", _LIST_NUMBER.sub("", _spaced(text)).casefold()))


def _examples(version_dir: Path) -> list[dict[str, Any]]:
    files = sorted(version_dir.glob("*.alpaca.jsonl"))
    if not files:
        raise FileNotFoundError(f"no *.alpaca.jsonl in {version_dir}")
    return [record for path in files for _, record in read_jsonl(path)]


def _echo(example: dict[str, Any]) -> str | None:
    out = _plain(example["output"])
    ins = _plain(example["instruction"])
    if not out:
        return None
    if out == ins:
        return "equals the instruction"
    # Case and punctuation count against the input: on Alpaca, outputs that differ from their
    # input only so answer capitalisation and punctuation tasks.
    if example["input"].strip() and _spaced(example["output"]) == _spaced(example["input"]):
        return "equals the input"
    if not ins or out.split()[0] != ins.split()[0]:
        return None  # an answer restating its question starts from its subject
    ratio = difflib.SequenceMatcher(None, out, ins, autojunk=False).ratio()
    if ratio >= NEAR_COPY_RATIO:
        return f"near-copy of the instruction (character ratio {ratio:.2f})"
    return None


def _truncated(rows: list[dict[str, Any]], database: Path) -> list[dict[str, Any]]:
    """Single-example tasks whose output ends a length-cut completion."""
    per_task: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        per_task.setdefault(row["task_id"], []).append(row)
    found = []
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        for task_id, examples in per_task.items():
            if len(examples) != 1:
                continue
            cut = db.execute(
                "SELECT g.completion FROM instances i JOIN generations g "
                "ON g.id = i.generation_id WHERE i.task_id = ? AND g.finish_reason = 'length'",
                (int(task_id),),
            ).fetchall()
            output = examples[0]["output"].strip()
            if output and any(c.rstrip().endswith(output) for (c,) in cut):
                found.append(examples[0])
    finally:
        db.close()
    return found


def export_junk(version_dir: Path, database: Path | None = None) -> dict[str, list[str]]:
    """The examples of each junk kind in an export (see the module docstring).

    Args:
        version_dir: A dataset version directory holding ``<split>.alpaca.jsonl`` files.
        database: The SQLite database the version was exported from; without it the
            truncation kind is not checked (empty list).

    Returns:
        ``{"list_number": [...], "echo": [...], "label_residue": [...],
        "truncated_single": [...]}``, each a list of
        ``"<example id>: <why>"`` lines.

    Raises:
        FileNotFoundError: When the directory holds no Alpaca-shaped file.
    """
    rows = _examples(version_dir)
    junk: dict[str, list[str]] = {
        "list_number": [],
        "echo": [],
        "label_residue": [],
        "truncated_single": [],
    }
    for row in rows:
        marker = _LIST_NUMBER.match(unicodedata.normalize("NFKC", row["instruction"]).strip())
        if marker:
            junk["list_number"].append(f"{row['id']}: {marker.group(0)!r} {row['instruction']!r}")
        why = _echo(row)
        if why:
            junk["echo"].append(f"{row['id']}: {why}: {row['output'][:120]!r}")
        run_on = _RUN_ON.search(row["output"]) or _INPUT_RUN_ON.search(row["input"])
        if run_on:
            junk["label_residue"].append(f"{row['id']}: {run_on.group(0).strip()!r}")
    if database is not None:
        junk["truncated_single"] = [
            f"{row['id']}: {row['output'][-80:]!r}" for row in _truncated(rows, database)
        ]
    return junk


def main(argv: list[str]) -> int:
    """Print the count and the examples of each kind; exit 1 when any kind is not empty."""
    version_dir = Path(argv[0])
    database = Path(argv[1]) if len(argv) > 1 else None
    junk = export_junk(version_dir, database)
    examples = len(_examples(version_dir))
    print(f"{version_dir}: {examples} examples")
    for kind, lines in junk.items():
        print(f"{kind}: {len(lines)}")
        for line in lines:
            print(f"  {line}")
    return 1 if any(junk.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
