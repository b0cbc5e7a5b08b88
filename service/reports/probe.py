"""The refusal probe: a small labelled set run through a run's backend, both rates stored.

The set (``refusal_probes.v1.jsonl``, written for this project) pairs benign look-alikes
("How do I kill a Python process?") with clearly harmful requests, each labelled ``harmful``.
Refusals are detected by :func:`filters.refusal.detect_refusal` and counted by
:func:`filters.refusal.refusal_rates`, which keeps over-refusal (benign refused) and
under-refusal (harmful answered) apart. The result is stored as the run's ``refusal_probe``
event, which the run report reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from dataformats.jsonl import read_jsonl
from filters.refusal import detect_refusal, refusal_rates
from generators.backends.base import Backend
from generators.bootstrap import send_prompts, wraps_prompts
from generators.types import SamplingParams
from service.reports.schema import RefusalProbe
from service.runs.config import RunConfig
from service.runs.pipeline import BackendFor, make_run_backend
from service.settings import Settings
from service.storage.db import Database
from service.storage.runs import add_event, get_run

PROBE_SET = "refusal_probes.v1"
# Greedy and short: a refusal leads the reply (filters.refusal reads the first two sentences).
PROBE_SAMPLING = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=96, seed=0)


@dataclass(frozen=True)
class Probe:
    id: str
    prompt: str
    harmful: bool
    kind: str


def load_probes() -> tuple[list[Probe], str]:
    """The packaged probe set and the sha256 of its file."""
    raw = (resources.files("service.reports") / f"{PROBE_SET}.jsonl").read_bytes()
    probes = [
        Probe(str(r["id"]), str(r["prompt"]), bool(r["harmful"]), str(r["kind"]))
        for _, r in read_jsonl(raw)
    ]
    return probes, hashlib.sha256(raw).hexdigest()


def probe_backend(backend: Backend, *, chat_wrap: bool | None = None) -> RefusalProbe:
    """Send every probe to `backend` and count refusals.

    The probes are instruction-style prompts, wrapped by the one rule
    (:func:`generators.bootstrap.wraps_prompts`; ``chat_wrap`` is the run's setting).
    """
    probes, sha256 = load_probes()
    wrap = wraps_prompts(None, is_chat=backend.model_info.is_chat, chat_wrap=chat_wrap)
    _, completions = send_prompts(backend, [p.prompt for p in probes], PROBE_SAMPLING, wrap=wrap)
    results = []
    for probe, completion in zip(probes, completions, strict=True):
        verdict = detect_refusal(completion.text)
        results.append(
            {
                "id": probe.id,
                "kind": probe.kind,
                "harmful": probe.harmful,
                "refused": verdict.value == 1.0,
                "cue": verdict.details["cue"],
                "output": completion.text[:300],
            }
        )
    rates = refusal_rates((r["harmful"], r["refused"]) for r in results)
    return RefusalProbe(probe_set=PROBE_SET, probe_set_sha256=sha256, results=results, **rates)


def probe_run(
    database: Database,
    settings: Settings,
    run_id: int,
    *,
    backend_for: BackendFor | None = None,
) -> RefusalProbe:
    """Probe run `run_id`'s backend and model, and store the result as a ``refusal_probe`` event.

    Args:
        backend_for: makes the backend from the run's config (tests pass a scripted one);
            the run's own backend by default.

    Raises:
        NotFound: no such run.
        InvalidInput: an openai run with no server to call.
    """
    with database.sessions() as session:
        config = RunConfig.model_validate(get_run(session, run_id).config)
    backend = backend_for(config) if backend_for else make_run_backend(config, settings)
    try:
        result = probe_backend(backend, chat_wrap=config.bootstrap.chat_wrap)
    finally:
        backend.close()
    with database.transaction() as session:
        add_event(
            session,
            run_id,
            "refusal_probe",
            f"refusal probe {PROBE_SET}: over-refusal {_rate(result.over_refusal_rate)}, "
            f"under-refusal {_rate(result.under_refusal_rate)}",
            result.model_dump(mode="json"),
        )
    return result


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
