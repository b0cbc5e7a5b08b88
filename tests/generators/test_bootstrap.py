"""One iteration's logic on a scripted backend: prompts, determinism, records, failures.

These check the library's own bookkeeping; the real engines run the same iteration in
test_real_backends.py.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
from pydantic import TypeAdapter, ValidationError

from generators.backends import make_backend
from generators.backends.scripted import ScriptedBackend
from generators.bootstrap import BootstrapConfig, Iteration, is_few_shot, run_iteration
from generators.errors import BackendError, ConfigError
from generators.prompts import sha256_text
from generators.types import Completion, Instance, IterationResult, PoolTask, Stage

ADAPTER = TypeAdapter(BootstrapConfig)


def scripted_reply(prompt: str) -> str | Completion:
    """Answer like a well-behaved model, by prompt kind."""
    if prompt.endswith("Is it classification?"):
        return " Yes" if "classify" in prompt.rsplit("Task:", 1)[1].lower() else " No"
    if "Class label" in prompt and prompt.endswith("\n"):
        return "Class label: A\nText: first\nClass label: B\nText: second\n"
    if prompt.endswith("\n"):  # the input-first instance prompt
        return "Example 1\nInput: in-1\nOutput: out-1\nExample 2\nInput: in-2\nOutput: out-2\n"
    return " Classify the mood of the tweet.\n10. Write a limerick about cats.\n11. Name a color."


def small_config(**changes: object) -> BootstrapConfig:
    return dataclasses.replace(BootstrapConfig(prompts_per_iteration=3), **changes)


def test_full_iteration_records_every_call(
    seed_pool: list[PoolTask], machine_pool: list[PoolTask]
) -> None:
    backend = ScriptedBackend(scripted_reply)
    result = run_iteration(
        seed_tasks=seed_pool,
        machine_tasks=machine_pool,
        backend=backend,
        config=small_config(),
        seed=1,
    )
    stages = [r.stage for r in result.records]
    assert stages == ["instructions"] * 3 + ["classification"] * 9 + ["instances"] * 9
    assert len(result.candidates) == 9 and len(result.kept) == 9
    assert result.parse_failures == []
    first = result.records[0]
    assert first.template_name == "instructions" and first.template_version == 1
    assert first.prompt_sha256 == sha256_text(first.prompt)
    assert len(first.few_shot_ids) == 8 and first.prompt.endswith("\n9.")
    assert first.sampling["temperature"] == 0.7 and first.sampling["presence_penalty"] == 2.0
    assert first.sampling["seed"] == 1 and first.sampling["stop"][0] == "\n\n"
    assert first.model.engine == "scripted" and first.chat_wrapped is False
    clf = [c for c in result.kept if c.is_classification]
    assert [c.instruction for c in clf] == ["Classify the mood of the tweet."] * 3
    assert clf[0].instances[0].output == "A"
    other = next(c for c in result.kept if not c.is_classification)
    assert other.instances[1].input == "in-2"
    by_id = {r.id: r for r in result.records}
    assert by_id[clf[0].instances_generation_id].template_name == "instances_output_first"
    assert by_id[other.instances_generation_id].template_name == "instances_input_first"
    assert "Example 6" in by_id[other.instances_generation_id].sampling["stop"]
    assert by_id[clf[0].classification_generation_id].sampling["temperature"] == 0.0
    assert result.timings["inference_s"] >= 0 and result.timings["non_inference_s"] >= 0


def test_same_pool_seed_and_config_render_the_same_prompts(
    seed_pool: list[PoolTask], machine_pool: list[PoolTask]
) -> None:
    def prompts(seed: int) -> list[str]:
        backend = ScriptedBackend(scripted_reply)
        result = run_iteration(
            seed_tasks=seed_pool,
            machine_tasks=machine_pool,
            backend=backend,
            config=small_config(),
            seed=seed,
        )
        return [r.prompt for r in result.records]

    assert prompts(5) == prompts(5)
    assert prompts(5)[:3] != prompts(6)[:3]


def test_stages_run_in_sequence_with_the_callers_filter_between(
    seed_pool: list[PoolTask],
) -> None:
    iteration = Iteration(backend=ScriptedBackend(scripted_reply), config=small_config(), seed=2)
    candidates = iteration.instructions(seed_pool, [])
    assert len(candidates) == 9 and {r.stage for r in iteration.records} == {"instructions"}
    kept = [c for c in candidates if c.instruction.startswith("Write")]
    iteration.classify(kept)
    iteration.instances(kept)
    with iteration.timed("filters_s"):
        pass
    result = iteration.result(candidates, kept)
    assert [c.instruction for c in result.kept] == ["Write a limerick about cats."] * 3
    assert sum(r.stage == "classification" for r in result.records) == 3
    assert sum(r.stage == "instances" for r in result.records) == 3
    assert all(c.is_classification is None for c in result.candidates if c not in result.kept)
    assert all(c.instances for c in kept)
    t = result.timings
    assert t["filters_s"] >= 0 and t["non_inference_s"] >= 0
    assert t["total_s"] >= t["inference_s"] + t["filters_s"]


def test_later_stages_make_no_call_when_nothing_is_kept(seed_pool: list[PoolTask]) -> None:
    backend = ScriptedBackend(scripted_reply)
    iteration = Iteration(backend=backend, config=small_config(), seed=2)
    candidates = iteration.instructions(seed_pool, [])
    iteration.classify([])
    iteration.instances([])
    assert len(backend.calls) == 1 and iteration.result(candidates, []).kept == []


def test_malformed_completions_become_recorded_failures(seed_pool: list[PoolTask]) -> None:
    replies: list[str | Completion] = [
        "",
        Completion(" Half a task.\n10. Another ta", "length", 5, 1024, 0.1),
        " \x00\x01 ###",
        Completion("", "error", 0, 0, 2.0, 1, ["attempt 1: HTTP 503", "attempt 2: HTTP 503"]),
    ]
    result = run_iteration(
        seed_tasks=seed_pool,
        machine_tasks=[],
        backend=ScriptedBackend(replies),
        config=small_config(prompts_per_iteration=4),
        seed=3,
    )
    assert result.candidates == [] and result.kept == []
    assert [f.reason for f in result.parse_failures] == [
        "empty",
        "truncated",
        "no_instructions",
        "backend_error",
    ]
    ids = [r.id for r in result.records]
    assert [f.generation_id for f in result.parse_failures] == ids
    assert result.records[3].retries == 1 and len(result.records[3].retry_log) == 2


def one_task_iteration(
    pool: list[PoolTask], *, is_classification: str, instances: str | Completion
) -> IterationResult:
    """One prompt, one instruction; the model answers the two later stages as scripted."""

    def reply(prompt: str) -> str | Completion:
        if prompt.endswith("Is it classification?"):
            return is_classification
        if prompt.endswith("\n"):
            return instances
        return " Sort the numbers in ascending order."

    config = small_config(prompts_per_iteration=1)
    return run_iteration(
        seed_tasks=pool, machine_tasks=[], backend=ScriptedBackend(reply), config=config, seed=4
    )


def test_unreadable_classification_is_recorded_and_falls_back_to_input_first(
    seed_pool: list[PoolTask],
) -> None:
    result = one_task_iteration(
        seed_pool, is_classification=" Perhaps", instances="Output: nothing useful"
    )
    [candidate] = result.kept
    assert candidate.is_classification is False
    assert candidate.instances == [Instance("", "nothing useful")]
    reasons = [(f.stage, f.reason) for f in result.parse_failures]
    assert reasons == [("classification", "not_yes_no")]


def test_task_whose_only_instance_was_cut_keeps_no_instance_and_the_reason(
    seed_pool: list[PoolTask],
) -> None:
    cut = Completion("Example 1\nInput: 3, 1, 2\nOutput: 1, 2,", "length", 9, 300, 0.1)
    result = one_task_iteration(seed_pool, is_classification=" No", instances=cut)
    [candidate] = result.kept
    assert candidate.instances == []
    [failure] = result.parse_failures
    assert (failure.stage, failure.reason) == ("instances", "truncated")
    assert failure.generation_id == candidate.instances_generation_id
    assert "1, 2," in failure.excerpt


def test_few_shot_stages_go_raw_to_chat_models_by_default(seed_pool: list[PoolTask]) -> None:
    """The paper's few-shot prompts are completions: unset chat_wrap sends them raw."""
    backend = ScriptedBackend(scripted_reply, is_chat=True)
    result = run_iteration(
        seed_tasks=seed_pool,
        machine_tasks=[],
        backend=backend,
        config=small_config(prompts_per_iteration=1),
        seed=5,
    )
    assert {r.stage for r in result.records} >= {"instructions", "classification", "instances"}
    assert not any(r.chat_wrapped for r in result.records)
    assert not any("<|im_start|>" in p for call in backend.calls for p in call[0])


def test_chat_wrap_true_wraps_every_stage_and_it_is_recorded(seed_pool: list[PoolTask]) -> None:
    backend = ScriptedBackend(scripted_reply, is_chat=True)
    result = run_iteration(
        seed_tasks=seed_pool,
        machine_tasks=[],
        backend=backend,
        config=small_config(prompts_per_iteration=1, chat_wrap=True),
        seed=5,
    )
    assert result.records and all(r.chat_wrapped for r in result.records)
    assert all(r.prompt.startswith("<|im_start|>user\n") for r in result.records)
    assert backend.calls[0][0][0].endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize(
    ("is_chat", "chat_wrap", "stage", "wrapped"),
    [
        (True, None, "instructions", False),
        (True, None, "classification", False),
        (True, None, "instances", False),
        (True, None, "evolution", True),
        (True, None, "answer", True),
        (True, None, "follow_up", True),
        (False, None, "evolution", False),
        (False, None, "answer", False),
        (False, True, "instances", True),
        (True, False, "answer", False),
    ],
)
def test_which_stages_are_wrapped(
    is_chat: bool, chat_wrap: bool | None, stage: str, wrapped: bool
) -> None:
    run = Iteration(
        backend=ScriptedBackend(scripted_reply, is_chat=is_chat),
        config=small_config(chat_wrap=chat_wrap),
        seed=1,
    )
    assert run.wraps(stage) is wrapped  # type: ignore[arg-type]


def test_every_stage_is_placed_few_shot_or_instruction_style() -> None:
    # A stage added to `Stage` must be placed before it type-checks; at run time an unknown
    # name is refused rather than wrapped by default.
    placed = {stage: is_few_shot(stage) for stage in typing.get_args(Stage)}
    assert placed == {
        "instructions": True,
        "classification": True,
        "instances": True,
        "evolution": False,
        "answer": False,
        "follow_up": False,
    }
    with pytest.raises(AssertionError):
        is_few_shot("judge")  # type: ignore[arg-type]


def test_forced_wrap_on_a_base_model_is_refused_before_anything_is_sent(
    seed_pool: list[PoolTask],
) -> None:
    backend = ScriptedBackend(scripted_reply, is_chat=False)
    with pytest.raises(BackendError, match="no chat template"):
        run_iteration(
            seed_tasks=seed_pool,
            machine_tasks=[],
            backend=backend,
            config=small_config(prompts_per_iteration=1, chat_wrap=True),
            seed=5,
        )
    assert backend.calls == []


def test_chat_wrap_can_be_turned_off(seed_pool: list[PoolTask]) -> None:
    result = run_iteration(
        seed_tasks=seed_pool,
        machine_tasks=[],
        backend=ScriptedBackend(scripted_reply, is_chat=True),
        config=small_config(prompts_per_iteration=1, chat_wrap=False),
        seed=5,
    )
    assert not any(r.chat_wrapped for r in result.records)


def test_classification_only_variant_skips_the_classification_call(
    seed_pool: list[PoolTask],
) -> None:
    result = run_iteration(
        seed_tasks=seed_pool,
        machine_tasks=[],
        backend=ScriptedBackend(scripted_reply),
        config=small_config(prompts_per_iteration=1, classification_only=True),
        seed=6,
    )
    assert result.records[0].template_name == "instructions_classification"
    assert all(c.is_classification for c in result.kept)
    assert "classification" not in {r.stage for r in result.records}
    clf_ids = {t.id for t in seed_pool if t.is_classification}
    assert set(result.records[0].few_shot_ids) <= clf_ids


def test_config_round_trips_and_validates() -> None:
    config = BootstrapConfig(prompts_per_iteration=7)
    data = ADAPTER.dump_python(config, mode="json")
    assert data["instruction_sampling"]["top_p"] == 0.5
    assert data["instruction_sampling"]["max_tokens"] == 1024
    assert ADAPTER.validate_python(data) == config
    with pytest.raises(ValidationError, match="nope"):
        ADAPTER.validate_python({"nope": 1})
    with pytest.raises(ValidationError, match="must equal num_prompt_instructions"):
        BootstrapConfig(num_seed_in_prompt=7)
    with pytest.raises(ValidationError, match="must equal num_prompt_instructions"):
        dataclasses.replace(config, num_machine_in_prompt=0)  # a copy is validated too


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompts_per_iteration", 0),
        ("max_instances_per_task", 0),
        ("num_machine_in_prompt", -1),
        ("instruction_sampling", {"temperature": -1, "top_p": 1, "max_tokens": 5}),
        ("instance_sampling", {"temperature": 0, "top_p": 0, "max_tokens": 5}),
        ("classification_sampling", {"temperature": 0, "top_p": 1, "max_tokens": 0}),
        ("chat_wrap", "sometimes"),
    ],
)
def test_every_bad_setting_is_refused_at_construction(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        ADAPTER.validate_python({field: value})


def test_make_backend_builds_scripted_and_refuses_unknown_kinds() -> None:
    backend = make_backend("scripted", model="fake", replies=["x"])
    assert backend.name == "scripted" and backend.model_info.name == "fake"
    with pytest.raises(ConfigError):
        make_backend("nonsense", model="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        make_backend("openai", model="x")
