"""Load the model, feed it isolated packed rows, and compute the summed loss on supervised tokens.

Isolation between packed examples comes from the inputs, not from hope: with SDPA or eager
attention a block-diagonal causal mask is built from the segment ids; with flash attention the
rows are flattened and position ids restarting at 0 drive the varlen kernel. Any other attention
kernel is refused for packing, and a probe checks on the loaded model that a packed example sees
exactly what it would see alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from trainer.config import TrainConfig
from trainer.errors import ConfigError, PackingError
from trainer.packing import Batch

MASKED_KERNELS = ("sdpa", "eager")
VARLEN_KERNELS = ("flash_attention_2", "flash_attention_3")


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

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    # fp32 master weights: bf16 is applied by autocast, so AdamW updates never lose precision.
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=torch.float32,
        attn_implementation=config.attn_implementation,
        local_files_only=True,
    )
    if config.lora:
        model = add_lora(model, config)
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


def attention_kernel(model: Any) -> str:
    """The attention implementation the loaded model actually uses."""
    return str(getattr(model.config, "_attn_implementation", None) or "eager")


def model_inputs(model: Any, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Build the forward kwargs that keep each example in its own attention block.

    Returns:
        The kwargs for the decoder and the loss mask laid out like its output.

    Raises:
        PackingError: The kernel cannot isolate examples.
    """
    kernel = attention_kernel(model)
    if kernel in VARLEN_KERNELS:
        # Varlen: one long row of real tokens; restarts of position_ids mark the boundaries.
        real = batch.segment_ids > 0
        kwargs = {
            "input_ids": batch.input_ids[real].unsqueeze(0),
            "position_ids": batch.position_ids[real].unsqueeze(0),
        }
        return kwargs, batch.loss_mask[real].unsqueeze(0)
    if kernel not in MASKED_KERNELS:
        raise PackingError(f"attention kernel {kernel!r} cannot isolate packed examples")
    seg = batch.segment_ids
    width = seg.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    allowed = (seg[:, :, None] == seg[:, None, :]) & causal & (seg[:, None, :] > 0)
    # A pad query attends to itself only, so no softmax row is empty (which would give NaN).
    allowed |= torch.eye(width, dtype=torch.bool) & (seg == 0)[:, :, None]
    mask = allowed.unsqueeze(1)
    if kernel == "eager":
        # Eager attention adds the mask to the scores: 0 where allowed, a huge negative elsewhere.
        mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    kwargs = {"input_ids": batch.input_ids, "position_ids": batch.position_ids,
              "attention_mask": mask}
    return kwargs, batch.loss_mask


def _decoder_and_head(model: Any) -> tuple[Any, Any] | None:
    """The transformer body and the LM head, when logits need nothing between them."""
    config = model.config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None
    if not hasattr(model, "get_decoder") or model.get_output_embeddings() is None:
        return None
    return model.get_decoder(), model.get_output_embeddings()


def supervised_loss_sum(model: Any, batch: Batch) -> torch.Tensor:
    """Sum of token cross-entropies over the batch's supervised positions.

    Logits are computed only where there is a target: with an assistant-only loss most positions
    have none, and the vocabulary projection is the costliest matmul of a small model.

    Args:
        model: The causal LM.
        batch: The micro-batch.

    Returns:
        A scalar fp32 tensor (divide by the step's supervised-token count for the mean).
    """
    kwargs, loss_mask = model_inputs(model, batch)
    targets = batch.targets if loss_mask.shape == batch.targets.shape else (
        batch.targets[batch.segment_ids > 0].unsqueeze(0)
    )
    parts = _decoder_and_head(model)
    if parts is None:
        logits = model(**kwargs, use_cache=False).logits[loss_mask]
    else:
        decoder, head = parts
        hidden = decoder(**kwargs, use_cache=False).last_hidden_state
        logits = head(hidden[loss_mask])
    return F.cross_entropy(logits.float(), targets[loss_mask], reduction="sum")


def bf16_supported() -> bool:
    """Whether this CPU has native bf16 matmul (oneDNN), where autocast pays off."""
    mkldnn = torch.backends.mkldnn
    return bool(mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str) -> str:
    """Map 'auto' to 'bf16' or 'fp32' for this machine."""
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    return precision


@contextlib.contextmanager
def autocast(precision: str) -> Iterator[None]:
    """bf16 autocast on CPU for 'bf16', nothing for 'fp32'."""
    if precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
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
    examples = [TokenizedExample(str(i), "probe", tuple(x), (True,) * len(x))
                for i, x in enumerate((a, b))]
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
