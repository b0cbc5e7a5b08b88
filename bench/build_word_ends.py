"""Build ``filters/data/word_ends.<TABLE_VERSION>.txt`` from the Stanford Alpaca outputs.

The table is committed; rerun this only with a new ``filters.word_ends.TABLE_VERSION`` (a
changed table changes the quality scorer's scores, so the scorer's version moves with it).

Run: python bench/build_word_ends.py [ALPACA_JSON]   (default /work/shared/data/alpaca_data.json)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from filters.word_ends import MIN_COUNT, TABLE_VERSION, build_table

ROOT = Path(__file__).resolve().parents[1]
ALPACA = Path("/work/shared/data/alpaca_data.json")


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ALPACA
    raw = source.read_bytes()
    # Even rows only: the odd rows are bench/quality.py's second dev split, kept out of the table.
    outputs = [row["output"] for row in json.loads(raw)[::2]]
    rows = build_table(outputs)
    out = ROOT / "filters" / "data" / f"word_ends.{TABLE_VERSION}.txt"
    header = [
        f"# filters.word_ends table {TABLE_VERSION}: word<TAB>uses<TAB>uses ending a sentence,"
        " a line or the text",
        f"# from the outputs of {source.name} (Stanford Alpaca, CC BY-NC 4.0; counts only),"
        f" sha256 {hashlib.sha256(raw).hexdigest()[:16]}, {len(outputs)} outputs (even rows),"
        f" words used >= {MIN_COUNT} times",
    ]
    lines = header + [f"{w}\t{n}\t{e}" for w, n, e in rows]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{out}: {len(rows)} words")


if __name__ == "__main__":
    main()
