"""One bootstrap iteration for a run: pool -> generators -> filters -> a payload to commit.

No database here: `storage.iterations.commit_iteration` writes the payload in one transaction,
and only after that commit do accepted tasks join the in-memory pool and the duplicate index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from filters.heuristics import HeuristicConfig, check_instances, check_instruction
from filters.near_duplicates import NearDuplicateIndex
from filters.quality import score_heuristic_quality
from filters.refusal import detect_refusal
from filters.types import Score, Verdict
from generators.backends.base import Backend
from generators.bootstrap import run_iteration
from generators.types import Candidate, IterationResult, PoolTask
from service.run_config import RunConfig
from service.run_settings import bootstrap_config_for, heuristic_config_for

NO_INSTANCES_RULE = ("instances", "1")


@dataclass
class PendingTask:
    """A parsed instruction with every verdict and score, not yet stored."""

    key: str
    candidate: Candidate
    signature: bytes
    verdict: Verdict
    instance_verdicts: list[Verdict] = field(default_factory=list)
    scores: list[tuple[int | None, Score]] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.verdict.accepted


@dataclass
class IterationOutcome:
    iteration: int
    result: IterationResult
    tasks: list[PendingTask]
    wall_s: float

    @property
    def accepted(self) -> int:
        return sum(t.accepted for t in self.tasks)


class RunPipeline:
    """The state a worker keeps for one run between iterations: pool, index, backend."""

    def __init__(
        self,
        *,
        config: RunConfig,
        backend: Backend,
        index: NearDuplicateIndex,
        seed_tasks: list[PoolTask],
        machine_tasks: list[PoolTask],
    ) -> None:
        self.config = config
        self.backend = backend
        self.index = index
        self.seed_tasks = seed_tasks
        self.machine_tasks = machine_tasks
        self.heuristics: HeuristicConfig = heuristic_config_for(config)
        self.bootstrap = bootstrap_config_for(config)

    def step(self, iteration: int) -> IterationOutcome:
        """Run iteration number `iteration` (1-based); nothing is stored."""
        started = time.perf_counter()
        pending: dict[int, PendingTask] = {}

        def accept(candidates: list[Candidate]) -> list[bool]:
            pending.clear()
            pending.update(self._screen(candidates))
            return [pending[id(c)].accepted for c in candidates]

        result = run_iteration(
            seed_tasks=self.seed_tasks,
            machine_tasks=self.machine_tasks,
            backend=self.backend,
            config=self.bootstrap,
            seed=self.config.seed * 1_000_003 + iteration,
            accept=accept,
        )
        tasks = [pending[id(c)] for c in result.candidates]
        # Why an instance completion gave nothing (e.g. "truncated"), to name in the rejection.
        unparsed = {f.generation_id: f.reason for f in result.parse_failures}
        for task in tasks:
            if task.accepted:
                self._judge_instances(task, unparsed.get(task.candidate.instances_generation_id))
        self._score_with_judge([t for t in tasks if t.accepted])
        return IterationOutcome(iteration, result, tasks, time.perf_counter() - started)

    def _screen(self, candidates: list[Candidate]) -> dict[int, PendingTask]:
        """Heuristics, then near-duplicates against the pool and within the batch."""
        keys = [f"new:{i}" for i in range(len(candidates))]
        signatures = self.index.signatures([c.instruction for c in candidates])
        out: dict[int, PendingTask] = {}
        to_dedup = []
        for key, cand, sig in zip(keys, candidates, signatures, strict=True):
            verdict = check_instruction(cand.instruction, self.heuristics)
            out[id(cand)] = PendingTask(key, cand, sig, verdict)
            if verdict.accepted:
                to_dedup.append((key, cand.instruction, sig, cand))
        dedup = self.index.check_batch([(k, t, s) for k, t, s, _ in to_dedup], add_accepted=False)
        for (_, _, _, cand), verdict in zip(to_dedup, dedup, strict=True):
            out[id(cand)].verdict = verdict
        return out

    def _judge_instances(self, task: PendingTask, parse_reason: str | None = None) -> None:
        cand = task.candidate
        pairs = [(i.input, i.output) for i in cand.instances]
        task.instance_verdicts = check_instances(
            pairs,
            is_classification=bool(cand.is_classification),
            instruction=cand.instruction,
            config=self.heuristics,
        )
        good = [i for i, v in enumerate(task.instance_verdicts) if v.accepted]
        if not good:
            why = "no instance was generated" if not pairs else "every instance was rejected"
            if not pairs and parse_reason:
                why += f" ({parse_reason})"
            task.verdict = Verdict(False, *NO_INSTANCES_RULE, reason=why)
            return
        for i in good:
            inp, out = pairs[i]
            if "heuristic_quality" in self.config.scorers:
                task.scores.append((i, score_heuristic_quality(cand.instruction, inp, out)))
            if "refusal" in self.config.scorers:
                task.scores.append((i, detect_refusal(out)))

    def _score_with_judge(self, tasks: list[PendingTask]) -> None:
        if "llm_judge" not in self.config.scorers or not tasks:
            return
        from filters.judge import LLMJudge
        from service.run_settings import judge_completer

        judge = LLMJudge(judge_completer(self.backend))
        items, where = [], []
        for task in tasks:
            for i, v in enumerate(task.instance_verdicts):
                if v.accepted:
                    inst = task.candidate.instances[i]
                    items.append((task.candidate.instruction, inst.input, inst.output))
                    where.append((task, i))
        for (task, i), score in zip(where, judge.score(items), strict=True):
            task.scores.append((i, score))

    def absorb(self, committed: list[tuple[int, PendingTask]]) -> None:
        """After the commit: accepted tasks join the pool and the index under their ids."""
        accepted = [(tid, t) for tid, t in committed if t.accepted]
        self.index.add_many((str(tid), t.candidate.instruction, t.signature) for tid, t in accepted)
        self.machine_tasks.extend(
            PoolTask(
                id=str(tid),
                instruction=t.candidate.instruction,
                is_classification=bool(t.candidate.is_classification),
                origin="machine",
                instances=[
                    inst
                    for inst, v in zip(t.candidate.instances, t.instance_verdicts, strict=True)
                    if v.accepted
                ],
            )
            for tid, t in accepted
        )
