"""Packed, padded and accumulated losses agree; packed examples cannot see each other (fp32)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from tests.trainer.test_data import as_example
from trainer.errors import PackingError
from trainer.modeling import model_inputs, supervised_loss_sum, verify_isolation
from trainer.packing import collate
from trainer.tokenization import ChatTokenizer, TokenizedExample


def load(model_dir: Path, kernel: str = "sdpa") -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation=kernel
    )


@pytest.fixture
def examples(tokenizer: Any, rows: list[dict[str, Any]]) -> list[TokenizedExample]:
    chat = ChatTokenizer(tokenizer)
    return [chat.tokenize(as_example(r)) for r in rows[:8]]


def loss_and_grads(model: Any, batches: list[Any]) -> tuple[float, list[torch.Tensor]]:
    """The trainer's step arithmetic: each micro-batch's summed loss over the step's count."""
    model.zero_grad(set_to_none=True)
    total = sum(b.n_supervised for b in batches)
    value = 0.0
    for batch in batches:
        loss = supervised_loss_sum(model, batch) / total
        loss.backward()
        value += float(loss.detach())
    return value, [p.grad.clone() for p in model.parameters()]


def assert_grads_close(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
def test_packed_equals_examples_run_separately(
    model_dir: Path, examples: list, kernel: str
) -> None:
    model = load(model_dir, kernel)
    packed, packed_grads = loss_and_grads(model, [collate(examples, [[0, 1, 2, 3]], pad_id=3)])
    alone = [collate(examples, [[i]], pad_id=3) for i in range(4)]
    separate, separate_grads = loss_and_grads(model, alone)
    assert packed == pytest.approx(separate, abs=1e-5)
    assert_grads_close(packed_grads, separate_grads)


def test_reference_loss_from_plain_forward(model_dir: Path, examples: list) -> None:
    """Our masked, head-sliced loss equals transformers' own loss per example, token-weighted."""
    model = load(model_dir)
    total, count = 0.0, 0
    for example in examples[:4]:
        ids = torch.tensor([example.input_ids])
        with torch.no_grad():
            out = model(ids, labels=torch.tensor([example.labels]))
        total += float(out.loss) * example.n_supervised
        count += example.n_supervised
    with torch.no_grad():
        ours = supervised_loss_sum(model, collate(examples, [[0, 1], [2, 3]], pad_id=3))
    assert float(ours) / count == pytest.approx(total / count, abs=1e-5)


def test_perturbing_one_packed_example_leaves_the_others_alone(
    model_dir: Path, examples: list
) -> None:
    model = load(model_dir)
    batch = collate(examples, [[0, 1, 2]], pad_id=3)
    changed = list(examples)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randint(10, 300, (len(examples[1].input_ids),), generator=generator)
    changed[1] = TokenizedExample("x", "g", tuple(noise.tolist()), examples[1].assistant_mask)
    other = collate(changed, [[0, 1, 2]], pad_id=3)
    with torch.no_grad():
        a = model(**model_inputs(model, batch)[0]).logits
        b = model(**model_inputs(model, other)[0]).logits
    keep = batch.segment_ids != 2
    assert not torch.allclose(a[~keep], b[~keep])
    torch.testing.assert_close(a[keep], b[keep], rtol=0, atol=1e-5)


def test_prompt_token_labels_change_nothing(model_dir: Path, examples: list) -> None:
    model = load(model_dir)
    batch = collate(examples, [[0, 1, 2, 3]], pad_id=3)
    base, base_grads = loss_and_grads(model, [batch])
    scrambled = collate(examples, [[0, 1, 2, 3]], pad_id=3)
    unsupervised = ~scrambled.loss_mask
    scrambled.targets[unsupervised] = torch.randint(0, 300, (int(unsupervised.sum()),))
    value, grads = loss_and_grads(model, [scrambled])
    assert value == base
    assert_grads_close(grads, base_grads)


def test_batch_8_by_1_equals_1_by_8(model_dir: Path, examples: list) -> None:
    model = load(model_dir)
    one, one_grads = loss_and_grads(model, [collate(examples, [[i] for i in range(8)], pad_id=3)])
    eight, eight_grads = loss_and_grads(
        model, [collate(examples, [[i]], pad_id=3) for i in range(8)]
    )
    assert one == pytest.approx(eight, abs=1e-5)
    assert_grads_close(one_grads, eight_grads)


def test_left_and_right_padding_agree(model_dir: Path, examples: list) -> None:
    model = load(model_dir)
    rows = [[i] for i in range(8)]
    right, right_grads = loss_and_grads(model, [collate(examples, rows, pad_id=3)])
    left, left_grads = loss_and_grads(
        model, [collate(examples, rows, pad_id=3, padding_side="left")]
    )
    assert right == pytest.approx(left, abs=1e-5)
    assert_grads_close(right_grads, left_grads)


def test_isolation_probe_and_refusal(model_dir: Path) -> None:
    assert verify_isolation(load(model_dir)) < 1e-4
    fake = SimpleNamespace(config=SimpleNamespace(_attn_implementation="flex_attention"))
    with pytest.raises(PackingError, match="cannot isolate"):
        model_inputs(
            fake, collate([TokenizedExample("a", "g", (5, 6), (False, True))], [[0]], pad_id=3)
        )
