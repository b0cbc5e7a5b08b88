"""The transformers backend's presence/frequency penalties follow the OpenAI/vLLM rule."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the transformers backend needs torch")


def test_penalties_count_completion_tokens_only() -> None:
    from generators.backends.transformers import _penalty_processor

    processor = _penalty_processor(prompt_len=2, presence=2.0, frequency=0.5)
    input_ids = torch.tensor([[5, 6, 7, 7, 8], [5, 5, 9, 1, 1]])
    scores = processor(input_ids, torch.zeros(2, 10))
    assert scores[0, 7].item() == pytest.approx(-3.0)  # present, twice: 2 + 2 * 0.5
    assert scores[0, 8].item() == pytest.approx(-2.5)
    assert scores[0, 5].item() == 0.0  # prompt tokens are not penalised
    assert scores[1, 1].item() == pytest.approx(-3.0)
    assert scores[1, 9].item() == pytest.approx(-2.5)
    assert scores[1, 5].item() == 0.0
