"""A claimed run on the default seed set and its pipeline, on a scripted backend.

For tests of storage and reading: the replies are fixed, so one iteration gives known tasks
(an accepted one, a near-duplicate pointing at it, a keyword rejection) with full provenance.
"""

from __future__ import annotations

from collections.abc import Callable

from generators.backends.scripted import ScriptedBackend
from service.cli import default_seed_path
from service.runs.config import RunConfig
from service.runs.pipeline import RunPipeline, open_pipeline
from service.runs.worker import Worker
from service.seed_files import parse_seed_file
from service.settings import Settings
from service.storage.db import Database
from service.storage.models import Run
from service.storage.runs import claim_run, create_run
from service.storage.seeds import import_seed_set

INSTRUCTIONS = (
    " Write a short poem about the ocean at night.\n"
    "10. Write a short poem about the ocean at night!\n"
    "11. Draw a picture of a cat.\n"
    "12. List three ways to save water at home."
)


def reply(prompt: str) -> str:
    if prompt.startswith("Can the following task be regarded as a classification"):
        return " No"
    if prompt.startswith("Come up with examples"):
        return "Example 1\nInput: \nOutput: The waves whisper under the moon."
    assert prompt.startswith("Come up with a series of tasks"), prompt[:80]
    return INSTRUCTIONS


def queued_run(database: Database, config: RunConfig) -> int:
    """Import the default seed set (as `config.seed_set`) and queue a run of `config`."""
    with database.transaction() as s:
        seed_set = import_seed_set(
            s, name=config.seed_set, seed_file=parse_seed_file(default_seed_path().read_bytes())
        ).seed_set
        return create_run(
            s,
            seed_set_id=seed_set.id,
            config=config.model_dump(mode="json"),
            config_hash=config.config_hash(),
            policy_version="v1",
            target_tasks=config.target_tasks,
        ).id


def claimed_run(database: Database, config: RunConfig, owner: str = "me") -> int:
    """A queued run of `config`, claimed for `owner`."""
    run_id = queued_run(database, config)
    with database.transaction() as s:
        assert claim_run(s, owner=owner, lease_seconds=60) == run_id
    return run_id


def scripted_pipeline(
    database: Database, run_id: int, config: RunConfig
) -> tuple[Run, RunPipeline]:
    """The run's pipeline, opened as the worker opens it, answering with `reply`."""
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(reply)
    )
    assert pipeline.config == config
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
    return run, pipeline


# Distinct tasks the heuristics and the ROUGE-L rule all accept (none near a seed or another).
TOPICS = (
    "Explain why leaves change colour in the autumn months.",
    "Suggest a name for a bakery that sells only sourdough bread.",
    "Summarize the main causes of inflation in a small economy.",
    "Give three tips for staying focused while studying for exams.",
    "Convert the temperature from Celsius to Fahrenheit and show the steps.",
    "Describe how a bicycle gear system makes climbing hills easier.",
    "Recommend a weekend itinerary for a first visit to Lisbon.",
    "Write a polite email declining an invitation to a conference.",
    "Classify the sentiment of a product review as positive or negative.",
    "Compare the advantages of renting and buying a house.",
    "Estimate how many litres of water a family uses in a week.",
    "Outline the plot of a mystery novel set on a train.",
)


def batches(*sizes: int) -> Callable[[str], str]:
    """A reply function whose k-th instruction completion lists `sizes[k]` new tasks."""
    calls = iter(sizes)
    start = 0

    def batch_reply(prompt: str) -> str:
        nonlocal start
        if not prompt.startswith("Come up with a series of tasks"):
            return reply(prompt)
        n = next(calls, 0)
        tasks = TOPICS[start : start + n]
        start += n
        return "\n".join(f"{i}. {t}" for i, t in enumerate(tasks, start=10))[3:] or " "

    return batch_reply


def worker(database: Database, replies: Callable[[str], str]) -> Worker:
    """A worker whose backend answers from `replies` (e.g. :func:`batches`)."""
    return Worker(
        settings=Settings(),
        database=database,
        backend_factory=lambda _c, _s: ScriptedBackend(replies),
    )
