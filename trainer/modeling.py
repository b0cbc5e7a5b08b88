"""Load the model, feed it isolated packed rows, and compute the summed loss on supervised tokens.

Isolation between packed examples comes from the inputs, not from hope. Three ways, by kernel:

* `sdpa_varlen` (the default when packing): the rows are flattened into one row of real tokens,
  position ids restart at 0 for each example, and cumulative sequence lengths (`cu_seq_lens_q/k`,
  as flash attention's varlen API takes them) go through the model's forward to a CPU kernel
  registered here with transformers' `AttentionInterface`. It runs exact causal attention on each
  example on its own and concatenates the results: no dense mask, attention cost sum(len_i^2)
  instead of rows * width^2, and no pad token through the MLPs. The per-example attention is
  batched matmuls and an fp32 softmax; with head groups folded into the query rows (GQA, no
  repeated keys) that beats torch's CPU flash kernel here, whose backward is slow at these sizes.
* `sdpa` and `eager`: a block-diagonal causal mask is built from the segment ids.
* `flash_attention_2/3`: the rows are flattened and position ids restarting at 0 drive the varlen
  kernel (where flash attention is installed).

Any other attention kernel is refused for packing, and a probe checks on the loaded model that a
packed example sees exactly what it would see alone. Padding (packing off) uses `sdpa` with the
causal + padding mask unless a kernel is named.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from trainer.config import TrainConfig
from trainer.errors import ConfigError, PackingError
from trainer.packing import Batch

SDPA_VARLEN = "sdpa_varlen"
MASKED_KERNELS = ("sdpa", "eager")
VARLEN_KERNELS = ("flash_attention_2", "flash_attention_3", SDPA_VARLEN)
AUTO = "auto"


def resolve_model_dir(model: str, cache_dir: str) -> Path:
    """Turn --model into a local directory: a path as is, a prepared name through its preparer.

    Raises:
        ConfigError: Neither a directory nor a known prepared name.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    # Imported lazily: only a prepared name needs the generators package (and its GGUF wheel).
    from generators.embedded_model import EMBEDDED_MODEL_NAME, prepare_embedded_model

    if model != EMBEDDED_MODEL_NAME:
        raise ConfigError(f"--model {model!r} is neither a directory nor {EMBEDDED_MODEL_NAME!r}")
    return Path(prepare_embedded_model(Path(cache_dir)))


def load_model_and_tokenizer(model_dir: Path, config: TrainConfig) -> tuple[Any, Any]:
    """Load an fp32 causal LM (optionally with LoRA adapters) and its tokenizer, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    register_attention_kernels()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    # fp32 master weights: bf16 is applied by autocast, so AdamW updates never lose precision.
    model: Any = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=torch.float32,
        attn_implementation=resolve_attention(config),
        local_files_only=True,
    )
    if config.gradient_checkpointing:
        # Active in training mode only: evaluation and the DPO reference pass keep no graph.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.lora:
        model = add_lora(model, config)
    model.to(resolve_device(config.device))  # in place, for a model and a peft wrapper alike
    return model, tokenizer


def add_lora(model: Any, config: TrainConfig) -> Any:
    """Wrap a model with peft LoRA adapters; only the adapters train."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def resolve_attention(config: TrainConfig) -> str:
    """The kernel to load: `auto` is sdpa_varlen when packing, sdpa (padding mask) when not."""
    if config.attn_implementation != AUTO:
        return config.attn_implementation
    return SDPA_VARLEN if config.packing else "sdpa"


def register_attention_kernels() -> None:
    """Make `attn_implementation="sdpa_varlen"` loadable (idempotent)."""
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register(SDPA_VARLEN, sdpa_varlen_attention)
    AttentionMaskInterface.register(SDPA_VARLEN, _sdpa_varlen_mask)


def _sdpa_varlen_mask(**kwargs: Any) -> torch.Tensor | None:
    """No mask for packed input (the kernel finds the examples); SDPA's mask for a padding mask."""
    if kwargs.get("attention_mask") is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(**kwargs)


def _segment_spans(
    cu_seq_lens: torch.Tensor | None, position_ids: torch.Tensor | None, rows: int, length: int
) -> list[list[tuple[int, int]]]:
    """(start, end) of each example, per row: from cu_seq_lens (one row) or position-id restarts."""
    if cu_seq_lens is not None and rows == 1:
        bounds = [int(x) for x in cu_seq_lens.tolist()]
        return [list(itertools.pairwise(bounds))]
    if position_ids is None:
        return [[(0, length)]] * rows
    position_ids = position_ids.expand(rows, length)
    # A new example starts wherever the position does not follow the previous one.
    starts = torch.ones_like(position_ids, dtype=torch.bool)
    starts[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    spans = []
    for row in starts:
        bounds = [*row.nonzero().flatten().tolist(), length]
        spans.append(list(itertools.pairwise(bounds)))
    return spans


def _row_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    spans: list[tuple[int, int]],
    scale: float,
    dropout: float,
) -> torch.Tensor:
    """Exact causal attention of each example of one row on its own.

    Args:
        query: (heads, length, head_dim).
        key: (kv_heads, length, head_dim).
        value: (kv_heads, length, head_dim).
        spans: (start, end) of each example; together they cover the row.
        scale: Score scale.
        dropout: Attention dropout probability.

    Returns:
        (length, heads, head_dim).
    """
    heads, length, dim = query.shape
    kv_heads = key.shape[0]
    groups = heads // kv_heads
    kind = query.device.type
    dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else query.dtype
    # The query heads that share a key/value head become rows of one matmul (position-major), so
    # GQA needs no repeated keys; casts and scaling happen once per row, not per example.
    q = (query * scale).to(dtype).view(kv_heads, groups, length, dim).transpose(1, 2)
    k, v = key.to(dtype), value.to(dtype)
    longest = max(end - start for start, end in spans)
    future = torch.ones(longest, longest, dtype=torch.bool, device=query.device).triu(1)
    parts = []
    for start, end in spans:
        n = end - start
        rows = q[:, start:end].reshape(kv_heads, n * groups, dim)
        scores = torch.bmm(rows, k[:, start:end].transpose(1, 2)).view(kv_heads, n, groups, n)
        scores = scores.masked_fill(future[:n, None, :n], float("-inf"))
        probs = scores.softmax(-1, dtype=torch.float32).to(dtype)
        if dropout > 0.0:
            probs = F.dropout(probs, p=dropout)
        parts.append(torch.bmm(probs.view(kv_heads, n * groups, n), v[:, start:end]))
    out = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
    return out.view(kv_heads, length, groups, dim).permute(1, 0, 2, 3).reshape(length, heads, dim)


def _check_supported(kwargs: dict[str, Any], longest: int) -> None:
    """Refuse what this kernel does not compute, rather than silently attending differently.

    Raises:
        PackingError: Logit soft-capping, attention sinks, or an example longer than the model's
            sliding window.
    """
    for name in ("softcap", "s_aux"):
        if kwargs.get(name) is not None:
            raise PackingError(f"{SDPA_VARLEN} does not implement {name}; use sdpa or eager")
    window = kwargs.get("sliding_window")
    if window is not None and longest > window:
        raise PackingError(
            f"{SDPA_VARLEN}: an example of {longest} tokens exceeds the sliding window of {window}"
        )


def sdpa_varlen_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention over packed examples without a mask: each example attends causally to itself.

    The examples come from `cu_seq_lens_q` (one flattened row) or from where `position_ids`
    restart; with an explicit mask, a KV cache or a non-causal module it is plain SDPA.

    Args:
        module: The attention module (its `is_causal` is honoured).
        query: (batch, heads, length, head_dim).
        key: (batch, kv_heads, length, head_dim).
        value: (batch, kv_heads, length, head_dim).
        attention_mask: A mask from the model (then plain SDPA), or None.
        dropout: Attention dropout probability.
        scaling: Score scale; default head_dim ** -0.5.
        **kwargs: `cu_seq_lens_q`, `position_ids` and whatever else the model passes.

    Returns:
        (batch, length, heads, head_dim) and no attention weights.
    """
    rows, _, length, dim = query.shape
    causal = kwargs.pop("is_causal", None)
    causal = getattr(module, "is_causal", True) if causal is None else causal
    if attention_mask is not None or key.shape[2] != length or not causal:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=causal,
            **kwargs,
        )
    scale = dim**-0.5 if scaling is None else scaling
    spans = _segment_spans(kwargs.get("cu_seq_lens_q"), kwargs.get("position_ids"), rows, length)
    _check_supported(kwargs, max(end - start for row in spans for start, end in row))
    out = [
        _row_attention(query[row], key[row], value[row], row_spans, scale, dropout)
        for row, row_spans in enumerate(spans)
    ]
    return (torch.stack(out) if rows > 1 else out[0].unsqueeze(0)), None


def varlen_kwargs(position_ids: torch.Tensor) -> dict[str, Any]:
    """Flash-attention style sequence bounds of one flattened row whose positions restart at 0."""
    positions = position_ids.flatten()
    starts = (positions == 0).nonzero().flatten()
    end = torch.tensor([positions.numel()], device=positions.device)
    cu = torch.cat([starts, end]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    return {
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu,
        "max_length_q": longest,
        "max_length_k": longest,
    }


def attention_kernel(model: Any) -> str:
    """The attention implementation the loaded model actually uses."""
    return str(getattr(model.config, "_attn_implementation", None) or "eager")


def model_inputs(model: Any, batch: Batch) -> tuple[dict[str, Any], torch.Tensor]:
    """Build the forward kwargs that keep each example in its own attention block.

    Returns:
        The kwargs for the decoder and the loss mask laid out like its output.

    Raises:
        PackingError: The kernel cannot isolate examples.
    """
    kernel = attention_kernel(model)
    if kernel not in VARLEN_KERNELS and kernel not in MASKED_KERNELS:
        raise PackingError(f"attention kernel {kernel!r} cannot isolate packed examples")
    batch = batch.to(model_device(model))
    if kernel in VARLEN_KERNELS:
        # Varlen: one long row of real tokens; restarts of position_ids mark the boundaries
        # (sdpa_varlen also gets them as cu_seq_lens, computed once here rather than per layer).
        real = batch.segment_ids > 0
        kwargs = {
            "input_ids": batch.input_ids[real].unsqueeze(0),
            "position_ids": batch.position_ids[real].unsqueeze(0),
        }
        if kernel == SDPA_VARLEN:
            kwargs |= varlen_kwargs(kwargs["position_ids"])
        return kwargs, batch.loss_mask[real].unsqueeze(0)
    seg = batch.segment_ids
    width = seg.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=seg.device).tril()
    allowed = (seg[:, :, None] == seg[:, None, :]) & causal & (seg[:, None, :] > 0)
    # A pad query attends to itself only, so no softmax row is empty (which would give NaN).
    allowed |= torch.eye(width, dtype=torch.bool, device=seg.device) & (seg == 0)[:, :, None]
    mask = allowed.unsqueeze(1)
    if kernel == "eager":
        # Eager attention adds the mask to the scores: 0 where allowed, a huge negative elsewhere.
        mask = torch.zeros(mask.shape, device=seg.device).masked_fill(
            ~mask, torch.finfo(torch.float32).min
        )
    kwargs = {
        "input_ids": batch.input_ids,
        "position_ids": batch.position_ids,
        "attention_mask": mask,
    }
    return kwargs, batch.loss_mask


def _decoder_and_head(model: Any) -> tuple[Any, Any] | None:
    """The transformer body and the LM head, when logits need nothing between them."""
    config = model.config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None
    if not hasattr(model, "get_decoder") or model.get_output_embeddings() is None:
        return None
    return model.get_decoder(), model.get_output_embeddings()


# Supervised positions per vocabulary projection: the logits of a chunk (positions x 49,152 for
# SmolLM2, fp32 for the loss) are the largest tensors of a step, so they exist one chunk at a time.
LOGIT_CHUNK = 512


def _chunk_cross_entropy(head: Any, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, reduction="none")


def chunked_cross_entropy(
    head: Any, hidden: torch.Tensor, targets: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """Per-position cross-entropy of ``head(hidden)``, ``chunk`` positions at a time.

    With gradients on, each chunk is checkpointed (non-reentrant): the backward pass recomputes
    its logits instead of keeping them and their log-softmax, so a step holds one chunk of logits
    at a time, not one per supervised position. The values are those of one full projection.

    Args:
        head: The LM head (hidden -> vocabulary logits).
        hidden: (n, hidden_size) final hidden states at the supervised positions.
        targets: (n,) token ids.
        chunk: Positions per projection; default LOGIT_CHUNK.

    Returns:
        (n,) fp32 token losses (negative log-likelihoods).
    """
    chunk = chunk or LOGIT_CHUNK
    parts = []
    for start in range(0, hidden.shape[0], chunk):
        h, t = hidden[start : start + chunk], targets[start : start + chunk]
        if torch.is_grad_enabled():
            part = checkpoint(_chunk_cross_entropy, head, h, t, use_reentrant=False)
        else:
            part = _chunk_cross_entropy(head, h, t)
        parts.append(part)
    if not parts:
        return torch.zeros(0, device=hidden.device)
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def _supervised_token_losses(model: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy at each supervised position and the decoder-layout loss mask.

    Logits are computed only where there is a target: with an assistant-only loss most positions
    have none, and the vocabulary projection is the costliest matmul of a small model.
    """
    batch = batch.to(model_device(model))
    kwargs, loss_mask = model_inputs(model, batch)
    targets = (
        batch.targets
        if loss_mask.shape == batch.targets.shape
        else (batch.targets[batch.segment_ids > 0].unsqueeze(0))
    )
    parts = _decoder_and_head(model)
    if parts is None:
        logits = model(**kwargs, use_cache=False).logits[loss_mask]
        return F.cross_entropy(logits.float(), targets[loss_mask], reduction="none"), loss_mask
    decoder, head = parts
    hidden = decoder(**kwargs, use_cache=False).last_hidden_state
    return chunked_cross_entropy(head, hidden[loss_mask], targets[loss_mask]), loss_mask


def supervised_loss_sum(model: Any, batch: Batch) -> torch.Tensor:
    """Sum of token cross-entropies over the batch's supervised positions.

    Args:
        model: The causal LM.
        batch: The micro-batch.

    Returns:
        A scalar fp32 tensor (divide by the step's supervised-token count for the mean).
    """
    return _supervised_token_losses(model, batch)[0].sum()


def sequence_logps(model: Any, batch: Batch, rows: Sequence[Sequence[int]], n: int) -> torch.Tensor:
    """Per example, the summed log-probability of its supervised (assistant) tokens.

    Packed and padded rows alike: each supervised position is credited to the example whose
    segment holds it.

    Args:
        model: The causal LM.
        batch: ``collate(examples, rows, ...)``.
        rows: The example indices of each row, as given to ``collate``.
        n: How many examples the indices refer to (the length of the result).

    Returns:
        A (n,) fp32 tensor; 0 for an example in no row.
    """
    token_losses, loss_mask = _supervised_token_losses(model, batch)
    segments = batch.segment_ids
    owner = torch.full(segments.shape, -1, dtype=torch.long)
    for r, row in enumerate(rows):
        for segment, index in enumerate(row, start=1):
            owner[r][segments[r] == segment] = index
    if loss_mask.shape != segments.shape:  # flattened to the real tokens (varlen kernels)
        owner = owner[segments > 0].unsqueeze(0)
    credited = owner.to(token_losses.device)[loss_mask]
    return torch.zeros(n, device=token_losses.device).index_add(0, credited, -token_losses)


def resolve_device(device: str) -> torch.device:
    """Map 'auto' to cuda when a CUDA device is visible, else cpu; other names as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_device(model: Any) -> torch.device:
    """The device of the model's parameters."""
    device: torch.device = next(model.parameters()).device
    return device


def bf16_supported(device: torch.device | None = None) -> bool:
    """Whether `device` computes bf16 natively: oneDNN bf16 matmul on a CPU (the default),
    ``torch.cuda.is_bf16_supported()`` on a CUDA device (Ampere and later)."""
    if device is not None and device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    mkldnn = torch.backends.mkldnn
    return bool(mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device | None = None) -> str:
    """Map 'auto' to 'bf16' or 'fp32' for this machine (and `device`, CPU by default)."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    return precision


@contextlib.contextmanager
def autocast(precision: str, device_type: str = "cpu") -> Iterator[None]:
    """bf16 autocast on `device_type` ('cpu' or 'cuda') for 'bf16', nothing for 'fp32'."""
    if precision == "bf16":
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield
    else:
        yield


def verify_isolation(model: Any, *, seed: int = 0) -> float:
    """Check that a packed example's hidden states equal those of the example run alone.

    Args:
        model: The loaded model.
        seed: Seed for the probe's random token ids.

    Returns:
        The largest absolute difference seen.

    Raises:
        PackingError: The difference is not numerical noise: packing would leak across examples.
    """
    from trainer.tokenization import TokenizedExample

    generator = torch.Generator().manual_seed(seed)
    vocab = int(model.config.vocab_size)
    a, b = (torch.randint(0, vocab, (n,), generator=generator).tolist() for n in (5, 7))
    examples = [
        TokenizedExample(str(i), "probe", tuple(x), (True,) * len(x)) for i, x in enumerate((a, b))
    ]
    from trainer.packing import collate

    packed = collate(examples, [[0, 1]], pad_id=0)
    alone = collate(examples, [[1]], pad_id=0)
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    if decoder is None:
        raise PackingError("cannot probe isolation: the model exposes no decoder")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        h_packed = decoder(**model_inputs(model, packed)[0], use_cache=False).last_hidden_state
        h_alone = decoder(**model_inputs(model, alone)[0], use_cache=False).last_hidden_state
    model.train(was_training)
    diff = float((h_packed.reshape(-1, h_packed.shape[-1])[5:] - h_alone[0]).abs().max())
    if not diff <= 1e-3 * max(1.0, float(h_alone.abs().max())):
        raise PackingError(f"packed example differs from the same example alone by {diff:.3g}")
    return diff
