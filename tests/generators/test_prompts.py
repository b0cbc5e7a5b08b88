"""Templates load by name and version with their sha256; few-shot sampling is seeded."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pytest

import generators
from generators.errors import ConfigError, TemplateError
from generators.prompts import (
    load_template,
    render_instruction_prompt,
    render_task_prompt,
    sample_few_shot,
)
from generators.types import PoolTask
from tests.templating.hostile_values import HOSTILE_VALUES, render_by_split

TEMPLATE_DIR = Path(generators.__file__).parent / "templates"
ALL_TEMPLATES = [
    "instructions",
    "instructions_classification",
    "is_classification",
    "instances_input_first",
    "instances_output_first",
    "evol_add_constraints",
    "evol_answer",
    "evol_complicate_input",
    "evol_concretize",
    "evol_deepen",
    "evol_in_breadth",
    "evol_increase_reasoning",
    "multiturn_answer",
    "multiturn_clarification",
    "multiturn_constraint",
    "multiturn_correction",
]


@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_template_loads_with_the_sha256_of_its_file(name: str) -> None:
    template = load_template(name, 1)
    data = (TEMPLATE_DIR / f"{name}.v1.txt").read_bytes()
    assert template.sha256 == hashlib.sha256(data).hexdigest()
    assert template.text == data.decode()
    assert template.fields


# The file hashes provenance records; rendering through templating must not change them.
PINNED_SHA256 = {
    "instances_input_first": "5409fb1eb10335dda2df5dc642b5b1c65cae35089576717d413f16637fb666df",
    "instances_output_first": "d7c04b75e3814e3f342fcc92d0cee6d0e66139421806903edad50b5e8bb4af3f",
    "instructions": "e3fd75e113cb968ae717341f709b3c3a6799c2c0ce471ce8decd48e74795feeb",
    "instructions_classification": (
        "34790a04ee3cad0df5a393d27602a080dad67d8e7bfa7d15ab68d34e0dcea653"
    ),
    "is_classification": "2bed099e084a3ae83a1f258d2527d748fdc66a4f11fdd90ad9e77155b280c4bc",
    "evol_add_constraints": "9189e00e46335f3745e8f0e8076af8c943e261c585ae8ebc6e2eb25e4c57bd4f",
    "evol_answer": "6c522d30464cf3d52bed273c0eed0a53d38b20cbc99d0e03eb5a87803482690b",
    "evol_complicate_input": "60652676ae28baa66c581a304e1957356d88aa74b1ec45b40149455736ae0f0d",
    "evol_concretize": "0b339ae8e473bc26ea3f89375703609242fa29095a376e210a2282011b0c66fd",
    "evol_deepen": "a951c0bbe9a9f149002fcf7b688f4c19a7cd9274372feafed387b883159b9b86",
    "evol_in_breadth": "93f213de1d40528b422a4070f9fe09c8ed87164990bd31e9d085df7072744723",
    "evol_increase_reasoning": "6546e0ec6746406b1b093387a627bf593b881f2bc1587b6d5f359e56ccae6e12",
    "multiturn_answer": "f595bcef2bdcd88bddeb66688e19729e0133f271aa5683dab4573dcc4668335e",
    "multiturn_clarification": "dc7f617d493a832041b8c1bee5f0fe2709fabbf94b0e8af2031560fea4e5b1eb",
    "multiturn_constraint": "71ebd9560d215831751aa35f8bd3d4908e4987611d7ee0cf15d7e3e69b12a2a8",
    "multiturn_correction": "156825e5619f8eb470d7f1b4b97ab35263b91aa5c9dd475c1964eeccc7b05b5f",
}


@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_template_hashes_are_stable(name: str) -> None:
    assert load_template(name, 1).sha256 == PINNED_SHA256[name]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_every_slot_of_every_template_takes_values_verbatim(name: str, value: str) -> None:
    template = load_template(name, 1)
    for slot in sorted(template.fields):
        values = {field: f"plain {field}" for field in template.fields}
        values[slot] = f"Task with {value} inside"
        rendered = template.render(**values)
        assert rendered == render_by_split(template.text, values)
        assert rendered.count(f"Task with {value} inside") == 1


def test_unknown_template_or_version_is_a_template_error() -> None:
    with pytest.raises(TemplateError):
        load_template("instructions", 99)
    with pytest.raises(TemplateError):
        load_template("../etc/passwd", 1)


def test_render_refuses_missing_or_unknown_fields() -> None:
    template = load_template("is_classification", 1)
    with pytest.raises(TemplateError):
        template.render()
    with pytest.raises(TemplateError):
        template.render(instruction="x", extra="y")


def test_instruction_prompt_is_numbered_and_ends_on_the_next_number(
    seed_pool: list[PoolTask],
) -> None:
    tasks = seed_pool[:8]
    prompt = render_instruction_prompt(load_template("instructions", 1), tasks)
    lines = prompt.split("\n")
    assert lines[0] == "Come up with a series of tasks:"
    assert [re.match(r"(\d+)\. ", line).group(1) for line in lines[1:9]] == [
        str(i) for i in range(1, 9)
    ]
    assert prompt.endswith("\n9.")
    assert all("\n" not in line for line in lines)


def test_instruction_text_is_normalised_and_dollars_survive() -> None:
    task = PoolTask("t", "Price  in $5\n  units:", False, "seed")
    prompt = render_instruction_prompt(load_template("instructions", 1), [task])
    assert "1. Price in $5 units\n2." in prompt


def test_classification_variant_has_its_own_header() -> None:
    prompt = render_instruction_prompt(
        load_template("instructions_classification", 1),
        [PoolTask("t", "Is it spam?", True, "seed")],
    )
    assert prompt.startswith("Come up with a series of classification tasks.")


def test_task_prompt_ends_where_the_model_answers() -> None:
    prompt = render_task_prompt(load_template("is_classification", 1), "Is this spam?")
    assert prompt.endswith("Task: Is this spam?\nIs it classification?")
    prompt = render_task_prompt(load_template("instances_input_first", 1), "Sort it.")
    assert prompt.endswith("Task: Sort it.\n")


def test_few_shot_sampling_is_deterministic_for_a_seed(
    seed_pool: list[PoolTask], machine_pool: list[PoolTask]
) -> None:
    def pick(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [
            t.id
            for _ in range(5)
            for t in sample_few_shot(seed_pool, machine_pool, rng=rng, num_total=8, num_machine=2)
        ]

    assert pick(7) == pick(7)
    assert pick(7) != pick(8)


def test_few_shot_takes_two_machine_tasks_and_six_seed(
    seed_pool: list[PoolTask], machine_pool: list[PoolTask]
) -> None:
    tasks = sample_few_shot(
        seed_pool, machine_pool, rng=random.Random(0), num_total=8, num_machine=2
    )
    assert len(tasks) == 8
    assert sum(t.origin == "machine" for t in tasks) == 2
    assert len({t.id for t in tasks}) == 8


def test_few_shot_fills_with_seed_tasks_while_the_machine_pool_is_small(
    seed_pool: list[PoolTask], machine_pool: list[PoolTask]
) -> None:
    rng = random.Random(0)
    none = sample_few_shot(seed_pool, [], rng=rng, num_total=8, num_machine=2)
    one = sample_few_shot(seed_pool, machine_pool[:1], rng=rng, num_total=8, num_machine=2)
    assert [t.origin for t in none].count("seed") == 8
    assert [t.origin for t in one].count("machine") == 1
    assert len(one) == 8


def test_classification_only_samples_classification_tasks(
    seed_pool: list[PoolTask], machine_pool: list[PoolTask]
) -> None:
    tasks = sample_few_shot(
        seed_pool,
        machine_pool,
        rng=random.Random(3),
        num_total=8,
        num_machine=2,
        classification_only=True,
    )
    assert tasks and all(t.is_classification for t in tasks)


def test_empty_seed_pool_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        sample_few_shot([], [], rng=random.Random(0), num_total=8, num_machine=2)
