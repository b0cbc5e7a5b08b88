"""The bench result convention: ``{"rows": [...], "goals": [...], "env": {...}}`` in one JSON file.

A goal is ``{"name", "value", "target", "direction": "higher"|"lower", "met"}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def goal(name: str, value: float | None, target: float, direction: str) -> dict[str, Any]:
    """One goal; a value of None (nothing to measure) is never met."""
    met = value is not None and (value >= target if direction == "higher" else value <= target)
    return {"name": name, "value": value, "target": target, "direction": direction, "met": met}


def write_result(
    path: Path, rows: list[dict[str, Any]], goals: list[dict[str, Any]], env: dict[str, Any]
) -> None:
    """Write the result file and print one line per goal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows, "goals": goals, "env": env}, indent=2) + "\n")
    for g in goals:
        shown = "n/a" if g["value"] is None else f"{g['value']:.4g}"
        print(f"{g['name']}: {shown} (target {g['direction']} {g['target']}) met={g['met']}")
    print(f"wrote {path}")
