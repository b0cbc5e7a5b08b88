"""Packed, padded and accumulated losses agree; packed examples cannot see each other (fp32).

The packing invariants run on both ways of isolating examples: `sdpa` with a block-diagonal mask
and `sdpa_varlen`, the CPU kernel over flattened rows that attends within each example.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import trainer.modeling as modeling
from tests.trainer.test_data import as_example
from trainer.config import TrainConfig
from trainer.errors import PackingError
from trainer.modeling import (
    autocast,
    model_inputs,
    register_attention_kernels,
    resolve_attention,
    supervised_loss_sum,
    verify_isolation,
)
from trainer.packing import collate
from trainer.tokenization import ChatTokenizer, TokenizedExample

PACKING_KERNELS = ["sdpa", "sdpa_varlen"]


def load(model_dir: Path, kernel: str = "sdpa") -> Any:
    from transformers import AutoModelForCausalLM

    register_attention_kernels()
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation=kernel
    )
    assert model.config._attn_implementation == kernel
    return model


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


@pytest.mark.parametrize("kernel", ["sdpa", "eager", "sdpa_varlen"])
def test_packed_equals_examples_run_separately(
    model_dir: Path, examples: list, kernel: str
) -> None:
    model = load(model_dir, kernel)
    packed, packed_grads = loss_and_grads(model, [collate(examples, [[0, 1, 2, 3]], pad_id=3)])
    alone = [collate(examples, [[i]], pad_id=3) for i in range(4)]
    separate, separate_grads = loss_and_grads(model, alone)
    assert packed == pytest.approx(separate, abs=1e-5)
    assert_grads_close(packed_grads, separate_grads)


@pytest.mark.parametrize("kernel", PACKING_KERNELS)
def test_reference_loss_from_plain_forward(model_dir: Path, examples: list, kernel: str) -> None:
    """Our masked, head-sliced loss equals transformers' own loss per example, token-weighted."""
    model = load(model_dir, kernel)
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


@pytest.mark.parametrize("kernel", PACKING_KERNELS)
def test_perturbing_one_packed_example_leaves_the_others_alone(
    model_dir: Path, examples: list, kernel: str
) -> None:
    model = load(model_dir, kernel)
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


@pytest.mark.parametrize("kernel", PACKING_KERNELS)
def test_prompt_token_labels_change_nothing(model_dir: Path, examples: list, kernel: str) -> None:
    model = load(model_dir, kernel)
    batch = collate(examples, [[0, 1, 2, 3]], pad_id=3)
    base, base_grads = loss_and_grads(model, [batch])
    scrambled = collate(examples, [[0, 1, 2, 3]], pad_id=3)
    unsupervised = ~scrambled.loss_mask
    scrambled.targets[unsupervised] = torch.randint(0, 300, (int(unsupervised.sum()),))
    value, grads = loss_and_grads(model, [scrambled])
    assert value == base
    assert_grads_close(grads, base_grads)


@pytest.mark.parametrize("kernel", PACKING_KERNELS)
def test_batch_8_by_1_equals_1_by_8(model_dir: Path, examples: list, kernel: str) -> None:
    model = load(model_dir, kernel)
    one, one_grads = loss_and_grads(model, [collate(examples, [[i] for i in range(8)], pad_id=3)])
    eight, eight_grads = loss_and_grads(
        model, [collate(examples, [[i]], pad_id=3) for i in range(8)]
    )
    assert one == pytest.approx(eight, abs=1e-5)
    assert_grads_close(one_grads, eight_grads)


@pytest.mark.parametrize("kernel", PACKING_KERNELS)
def test_left_and_right_padding_agree(model_dir: Path, examples: list, kernel: str) -> None:
    model = load(model_dir, kernel)
    rows = [[i] for i in range(8)]
    right, right_grads = loss_and_grads(model, [collate(examples, rows, pad_id=3)])
    left, left_grads = loss_and_grads(
        model, [collate(examples, rows, pad_id=3, padding_side="left")]
    )
    assert right == pytest.approx(left, abs=1e-5)
    assert_grads_close(right_grads, left_grads)


def test_isolation_probe_and_refusal(model_dir: Path) -> None:
    for kernel in PACKING_KERNELS:
        assert verify_isolation(load(model_dir, kernel)) < 1e-4
    fake = SimpleNamespace(config=SimpleNamespace(_attn_implementation="flex_attention"))
    with pytest.raises(PackingError, match="cannot isolate"):
        model_inputs(
            fake, collate([TokenizedExample("a", "g", (5, 6), (False, True))], [[0]], pad_id=3)
        )


def test_isolation_probe_catches_a_kernel_that_leaks(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe runs the real kernel: one that ignores example bounds is refused."""
    model = load(model_dir, "sdpa_varlen")
    monkeypatch.setattr(modeling, "_segment_spans", lambda _cu, _pos, rows, n: [[(0, n)]] * rows)
    with pytest.raises(PackingError, match="differs"):
        verify_isolation(model)


def real_hidden(model: Any, batch: Any) -> torch.Tensor:
    """Decoder outputs at the real tokens, in row order, whatever layout the kernel uses."""
    kwargs, _ = model_inputs(model, batch)
    hidden = model.get_decoder()(**kwargs, use_cache=False).last_hidden_state
    real = batch.segment_ids > 0
    return hidden[real] if hidden.shape[:2] == real.shape else hidden[0]


def test_varlen_kernel_matches_block_mask(model_dir: Path, examples: list) -> None:
    """Several rows with pads: same hidden states, loss and gradients as SDPA's block mask (GQA)."""
    masked, varlen = load(model_dir, "sdpa"), load(model_dir, "sdpa_varlen")
    assert varlen.config.num_key_value_heads < varlen.config.num_attention_heads
    batch = collate(examples, [[0, 1, 2], [3, 4], [5, 6, 7]], pad_id=3)
    assert batch.n_real_tokens < batch.n_slots
    with torch.no_grad():
        torch.testing.assert_close(
            real_hidden(varlen, batch), real_hidden(masked, batch), rtol=0, atol=1e-5
        )
    value, grads = loss_and_grads(varlen, [batch])
    reference, reference_grads = loss_and_grads(masked, [batch])
    assert value == pytest.approx(reference, abs=1e-6)
    assert_grads_close(grads, reference_grads)


def test_varlen_kernel_finds_examples_from_position_ids(model_dir: Path, examples: list) -> None:
    """Rows not flattened and no cu_seq_lens: position-id restarts alone isolate the examples."""
    masked, varlen = load(model_dir, "sdpa"), load(model_dir, "sdpa_varlen")
    batch = collate(examples, [[0, 1], [2, 3, 4]], pad_id=3)
    with torch.no_grad():
        hidden = varlen.get_decoder()(
            input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False
        ).last_hidden_state
        reference = real_hidden(masked, batch)
    torch.testing.assert_close(hidden[batch.segment_ids > 0], reference, rtol=0, atol=1e-5)


def test_varlen_kernel_with_a_padding_mask_is_plain_sdpa(model_dir: Path, examples: list) -> None:
    """A 2D padding mask (e.g. from generate) gets SDPA's causal + padding mask, as with sdpa."""
    masked, varlen = load(model_dir, "sdpa"), load(model_dir, "sdpa_varlen")
    batch = collate(examples, [[0], [1], [2]], pad_id=3, padding_side="left")
    inputs = {"input_ids": batch.input_ids, "attention_mask": (batch.segment_ids > 0).long()}
    with torch.no_grad():
        a = varlen(**inputs).logits
        b = masked(**inputs).logits
    real = batch.segment_ids > 0
    torch.testing.assert_close(a[real], b[real], rtol=0, atol=1e-5)


def test_varlen_kernel_under_bf16_autocast(model_dir: Path, examples: list) -> None:
    """bf16 autocast: the loss stays close to the block-mask kernel's and to fp32; grads finite."""
    batch = collate(examples, [[0, 1, 2, 3], [4, 5, 6, 7]], pad_id=3)
    losses = {}
    for kernel in PACKING_KERNELS:
        model = load(model_dir, kernel)
        with torch.no_grad():
            full = float(supervised_loss_sum(model, batch))
        with autocast("bf16"):
            loss = supervised_loss_sum(model, batch)
        assert loss.dtype == torch.float32
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        losses[kernel] = float(loss.detach())
        assert losses[kernel] == pytest.approx(full, rel=2e-2)
    assert losses["sdpa_varlen"] == pytest.approx(losses["sdpa"], rel=2e-2)


def test_auto_attention_picks_the_kernel_by_mode() -> None:
    assert resolve_attention(TrainConfig(model="m")) == "sdpa_varlen"
    assert resolve_attention(TrainConfig(model="m", packing=False)) == "sdpa"
    assert resolve_attention(TrainConfig(model="m", attn_implementation="eager")) == "eager"


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"softcap": 30.0}, "softcap"), ({"sliding_window": 4}, "sliding window")],
)
def test_varlen_kernel_refuses_what_it_does_not_compute(extra: dict, message: str) -> None:
    q, kv = torch.zeros(1, 4, 6, 8), torch.zeros(1, 2, 6, 8)
    module = SimpleNamespace(is_causal=True)
    with pytest.raises(PackingError, match=message):
        modeling.sdpa_varlen_attention(module, q, kv, kv, None, **extra)
    out, _ = modeling.sdpa_varlen_attention(module, q, kv, kv, None, sliding_window=6)
    assert out.shape == (1, 6, 4, 8)


@pytest.mark.parametrize("kernel", PACKING_KERNELS)
def test_chunked_logits_give_the_loss_and_gradients_of_one_projection(
    model_dir: Path, examples: list, kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logits made a few positions at a time (and recomputed in backward) change nothing."""
    model = load(model_dir, kernel)
    batches = [collate(examples, [[0, 1, 2, 3]], pad_id=3)]
    assert batches[0].n_supervised > 3  # so a chunk of 3 really splits the positions
    whole, whole_grads = loss_and_grads(model, batches)
    monkeypatch.setattr(modeling, "LOGIT_CHUNK", 3)
    chunked, chunked_grads = loss_and_grads(model, batches)
    assert chunked == pytest.approx(whole, abs=1e-6)
    assert_grads_close(chunked_grads, whole_grads)


@pytest.mark.parametrize("kernel", PACKING_KERNELS)
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(
    model_dir: Path, examples: list, kernel: str
) -> None:
    batches = [collate(examples, [[0, 1], [2, 3]], pad_id=3)]
    results = []
    for enabled in (False, True):
        config = TrainConfig(
            model=str(model_dir), attn_implementation=kernel, gradient_checkpointing=enabled
        )
        model, _ = modeling.load_model_and_tokenizer(model_dir, config)
        assert model.is_gradient_checkpointing is enabled
        model.train()
        results.append(loss_and_grads(model, batches))
    (plain, plain_grads), (recomputed, recomputed_grads) = results
    assert recomputed == pytest.approx(plain, abs=1e-6)
    assert_grads_close(recomputed_grads, plain_grads)
