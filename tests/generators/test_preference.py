"""Sampling k candidate responses per prompt (scripted backend: bookkeeping, not a model)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from generators.backends.scripted import ScriptedBackend
from generators.bootstrap import Iteration
from generators.config import BootstrapConfig
from generators.preference import PreferenceConfig, response_pairs, sample_responses


def test_k_responses_per_prompt_each_with_its_own_seed() -> None:
    backend = ScriptedBackend(lambda prompt: f"answer to {prompt}")
    it = Iteration(backend=backend, config=BootstrapConfig(), seed=40)
    out = sample_responses(it, ["A?", "B?"], PreferenceConfig(responses_per_prompt=3))
    assert [[r.completion for r in rs] for rs in out] == [
        ["answer to A?"] * 3,
        ["answer to B?"] * 3,
    ]
    assert [[r.sampling["seed"] for r in rs] for rs in out] == [[40, 41, 42]] * 2
    assert len(backend.calls) == 3  # one batch per sample index
    assert {r.stage for r in it.records} == {"answer"} and len(it.records) == 6
    assert sample_responses(it, [], PreferenceConfig()) == []


def test_pairs_and_bounds() -> None:
    assert response_pairs(3) == [(0, 1), (0, 2), (1, 2)]
    assert len(response_pairs(4)) == 6
    for bad in ({"responses_per_prompt": 1}, {"min_margin": 3.5}):
        with pytest.raises(ValidationError):
            PreferenceConfig(**bad)  # type: ignore[arg-type]
