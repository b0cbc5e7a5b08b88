"""The plain export check finds each junk kind of issue 15 and passes clean examples."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dataformats.jsonl import write_jsonl
from tests.e2e.export_check import export_junk, main

CLEAN = [
    ("Give three tips for staying healthy.", "", "Eat well, sleep enough and move every day."),
    ("Correct the grammar.", "He go to school.", "He goes to school."),
    ("3 friends split a $45 bill equally. How much does each pay?", "", "Each pays $15."),
    ("Find the median of 4, 10 and 8.", "", "The median is 8."),
]
JUNK = {
    "list_number": [
        ("Sentence 2: The cat sat on the mat.", "", "A cat is sitting."),
        ("２．把这句话改写成被动语态。", "猫抓了老鼠。", "老鼠被猫抓了。"),
        ("(3) Name a fruit.", "", "Apple."),
        ("Step 4 - Name a fruit.", "", "Pear."),
    ],
    "echo": [
        ("Name a color of the sky.", "", "name a color of the sky"),
        ("Summarize the text.", "It rained all day.", "Output: It rained all day."),
        (
            "Write a short poem about the ocean at night.",
            "",
            "Write a short poem about the ocean at noon.",
        ),
    ],
    "label_residue": [
        ("Have you ever lost a pet?", "", "No, I have never lost a pet.\nOutput: Yes, I have."),
        ("Name a river.", "", "The Nile.\n  Input 2: a lake\nOutput 2: Baikal"),
        ("Name a bird.", "", "A robin.\nExample 2\nA crow."),
        ("Is the sentence positive?", "Sentence: See you.\nOutput: (a) Yes", "Yes"),
    ],
}


def _export(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    vdir = tmp_path / "v1"
    vdir.mkdir()
    records = [
        {"id": f"{i}:0", "task_id": str(i), "task_type": "generation", "instruction": ins,
         "input": inp, "output": out}
        for i, (ins, inp, out) in enumerate(rows, start=1)
    ]  # fmt: skip
    write_jsonl(vdir / "train.alpaca.jsonl", records[1:])
    write_jsonl(vdir / "validation.alpaca.jsonl", records[:1])
    return vdir


def _database(tmp_path: Path, cut: dict[int, str]) -> Path:
    """Instances of tasks 1..n, the ones in ``cut`` from a length-cut completion."""
    path = tmp_path / "db.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE generations (id TEXT, completion TEXT, finish_reason TEXT)")
    db.execute("CREATE TABLE instances (task_id INTEGER, generation_id TEXT)")
    for task_id, completion in cut.items():
        db.execute("INSERT INTO generations VALUES (?, ?, 'length')", (f"g{task_id}", completion))
        db.execute("INSERT INTO instances VALUES (?, ?)", (task_id, f"g{task_id}"))
    db.commit()
    db.close()
    return path


def test_clean_examples_pass(tmp_path: Path) -> None:
    vdir = _export(tmp_path, CLEAN)
    assert export_junk(vdir) == {
        "list_number": [],
        "echo": [],
        "label_residue": [],
        "truncated_single": [],
    }
    assert main([str(vdir)]) == 0


def test_each_kind_is_found(tmp_path: Path) -> None:
    rows = CLEAN + JUNK["list_number"] + JUNK["echo"] + JUNK["label_residue"]
    # Task 1's only output ends a length-cut completion; task 2's was cut after it (kept).
    completion_1 = "Input: x\nOutput: Eat well, sleep enough and move every day."
    completion_2 = "Output: He goes to school.\nInput: She go\nOutput: She goe"
    vdir = _export(tmp_path, rows)
    junk = export_junk(vdir, _database(tmp_path, {1: completion_1, 2: completion_2}))
    assert len(junk["list_number"]) == 4
    assert [line.split(":")[0] for line in junk["echo"]] == ["9", "10", "11"]
    assert "near-copy" in junk["echo"][2]
    assert [line.split(":")[0] for line in junk["label_residue"]] == ["12", "13", "14", "15"]
    assert [line.split(":")[0] for line in junk["truncated_single"]] == ["1"]
    assert main([str(vdir)]) == 1
