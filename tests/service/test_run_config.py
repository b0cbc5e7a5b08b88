"""One run configuration: the libraries' config types, embedded whole, in the API and the pipeline.

A setting is added in one place, its library's config type: these tests walk the types' fields,
so a new field is checked here (in the OpenAPI schema, through a stored run, into the pipeline's
stages) without editing this file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import TypeAdapter, ValidationError

from filters.embeddings import DEFAULT_MODEL, resolve_model_dir
from filters.evolution import EliminationConfig
from filters.heuristics import INSTANCE_RULES, INSTRUCTION_RULES, HeuristicConfig
from filters.near_duplicates import NearDuplicateConfig
from filters.semantic_duplicates import SemanticDuplicateConfig
from filters.turns import TurnRules
from generators.backends.scripted import ScriptedBackend
from generators.config import BootstrapConfig
from generators.evol import EvolConfig
from generators.multiturn import MultiturnConfig
from generators.types import Candidate, Instance, IterationResult
from service.app import create_app
from service.cli import default_seed_path
from service.runs import pipeline as pipeline_module
from service.runs.config import RunConfig
from service.runs.pipeline import open_pipeline
from service.seed_files import parse_seed_file
from service.settings import Settings
from service.storage.db import Database
from service.storage.models import Run
from service.storage.seeds import import_seed_set
from tests.service.api_client import api_harness
from tests.service.scripted_run import queued_run, reply

SECTIONS = {
    "bootstrap": BootstrapConfig,
    "heuristics": HeuristicConfig,
    "near_duplicates": NearDuplicateConfig,
    "semantic_duplicates": SemanticDuplicateConfig,
    "evol": EvolConfig,
    "elimination": EliminationConfig,
    "multiturn": MultiturnConfig,
    "turn_rules": TurnRules,
}

# A run config exactly as the flat layout stored it (dumped by the RunConfig of commit 754a149).
FLAT_ROW: dict[str, Any] = {
    "seed_set": "default",
    "backend": "transformers",
    "model": "smollm2-135m",
    "backend_options": {},
    "target_tasks": 5,
    "max_iterations": None,
    "prompts_per_iteration": 2,
    "seed": 0,
    "max_instances_per_task": 3,
    "keep_truncated": False,
    "classification_only": False,
    "instruction_sampling": {
        "temperature": 0.7,
        "top_p": 0.5,
        "max_tokens": 1024,
        "presence_penalty": 2.0,
        "frequency_penalty": 0.0,
        "stop": ["\n\n", "\n16", "16.", "16 ."],
    },
    "classification_sampling": {
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 3,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "stop": ["\n", "Task:"],
    },
    "instance_sampling": {
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 300,
        "presence_penalty": 1.5,
        "frequency_penalty": 0.0,
        "stop": ["Task:"],
    },
    "filters": {
        "min_words": 3,
        "max_words": 40,
        "disabled_rules": ["blocked_prefix"],
        "rouge_l_threshold": 0.6,
    },
    "scorers": ["heuristic_quality", "refusal"],
    "policy_version": "v1",
}


def test_defaults_are_the_libraries_own() -> None:
    config = RunConfig(seed_set="s")
    assert config.bootstrap == BootstrapConfig()
    assert config.heuristics == HeuristicConfig()
    assert config.near_duplicates == NearDuplicateConfig()
    assert config.semantic_duplicates == SemanticDuplicateConfig()
    assert not config.semantic_duplicates.enabled
    assert config.bootstrap.prompts_per_iteration == 32
    assert config.bootstrap.max_instances_per_task == 5


def test_every_library_setting_is_in_the_openapi_schema() -> None:
    schema = create_app(Settings()).openapi()
    defs = schema["components"]["schemas"]
    run = defs["RunConfig"]["properties"]
    for section, config_type in SECTIONS.items():
        name = run[section]["$ref"].rsplit("/", 1)[1]
        fields = {f.name for f in dataclasses.fields(config_type)}
        assert set(defs[name]["properties"]) == fields, section
    body = schema["paths"]["/v1/runs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/RunConfig")


def test_hash_does_not_depend_on_set_order() -> None:
    rules = list(INSTRUCTION_RULES + INSTANCE_RULES)
    a = RunConfig(seed_set="s", heuristics=HeuristicConfig(enabled_rules=frozenset(rules)))
    b = RunConfig(seed_set="s", heuristics=HeuristicConfig(enabled_rules=frozenset(rules[::-1])))
    assert a.config_hash() == b.config_hash()
    dumped = a.model_dump(mode="json")["heuristics"]["enabled_rules"]
    assert dumped == sorted(rules)


def changed_value(value: Any) -> Any:
    """A valid value other than `value`, for any setting type the library configs use."""
    if isinstance(value, str):
        return None  # closed sets of names: non_default_sections picks a valid other value
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 0.9, 6)
    if isinstance(value, tuple):
        return (*value, "an extra")
    if isinstance(value, frozenset):
        return frozenset(sorted(value)[1:])
    if value is None:
        return True
    raise AssertionError(f"no changed value for {value!r}")


def non_default_sections() -> dict[str, dict[str, Any]]:
    """Every scalar field of every section set to a value other than its default, as JSON."""
    sections: dict[str, dict[str, Any]] = {}
    for section, config_type in SECTIONS.items():
        default = config_type()
        values = {
            f.name: changed_value(getattr(default, f.name))
            for f in dataclasses.fields(config_type)
            if not dataclasses.is_dataclass(getattr(default, f.name))  # sampling: tested apart
        }
        if section == "heuristics":  # settings whose values come from a closed set
            values["word_count"] = "whitespace"
            values["start_scripts"] = ("Han", "Cyrillic")
        if section == "semantic_duplicates":  # the packaged fp32 model given by its folder
            values["model"] = str(resolve_model_dir(DEFAULT_MODEL))
            values["index"] = "exact"
        if section == "multiturn":
            values["follow_ups"] = ("correction",)
            values["system_prompt"] = "You are terse."
        if section == "evol":
            values["operations"] = ("deepen", "in_breadth")
            values["parent_pool"] = "seed"
        if section == "bootstrap":  # keep the one cross-field rule satisfied
            values["num_seed_in_prompt"] = (
                values["num_prompt_instructions"] - values["num_machine_in_prompt"]
            )
        adapter = TypeAdapter(config_type)
        sections[section] = adapter.dump_python(adapter.validate_python(values), mode="json")
    return sections


class SpyStages:
    """Stands in for generators.bootstrap.Iteration: records the config it is built with."""

    seen: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, backend: Any, config: BootstrapConfig, seed: int) -> None:
        SpyStages.seen["bootstrap"] = config
        self.config = config  # read by the pipeline as generators.bootstrap.Iteration's
        self.failures: list[Any] = []

    def instructions(self, seed_tasks: Any, machine_tasks: Any) -> list[Candidate]:
        return [Candidate("Summarize the article below in three plain sentences.", "g1")]

    def classify(self, kept: list[Candidate]) -> None:
        for candidate in kept:
            candidate.is_classification = False

    def instances(self, kept: list[Candidate]) -> None:
        for candidate in kept:
            candidate.instances = [Instance("An article.", "A summary.")]

    def timed(self, key: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def result(self, candidates: list[Candidate], kept: list[Candidate]) -> IterationResult:
        return IterationResult([], [], candidates, kept, {})


def test_every_library_setting_reaches_the_pipeline(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"seed_set": "default", **non_default_sections()}
    config = RunConfig.model_validate(json.loads(json.dumps(body)))  # as the API receives it
    run_id = queued_run(database, config)
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(reply)
    )
    for section, config_type in SECTIONS.items():
        stored = TypeAdapter(config_type).dump_python(
            getattr(pipeline.config, section), mode="json"
        )
        assert stored == body[section], section
    assert pipeline.index.threshold == body["near_duplicates"]["threshold"]
    assert pipeline.semantic is not None
    assert pipeline.semantic.threshold == body["semantic_duplicates"]["threshold"]
    assert len(pipeline.semantic) == len(pipeline.seed_tasks)
    heuristics: list[HeuristicConfig] = []
    real_check = pipeline_module.check_instruction

    def spy_check(text: str, config: HeuristicConfig) -> Any:
        heuristics.append(config)
        return real_check(text, config)

    monkeypatch.setattr(pipeline_module, "Iteration", SpyStages)
    monkeypatch.setattr(pipeline_module, "check_instruction", spy_check)
    outcome = pipeline.step(1)
    assert SpyStages.seen["bootstrap"] is pipeline.config.bootstrap
    assert heuristics == [pipeline.config.heuristics]
    assert len(outcome.tasks) == 1


@pytest.mark.parametrize(
    ("keywords", "instruction", "rejected"),
    [
        (["poem"], "Write a short poem about the ocean at night.", True),  # not the paper's
        (["ocean at night"], "Write a short poem about the ocean at night.", True),  # a phrase
        (["POEM"], "Write a short poem about the ocean at night.", True),  # any case
        ([], "Draw a picture of a cat.", False),  # the paper's list turned off
    ],
)
def test_the_keyword_list_is_a_per_run_setting(
    database: Database, keywords: list[str], instruction: str, rejected: bool
) -> None:
    config = RunConfig.model_validate(
        {
            "seed_set": "default",
            "bootstrap": {"prompts_per_iteration": 1},
            "heuristics": {"keywords": keywords},
        }
    )
    run_id = queued_run(database, config)
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(reply)
    )
    verdicts = {t.candidate.instruction: t.verdict for t in pipeline.step(1).tasks}
    assert (verdicts[instruction].rule == "unsuitable_keyword") is rejected


def test_a_stored_flat_row_reads_as_it_ran(database: Database) -> None:
    config = RunConfig.model_validate(FLAT_ROW)
    assert config.bootstrap.prompts_per_iteration == 2
    assert config.bootstrap.max_instances_per_task == 3  # what the flat layout defaulted to
    assert config.bootstrap.instance_sampling.max_tokens == 300
    assert config.heuristics.max_words == 40
    assert config.heuristics.enabled_rules == frozenset(INSTRUCTION_RULES + INSTANCE_RULES) - {
        "blocked_prefix"
    }
    assert config.near_duplicates.threshold == 0.6
    run_id = queued_run(database, RunConfig(seed_set="default"))
    with database.transaction() as s:  # the row as the old code wrote it
        row = s.get(Run, run_id)
        assert row is not None
        row.config = FLAT_ROW
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(reply)
    )
    assert pipeline.config == config and pipeline.index.threshold == 0.6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"filters": {"disabled_rules": ["no_such_rule"]}}, "unknown rules"),
        ({"filters": {"rouge_l": 0.7}}, "unknown keys"),
        ({"filters": {"disabled_rules": 5}}, "a list of rule names"),
        ({"filters": {"disabled_rules": [None]}}, "a list of rule names"),
        ({"filters": [1]}, "an object"),
        ({"bootstrap": {"prompts_per_iteration": 4}}, "both flat and inside 'bootstrap'"),
        ({"heuristics": {"max_words": 10}}, "both flat and inside 'heuristics'"),
        ({"filters": {"min_words": 50, "max_words": 40}}, "bad word bounds"),
        ({"instruction_sampling": {"temperature": 9, "top_p": 1, "max_tokens": 5}}, "temperature"),
    ],
)
def test_a_bad_flat_row_is_refused_with_its_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RunConfig.model_validate({**FLAT_ROW, **change})


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("bootstrap", {"num_seed_in_prompt": 7}, "must equal num_prompt_instructions"),
        ("bootstrap", {"prompts_per_iteration": 0}, "prompts_per_iteration"),
        ("bootstrap", {"surprise": 1}, "surprise"),
        ("heuristics", {"enabled_rules": ["no_such_rule"]}, "unknown heuristic rules"),
        ("heuristics", {"min_words": 9, "max_words": 9}, "bad word bounds"),
        ("heuristics", {"keywords": ["poem", ""]}, "keywords"),
        ("heuristics", {"blocked_prefixes": [""]}, "blocked_prefixes"),
        ("near_duplicates", {"threshold": 1.5}, "threshold"),
    ],
)
def test_each_section_is_validated_once_by_its_library(
    section: str, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        RunConfig.model_validate({"seed_set": "s", section: values})
    assert info.value.errors()[0]["loc"][0] == section


def test_the_api_takes_the_embedded_layout_and_the_flat_one_alike(
    db_url: str, tmp_path: Path
) -> None:
    with api_harness(db_url, tmp_path) as api:
        with api.database.transaction() as s:
            seed_file = parse_seed_file(default_seed_path().read_bytes())
            import_seed_set(s, name="default", seed_file=seed_file)
        nested = {
            "seed_set": "default",
            "bootstrap": {"prompts_per_iteration": 2, "max_instances_per_task": 3},
            "heuristics": {"keywords": ["poem"], "max_words": 40},
            "near_duplicates": {"threshold": 0.6},
        }
        flat = {
            "seed_set": "default",
            "prompts_per_iteration": 2,
            "max_instances_per_task": 3,
            "filters": {"max_words": 40, "rouge_l_threshold": 0.6},
            "heuristics": {"keywords": ["poem"]},
        }
        made = [api.client.post("/v1/runs", json=b, headers=api.headers()) for b in (nested, flat)]
        assert [r.status_code for r in made] == [202, 202], made[1].text
        first, second = (r.json() for r in made)
        assert first["config"] == second["config"]
        assert first["config_hash"] == second["config_hash"]
        assert first["config"]["heuristics"]["keywords"] == ["poem"]
        bad = api.client.post(
            "/v1/runs",
            json={"seed_set": "default", "bootstrap": {"instance_sampling": {"top_p": 0}}},
            headers=api.headers(),
        )
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
        assert "bootstrap" in bad.text and "top_p" in bad.text
