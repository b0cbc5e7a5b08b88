"""Where the product's race time goes: one instructforge race run, traced.

The race's instructforge run (:func:`bench.pipelines.race_instructforge`: a run over REST,
worked by the service's worker on the ``openai`` backend) against one ``vllm serve`` of the
embedded model, with three probes beside it:

- the server's ``/metrics`` polled every ``--poll-s`` seconds: requests running and waiting,
  prompt and generation tokens, prefix-cache queries and hits;
- every request the backend sends to the server: start, end, stage (from its template's
  first line), prompt and completion tokens;
- the worker's steps: claim, pipeline opened, each iteration's stage timings, commit.

Writes a JSON trace (``--out``) and prints a summary: per stage its wall span, requests,
tokens, and the share of its span the server ran fewer than ``--tail-below`` requests.

Usage: python bench/race_trace.py [--target 40] [--out /tmp/race-trace.json]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pipelines import model_cache, race_instructforge, warm_server  # noqa: E402
from bench.servers import server_env, start_vllm_server, stop_server  # noqa: E402

STAGE_OF_PREFIX = {
    "Come up with a series of tasks": "instructions",
    "Can the following task be regarded": "classification",
    "Come up with examples for the following": "instances",
    "Given the classification task definition": "instances",
}
GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting")
COUNTERS = (
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
)


def read_metrics(url: str) -> dict[str, float]:
    """The gauges and counters above, summed over their labels."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    out = dict.fromkeys(GAUGES + COUNTERS, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in out:
            out[name] += float(line.rsplit(" ", 1)[1])
    return out


def stage_of(body: dict[str, Any]) -> str:
    prompt = str(body.get("prompt") or body.get("messages") or "")
    return next((s for p, s in STAGE_OF_PREFIX.items() if prompt.startswith(p)), "other")


class Tracer:
    """Collects the three probes' events, times relative to :attr:`t0`."""

    def __init__(self, url: str, poll_s: float) -> None:
        self.url, self.poll_s = url, poll_s
        self.t0 = time.perf_counter()
        self.samples: list[dict[str, float]] = []
        self.requests: list[dict[str, Any]] = []
        self.events: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def event(self, what: str) -> None:
        with self._lock:
            self.events.append((round(self.now(), 3), what))

    def poll(self) -> None:
        while not self._stop.is_set():
            t = self.now()
            try:
                sample = read_metrics(self.url)
            except httpx.HTTPError:
                continue
            self.samples.append({"t": round(t, 3), **sample})
            self._stop.wait(self.poll_s)

    def patch(self) -> None:
        """Time every request to the server; log the worker's steps."""
        from service.runs import pipeline, worker

        original_post = httpx.Client.post
        tracer = self

        def post(client: httpx.Client, url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
            if not str(url).startswith(tracer.url) or "json" not in kwargs:
                return original_post(client, url, *args, **kwargs)
            start = tracer.now()
            response = original_post(client, url, *args, **kwargs)
            usage: dict[str, int] = {}
            with contextlib.suppress(ValueError):
                usage = response.json().get("usage") or {}
            with tracer._lock:
                tracer.requests.append(
                    {
                        "stage": stage_of(kwargs["json"]),
                        "start": round(start, 3),
                        "end": round(tracer.now(), 3),
                        "prompt_tokens": usage.get("prompt_tokens", 0),
                        "completion_tokens": usage.get("completion_tokens", 0),
                        "max_tokens": kwargs["json"].get("max_tokens"),
                    }
                )
            return response

        httpx.Client.post = post  # type: ignore[method-assign,assignment]

        def wrap(owner: Any, name: str) -> None:
            inner = getattr(owner, name)

            def traced(*args: Any, **kwargs: Any) -> Any:
                tracer.event(f"{name} start")
                out = inner(*args, **kwargs)
                tracer.event(f"{name} end")
                if name == "step":
                    timings = out.result.timings
                    tracer.event(
                        "timings " + json.dumps({k: round(v, 3) for k, v in timings.items()})
                    )
                return out

            setattr(owner, name, traced)

        wrap(worker.Worker, "claim")
        wrap(worker, "open_pipeline")
        wrap(pipeline.RunPipeline, "step")
        wrap(worker, "commit_iteration")
        wrap(pipeline.RunPipeline, "_screen")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.poll, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def summarize(tracer: Tracer, tail_below: int) -> dict[str, Any]:
    """Per stage: span, requests, tokens; and the share of time few requests ran."""
    stages: dict[str, Any] = {}
    for r in tracer.requests:
        s = stages.setdefault(
            r["stage"],
            {"requests": 0, "first_start": r["start"], "last_end": r["end"], "prompt_tokens": 0,
             "completion_tokens": 0, "latencies": []},
        )  # fmt: skip
        s["requests"] += 1
        s["first_start"] = min(s["first_start"], r["start"])
        s["last_end"] = max(s["last_end"], r["end"])
        s["prompt_tokens"] += r["prompt_tokens"]
        s["completion_tokens"] += r["completion_tokens"]
        s["latencies"].append(r["end"] - r["start"])
    for s in stages.values():
        lat = sorted(s.pop("latencies"))
        s["span_s"] = round(s["last_end"] - s["first_start"], 2)
        s["latency_median_s"] = round(lat[len(lat) // 2], 2)
        s["latency_max_s"] = round(lat[-1], 2)
    samples = tracer.samples
    low = busy = 0.0
    for a, b in itertools.pairwise(samples):
        dt = b["t"] - a["t"]
        running = a["vllm:num_requests_running"]
        if running > 0:
            busy += dt
            if running < tail_below:
                low += dt
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    delta = {k: last.get(k, 0) - first.get(k, 0) for k in COUNTERS}
    return {
        "stages": stages,
        "server_busy_s": round(busy, 2),
        f"server_running_below_{tail_below}_s": round(low, 2),
        "counters": delta,
        "prefix_hit_share": round(
            delta["vllm:prefix_cache_hits_total"] / delta["vllm:prefix_cache_queries_total"], 3
        )
        if delta["vllm:prefix_cache_queries_total"]
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=int, default=40)
    parser.add_argument("--poll-s", type=float, default=0.25)
    parser.add_argument("--tail-below", type=int, default=8)
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--url", help="an already running vllm serve (else one is started)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/race-trace.json"))
    args = parser.parse_args()
    import os
    import tempfile

    from filters.embeddings import prepare_int8_encoder
    from generators.embedded_model import prepare_embedded_model

    os.environ["HF_HUB_OFFLINE"] = "1"
    cache = model_cache()
    model_dir = prepare_embedded_model(cache)
    prepare_int8_encoder(cache)
    process = None
    url = args.url
    if url is None:
        work = Path(tempfile.mkdtemp(prefix="race-trace-"))
        process, url = start_vllm_server(
            model_dir, work / "vllm.log", env=server_env(args.server_threads), max_model_len=4096
        )
    try:
        warm_server(url)
        # Imports the race's subprocess pays before its clock starts.
        import fastapi.testclient  # noqa: F401

        import service.app
        import service.runs.worker  # noqa: F401

        # A server kept between traces (--url) would serve the templates' prefixes from its
        # cache: reset it where the server allows (VLLM_SERVER_DEV_MODE=1).
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{url}/reset_prefix_cache", timeout=30)
        tracer = Tracer(url, args.poll_s)
        tracer.patch()
        tracer.start()
        load = Path("/proc/loadavg").read_text().split()[:3]
        tracer.event("race start")
        result = race_instructforge(url, args.target, 360)
        tracer.event("race end")
        time.sleep(2 * args.poll_s)
        tracer.stop()
    finally:
        if process is not None:
            stop_server(process)
    summary = summarize(tracer, args.tail_below)
    summary["run_seconds"] = round(result["seconds"], 2)
    summary["accepted"] = len(result["tasks"])
    summary["tool_rejections"] = result["tool_rejections"]
    summary["loadavg_start"] = load
    summary["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    trace = {
        "summary": summary,
        "events": tracer.events,
        "requests": tracer.requests,
        "samples": tracer.samples,
    }
    args.out.write_text(json.dumps(trace, indent=1), encoding="utf-8")
    print(json.dumps(summary, indent=1))
    for t, what in tracer.events:
        print(f"{t:8.2f}  {what}")
    print("t(s)  running waiting  gen_tok/s  prompt_tok/s  requests started/ended by stage")
    step, prev = 1.0, None
    for sample in tracer.samples:
        if prev is not None and sample["t"] - prev["t"] < step:
            continue
        if prev is not None:
            dt = sample["t"] - prev["t"]
            gen = (
                sample["vllm:generation_tokens_total"] - prev["vllm:generation_tokens_total"]
            ) / dt
            pro = (sample["vllm:prompt_tokens_total"] - prev["vllm:prompt_tokens_total"]) / dt
            lo, hi = prev["t"], sample["t"]
            starts: dict[str, int] = {}
            ends: dict[str, int] = {}
            for r in tracer.requests:
                if lo <= r["start"] < hi:
                    starts[r["stage"][:5]] = starts.get(r["stage"][:5], 0) + 1
                if lo <= r["end"] < hi:
                    ends[r["stage"][:5]] = ends.get(r["stage"][:5], 0) + 1
            print(
                f"{sample['t']:5.1f} {sample['vllm:num_requests_running']:6.0f}"
                f" {sample['vllm:num_requests_waiting']:6.0f} {gen:9.1f} {pro:11.1f}"
                f"  {starts} {ends}"
            )
        prev = sample


if __name__ == "__main__":
    main()
