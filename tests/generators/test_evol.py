"""Evol-Instruct's stages on a scripted backend: prompts, parsing, provenance, parents."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from generators.backends.scripted import ScriptedBackend
from generators.bootstrap import Iteration
from generators.config import BootstrapConfig
from generators.errors import ParseError
from generators.evol import (
    IN_DEPTH,
    OPERATIONS,
    EvolConfig,
    answer,
    evolve,
    parent_text,
    parse_evolved,
    pick_parents,
)
from generators.prompts import load_template
from generators.types import Completion, Instance, PoolTask

PARENT = PoolTask(
    "7", "Sort the numbers in ascending order.", False, "seed", [Instance("3, 1, 2", "1, 2, 3")]
)


def _done(text: str, finish: str = "stop") -> Completion:
    return Completion(text, finish, 10, len(text.split()), 0.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sort the numbers in descending order.", "Sort the numbers in descending order."),
        ("  #Rewritten Prompt#: Sort them twice.\n", "Sort them twice."),
        ("#The Rewritten Prompt#:\nSort them, then sum them.", "Sort them, then sum them."),
        ("# Created Prompt #\nName three rare birds.", "Name three rare birds."),
        ("#The Given Prompt#:\nName a rare bird.", "Name a rare bird."),  # SmolLM2's habit
        ('"The Given Prompt#:\nRewritten Prompt#:\nList birds.', "List birds."),
        ('"Sort the list."', "Sort the list."),
        ("Sort the list.\n#The Given Prompt#:\nSort the numbers.", "Sort the list."),
        ("Sort this table:\n| a | b |\n| 1 | 2 |", "Sort this table:\n| a | b |\n| 1 | 2 |"),
    ],
)
def test_parse_evolved(text: str, expected: str) -> None:
    assert parse_evolved(_done(text), max_chars=1000) == expected


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        (_done("", "stop"), "empty"),
        (_done("#Rewritten Prompt#:   ", "stop"), "empty"),
        (_done('"The Given Prompt#:\nRewritten Prompt#:\nThe Given Prompt#:', "stop"), "empty"),
        (_done("Sort the numbers in descending", "length"), "truncated"),
        (_done("x" * 50), "item_too_long"),
    ],
)
def test_parse_evolved_refuses(completion: Completion, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_evolved(completion, max_chars=40)
    assert info.value.reason == reason


def test_every_operation_has_a_hashed_template_that_shows_the_parent() -> None:
    assert set(IN_DEPTH) < set(OPERATIONS) and "in_breadth" in OPERATIONS
    texts = set()
    for op in OPERATIONS:
        template = load_template(f"evol_{op}", 1)
        assert template.fields == {"parent"}
        rendered = template.render(parent=parent_text(PARENT))
        assert "Sort the numbers in ascending order.\n3, 1, 2" in rendered
        texts.add(template.sha256)
    assert len(texts) == len(OPERATIONS)  # each operation asks something different


def test_parents_and_operations_are_seeded_and_drawn_from_the_pool() -> None:
    machine = [PoolTask("m1", "Write a haiku.", False, "machine")]
    config = EvolConfig(parents_per_iteration=40)
    picks = pick_parents([PARENT], machine, rng=random.Random(3), config=config)
    again = pick_parents([PARENT], machine, rng=random.Random(3), config=config)
    assert [(p.id, op) for p, op in picks] == [(p.id, op) for p, op in again]
    assert {p.id for p, _ in picks} == {"7", "m1"}
    assert {op for _, op in picks} == set(OPERATIONS)
    seeds_only = EvolConfig(parents_per_iteration=40, parent_pool="seed", operations=("deepen",))
    picks = pick_parents([PARENT], machine, rng=random.Random(3), config=seeds_only)
    assert {(p.id, op) for p, op in picks} == {("7", "deepen")}
    assert pick_parents([], [], rng=random.Random(0), config=config) == []


def test_unknown_operation_is_refused() -> None:
    with pytest.raises(ValidationError):
        EvolConfig(operations=("make_it_harder",))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        EvolConfig(operations=())


def test_evolve_then_answer_records_provenance() -> None:
    def reply(prompt: str) -> str | Completion:
        if "#Rewritten Prompt#:" in prompt or "#Created Prompt#:" in prompt:
            return "#Rewritten Prompt#: Sort the numbers in ascending order, then remove odd ones."
        if prompt == "Sort the numbers in ascending order, then remove odd ones.":
            return " 2 "
        raise AssertionError(prompt)

    it = Iteration(backend=ScriptedBackend(reply), config=BootstrapConfig(), seed=5)
    config = EvolConfig(parents_per_iteration=2, operations=("add_constraints",))
    picks = pick_parents([PARENT], [], rng=random.Random(0), config=config)
    candidates = evolve(it, picks, config)
    assert [(c.parent_id, c.operation) for c in candidates] == [("7", "add_constraints")] * 2
    assert all(c.is_classification is False for c in candidates)
    answer(it, candidates[:1], config)
    assert candidates[0].instances == [Instance("", "2")]
    assert candidates[1].instances == []
    stages = [r.stage for r in it.records]
    assert stages == ["evolution", "evolution", "answer"]
    evo = it.records[0]
    assert evo.template_name == "evol_add_constraints" and evo.few_shot_ids == ["7"]
    assert evo.template_sha256 == load_template("evol_add_constraints", 1).sha256
    assert candidates[0].generation_id == evo.id
    assert candidates[0].instances_generation_id == it.records[2].id
    assert it.records[2].template_name == "evol_answer"


def test_unparsable_rewrites_and_cut_answers_are_parse_failures() -> None:
    replies: list[str | Completion] = [_done(""), _done("Sort it.")]
    it = Iteration(backend=ScriptedBackend(replies), config=BootstrapConfig(), seed=0)
    config = EvolConfig(parents_per_iteration=2)
    candidates = evolve(it, pick_parents([PARENT], [], rng=random.Random(0), config=config), config)
    assert len(candidates) == 1
    it.backend = ScriptedBackend([_done("Sorted: 1, 2", "length")])
    answer(it, candidates, config)
    assert candidates[0].instances == []
    assert [(f.stage, f.reason) for f in it.failures] == [
        ("evolution", "empty"),
        ("answer", "truncated"),
    ]
