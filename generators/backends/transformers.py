"""The ``transformers`` backend: plain ``model.generate`` on CPU, the lightest path.

Batched in sub-batches with left padding (prompts sorted by length so a sub-batch pads little),
stop strings honoured by ``generate(stop_strings=...)`` and cut from the text, the batch seeded
with ``torch.manual_seed(sampling.seed)``.

Presence and frequency penalties are *implemented exactly*, not approximated: transformers has
only a multiplicative ``repetition_penalty``, so a logits processor applies the OpenAI/vLLM rule
(subtract ``presence`` once and ``frequency`` per occurrence from the logit of every token already
in the completion, prompt tokens excluded).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from generators.backends.base import ChatWrapper, top_tokens
from generators.backends.precision import resolve_dtype
from generators.errors import BackendError, BackendUnavailableError
from generators.model_dirs import fingerprint_model_dir
from generators.types import Completion, ModelInfo, SamplingParams


def _penalty_processor(prompt_len: int, presence: float, frequency: float) -> Any:
    """Build the logits processor for OpenAI-style presence/frequency penalties."""
    import torch
    from transformers import LogitsProcessor

    class OpenAIPenalties(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            generated = input_ids[:, prompt_len:]
            if generated.shape[1] == 0:
                return scores
            ones = torch.ones_like(generated, dtype=scores.dtype)
            counts = torch.zeros_like(scores).scatter_add_(1, generated, ones)
            return scores - presence * (counts > 0).to(scores.dtype) - frequency * counts

    return OpenAIPenalties()


class TransformersBackend:
    """Batched ``generate`` with a local model directory.

    Args:
        model_dir: a local model directory.
        model_name: the name recorded in provenance (defaults to the directory name).
        batch_size: prompts per ``generate`` call.
        dtype: ``"auto"`` (default: what this machine runs fastest, see
            :mod:`generators.backends.precision`), ``"bfloat16"`` or ``"float32"``; the
            resolved one is recorded in ``model_info``.
        num_threads: if given, ``torch.set_num_threads`` (process-wide) before generating.
        device: ``"cpu"`` (default), ``"cuda"``/``"cuda:N"``, or ``"auto"`` (cuda when a CUDA
            device is visible); ``dtype="auto"`` on a CUDA device is bf16 where it supports
            it, else fp16.

    Raises:
        BackendUnavailableError: torch or transformers is missing.
        BackendError: the model could not be loaded.
    """

    name = "transformers"

    def __init__(
        self,
        model_dir: Path,
        *,
        model_name: str | None = None,
        batch_size: int = 16,
        dtype: str = "auto",
        num_threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise BackendUnavailableError(f"the transformers backend needs torch: {exc}") from exc
        self._torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)
        on_gpu = self._device.type == "cuda"
        dtype = resolve_dtype(
            dtype, on_gpu=on_gpu, gpu_bf16=on_gpu and torch.cuda.is_bf16_supported()
        )
        self._batch_size = batch_size
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(model_dir), local_files_only=True
            )
            self._model = transformers.AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=getattr(torch, dtype), local_files_only=True
            ).eval()
            self._model.to(self._device)
        except (OSError, ValueError, RuntimeError, AssertionError) as exc:
            # torch raises AssertionError or RuntimeError for a CUDA device it cannot use
            raise BackendError(f"could not load {model_dir}: {exc}") from exc
        self._tokenizer.padding_side = "left"  # decoder-only: new tokens follow the prompt
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self._chat = ChatWrapper(self._tokenizer)
        self.model_info = ModelInfo(
            name=model_name or Path(model_dir).name,
            path=str(model_dir),
            model_hash=fingerprint_model_dir(Path(model_dir)),
            engine="transformers",
            engine_version=transformers.__version__,
            is_chat=self._chat.is_chat,
            dtype=dtype,
        )

    def _generation_config(self, sampling: SamplingParams) -> Any:
        from transformers import GenerationConfig

        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "pad_token_id": self._tokenizer.pad_token_id,
            "eos_token_id": self._tokenizer.eos_token_id,
            "do_sample": sampling.temperature > 0,
        }
        if sampling.stop:
            kwargs["stop_strings"] = list(sampling.stop)
        if sampling.top_logprobs is not None:  # the model's own logits, before any processor
            kwargs.update(output_logits=True, return_dict_in_generate=True)
        if sampling.temperature > 0:  # greedy decoding takes no sampling knobs (it warns)
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        return GenerationConfig(**kwargs)

    def generate(
        self, prompts: list[str], sampling: SamplingParams, *, chat: bool = False
    ) -> list[Completion]:
        """Generate in sub-batches of ``batch_size``; ``latency_s`` is the sub-batch's time.

        Raises:
            BackendError: generation failed.
        """
        if sampling.seed is not None:
            self._torch.manual_seed(sampling.seed)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Completion | None] = [None] * len(prompts)
        config = self._generation_config(sampling)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            try:
                done = self._generate_batch([prompts[i] for i in chunk], sampling, config)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"transformers generate failed: {exc}") from exc
            for index, completion in zip(chunk, done, strict=True):
                results[index] = completion
        return [r for r in results if r is not None]

    def _generate_batch(
        self, prompts: list[str], sampling: SamplingParams, config: Any
    ) -> list[Completion]:
        from transformers import LogitsProcessorList

        torch = self._torch
        enc = self._tokenizer(prompts, return_tensors="pt", padding=True).to(self._device)
        prompt_len = enc["input_ids"].shape[1]
        processors = LogitsProcessorList()
        if sampling.presence_penalty or sampling.frequency_penalty:
            processors.append(
                _penalty_processor(
                    prompt_len, sampling.presence_penalty, sampling.frequency_penalty
                )
            )
        start = time.perf_counter()
        with torch.inference_mode():
            out = self._model.generate(
                **enc,
                generation_config=config,
                logits_processor=processors,
                tokenizer=self._tokenizer,
            )
        latency = time.perf_counter() - start
        counts = enc["attention_mask"].sum(dim=1).tolist()
        tops: list[list[dict[str, float]] | None] = [None] * len(prompts)
        if sampling.top_logprobs is not None:
            tops = self._top_logprobs(out.logits, sampling.top_logprobs)
            out = out.sequences
        done = [
            self._decode(row[prompt_len:].tolist(), int(n), sampling, latency)
            for row, n in zip(out, counts, strict=True)
        ]
        for completion, top in zip(done, tops, strict=True):
            if top is not None:
                completion.top_logprobs = top[: completion.completion_tokens]
        return done

    def _top_logprobs(self, logits: Any, k: int) -> list[list[dict[str, float]] | None]:
        """Per row, per generated position: the k likeliest tokens' text -> log-probability."""
        steps = [step.float().log_softmax(dim=-1).topk(k) for step in logits]
        rows = steps[0].values.shape[0] if steps else 0
        return [
            [
                top_tokens(
                    (str(self._tokenizer.decode([int(t)])), float(v))
                    for v, t in zip(step.values[r], step.indices[r], strict=True)
                )
                for step in steps
            ]
            for r in range(rows)
        ]

    def _decode(
        self, ids: list[int], prompt_tokens: int, sampling: SamplingParams, latency: float
    ) -> Completion:
        """Cut one row at EOS (also the padding of finished rows) or a stop string."""
        eos = self._tokenizer.eos_token_id
        ended = eos in ids
        used = ids[: ids.index(eos) + 1] if ended else ids
        text = self._tokenizer.decode(used, skip_special_tokens=True)
        assert isinstance(text, str)  # one flat id list decodes to one string
        cuts = [text.find(s) for s in sampling.stop if s in text]
        if cuts:
            text, ended = text[: min(cuts)], True
        finish = "stop" if ended or len(used) < sampling.max_tokens else "length"
        return Completion(text, finish, prompt_tokens, len(used), latency)

    def wrap_chat(self, prompt: str) -> str:
        """Wrap ``prompt`` with the model's chat template (see :class:`ChatWrapper`)."""
        return self._chat.wrap(prompt)

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self._model = None
