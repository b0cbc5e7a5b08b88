"""Decontamination against the user-oriented eval set."""

from __future__ import annotations

import json

import pytest

from filters.decontamination import RULE_NAME, Decontaminator, EvalItem, load_eval_jsonl
from filters.errors import EvalSetError


@pytest.fixture(scope="module")
def decon(user_oriented_path: str) -> Decontaminator:
    return Decontaminator(load_eval_jsonl(user_oriented_path), eval_set_name="user_oriented")


def test_loads_the_real_file(user_oriented_path: str) -> None:
    items = load_eval_jsonl(user_oriented_path)
    assert len(items) == 252
    assert items[0].id == "user_oriented_task_0" and items[0].inputs and items[0].outputs


def test_bad_lines_name_their_line() -> None:
    good = json.dumps({"id": "a", "instruction": "Do it"})
    cases = [
        ([good, "{not json"], 2),
        ([good, "", json.dumps({"instruction": "x"})], 3),
        ([json.dumps({"id": "a", "instruction": ""})], 1),
        ([json.dumps({"id": "a", "instruction": "x", "instances": [{"input": 3}]})], 1),
        ([good, good], 2),
        (["[1, 2]"], 1),
        ([good, "", '{"id": "b", "instruction": "x \\udc00"}'], 3),
        (['{"id": "b", "instruction": "x", "instances": [{"input": "\\ud800"}]}'], 1),
        ([good, '{"id": "b", "instruction": NaN}'], 2),
    ]
    for lines, line in cases:
        with pytest.raises(EvalSetError) as err:
            load_eval_jsonl("\n".join(lines).encode())
        assert err.value.line == line and f"line {line}" in str(err.value)


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x1c", "\x1e"])
def test_unicode_line_breaks_stay_inside_their_item(char: str) -> None:
    rows = [
        {"id": "a", "instruction": f"{char}Lead", "instances": [{"input": f"x{char}y"}]},
        {"id": "b", "instruction": f"Tail{char}"},
    ]
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    items = load_eval_jsonl(data)
    assert [(i.id, i.instruction, i.inputs) for i in items] == [
        ("a", f"{char}Lead", [f"x{char}y"]),
        ("b", f"Tail{char}", []),
    ]


def test_flags_near_duplicate_instruction(decon: Decontaminator, user_oriented) -> None:
    item = user_oriented[10]
    verdict = decon.check_task(item["instruction"].upper() + " Thanks.", [])
    assert not verdict.accepted and verdict.rule == RULE_NAME
    assert verdict.nearest_id == item["id"] and verdict.similarity > 0.7
    assert "user_oriented" in verdict.reason and "instruction" in verdict.reason


def test_flags_leaked_instance(decon: Decontaminator, user_oriented) -> None:
    item = next(i for i in user_oriented if len(i["instances"][0]["output"].split()) > 12)
    output = item["instances"][0]["output"]
    verdict = decon.check_task("Tell me something nice about the weather today.", [("", output)])
    assert not verdict.accepted and verdict.nearest_id == item["id"]
    assert "instance 0 output" in verdict.reason
    single = decon.check_instance("Tell me something nice.", "", output)
    assert not single.accepted and single.nearest_id == item["id"]


def test_clean_task_and_short_labels_pass(decon: Decontaminator) -> None:
    verdict = decon.check_task(
        "List three prime numbers greater than one hundred.", [("", "101, 103, 107")]
    )
    assert verdict.accepted and verdict.reason == ""
    # "Positive" is an eval output too, but too short to count as leakage.
    assert decon.check_task(
        "Classify the sentiment of this tweet now.", [("", "Positive")]
    ).accepted


def test_own_items_and_non_english() -> None:
    items = [
        EvalItem("e1", "Résumez ce texte en une phrase.", [""], ["Une phrase."]),
        EvalItem("e2", "Name the capital of France.", [], []),
    ]
    decon = Decontaminator(items, eval_set_name="tiny")
    assert decon.check_task("Résumez ce texte en une phrase!", []).nearest_id == "e1"
    assert not decon.check_task("name the capital of france", []).accepted
    assert decon.check_task("", [("", "")]).accepted
