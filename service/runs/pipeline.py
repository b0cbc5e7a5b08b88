"""A run's pipeline: pool -> duplicate index -> backend -> the stages, filters between them.

:func:`open_pipeline` is the one place a run's pipeline is assembled (the worker, the foreground
run, ``/v1/generate`` and the tests all call it). :meth:`RunPipeline.step` runs one iteration:
the instruction stage, then heuristics and near-duplicates, then classification and instances
for the survivors only, then the instance rules and scorers. Nothing is stored here:
``storage.iterations.commit_iteration`` writes the outcome in one transaction, and only after
that commit do accepted tasks join the in-memory pool and the duplicate index (:meth:`absorb`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from filters.evolution import check_answer, check_evolved
from filters.heuristics import check_instances, check_instruction
from filters.near_duplicates import NearDuplicateIndex
from filters.quality import score_heuristic_quality
from filters.refusal import detect_refusal
from filters.score_gate import RULE as SCORE_GATE_RULE
from filters.score_gate import check_score_gate
from filters.semantic_duplicates import SemanticDuplicateIndex
from filters.turns import RULE_VERSION as TURN_RULES_VERSION
from filters.turns import check_turn
from filters.types import Verdict
from generators import evol, multiturn, preference
from generators.backends import make_backend
from generators.backends.base import Backend
from generators.bootstrap import Iteration, send_prompts, wraps_prompts
from generators.types import Candidate, Instance, PoolTask, SamplingParams
from service.runs.config import RunConfig, check_backend
from service.runs.few_shot_pool import MachinePool
from service.settings import Settings
from service.storage.db import Database
from service.storage.embeddings import load_task_embeddings, store_task_embeddings
from service.storage.iterations import (
    ComparisonToStore,
    IterationToStore,
    TaskToStore,
    cap_accepted,
    committed_pool_items,
    load_pool,
    machine_pool_ids,
    seed_pool,
)
from service.storage.runs import get_run

NO_INSTANCES_RULE = ("instances", "1")
LAST_BATCH_MARGIN = 1.5
"""How much more than the room left a last batch is sized for, over the measured yield."""


# A parsed instruction with every verdict and score, not yet stored (storage's own row type).
PendingTask = TaskToStore
IterationOutcome = IterationToStore[PendingTask]


BackendFor = Callable[[RunConfig], Backend]
# What a method's stages give: every parsed candidate, those kept for the later stages, verdicts.
Grown = tuple[list[Candidate], list[Candidate], list["PendingTask"]]


def open_pipeline(
    database: Database, run_id: int, *, settings: Settings, backend_for: BackendFor
) -> RunPipeline:
    """Assemble a run's pipeline from what the database holds for it.

    The embedding rule's index, when the run enables it, is still being built in a thread
    when this returns (:func:`build_in_background`); the first screening waits for it.

    Args:
        database: the run's database; the config and pool are read in one short session
            (closed before the backend starts, which may take a while).
        run_id: the run; its stored config is read (old flat layouts included).
        settings: where a shared (Redis) duplicate index lives.
        backend_for: gives the backend for the run's config (the worker keeps one engine per
            process; tests pass a scripted one).

    Raises:
        NotFound: no such run.
        pydantic.ValidationError: the stored config is no longer valid.
    """
    with database.sessions() as session:
        run = get_run(session, run_id)
        config = RunConfig.model_validate(run.config)
        created_at = run.created_at.timestamp()
        machine: list[PoolTask] | MachinePool
        if settings.redis_url and not config.semantic_duplicates.enabled:
            # Nothing here needs the whole pool: the index lives in Redis, and few-shot
            # prompts read the machine tasks they draw (the claim reads their ids only).
            index_items: list[tuple[str, str, bytes | None]] = []
            seeds = seed_pool(session, run)
            machine = MachinePool(database, machine_pool_ids(session, run))
        else:
            seeds, machine, index_items = load_pool(session, run)
    threshold = config.near_duplicates.threshold
    index_sync = None
    if settings.redis_url:
        index, index_sync = open_shared_index(
            settings.redis_url, database, run_id, created_at=created_at, threshold=threshold
        )
        index_sync()
    else:
        index = NearDuplicateIndex(threshold=threshold)
        index.add_many(index_items)
    semantic = None
    if config.semantic_duplicates.enabled:  # started first: it overlaps the backend's start too
        semantic = build_in_background(
            make_semantic_index,
            config,
            database,
            [(int(key), text) for key, text, _ in index_items],
            model_cache_dir=settings.model_cache_dir,
        )
    return RunPipeline(
        config=config,
        backend=backend_for(config),
        index=index,
        index_sync=index_sync,
        seed_tasks=seeds,
        machine_tasks=machine,
        semantic=semantic,
    )


def build_in_background(
    build: Callable[..., SemanticDuplicateIndex | None], *args: Any, **kwargs: Any
) -> Future[SemanticDuplicateIndex | None]:
    """``build(*args, **kwargs)`` started in a thread of its own; its future.

    Why: loading the encoder and embedding the pool took 47 s of a 127 s race run (load ~15 on
    2 cores; 13 s of CPU), and nothing needs the index before the first instruction batch is
    parsed, so the instruction requests go out meanwhile. An error is raised where the index
    is first read (:attr:`RunPipeline.semantic`), in the worker's step, and fails the run there.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semantic-index")
    future = executor.submit(build, *args, **kwargs)
    executor.shutdown(wait=False)  # the thread ends with its one job
    return future


def make_semantic_index(
    config: RunConfig,
    database: Database,
    pool: list[tuple[int, str]],
    *,
    model_cache_dir: Path | None = None,
) -> SemanticDuplicateIndex | None:
    """The embedding rule's index over the pool, or None when the run does not enable it.

    Vectors stored under the encoder's model id are read back; only pool tasks without one
    are embedded (the first claim of a seed set, tasks stored before migration 0006), and
    those are stored for the next claim. ``model_cache_dir`` holds a prepared static encoder
    (``all-MiniLM-L6-v2-static``), when the run's rule uses one.
    """
    if not config.semantic_duplicates.enabled:
        return None
    from filters.embeddings import load_encoder

    encoder = load_encoder(config.semantic_duplicates.model, cache_dir=model_cache_dir)
    index = SemanticDuplicateIndex.from_config(config.semantic_duplicates, encoder)
    with database.sessions() as session:
        stored = load_task_embeddings(session, encoder.model_id, [tid for tid, _ in pool])
    missing = [(tid, text) for tid, text in pool if tid not in stored]
    computed = dict(
        zip([tid for tid, _ in missing], index.embed([text for _, text in missing]), strict=True)
    )
    if computed:
        with database.transaction() as session:
            store_task_embeddings(session, encoder.model_id, computed.items())
    vectors = {**stored, **computed}
    if pool:
        index.add_vectors([str(tid) for tid, _ in pool], np.stack([vectors[t] for t, _ in pool]))
    return index


def open_shared_index(
    redis_url: str, database: Database, run_id: int, *, created_at: float, threshold: float
) -> tuple[NearDuplicateIndex, Callable[[], int]]:
    """The run's index over its pool in Redis, and the call that syncs it with the database.

    See :mod:`service.runs.shared_index`: the sync reads only what was committed after the
    pool's mark (nothing on a warm claim), or builds the pool once when Redis has none.
    """
    from service.runs.shared_index import RedisPool, connect, pool_base, sync_index

    pool = RedisPool(
        connect(redis_url),
        pool_base(database.identity, run_id, created_at),
        threshold,
    )
    index = NearDuplicateIndex(threshold=threshold, storage=pool)

    def read_committed(after: int | None) -> tuple[int, list[tuple[str, str, bytes | None]]]:
        with database.reads() as session:
            return committed_pool_items(session, run_id, after)

    owner = f"{socket.gethostname()}:{os.getpid()}"
    return index, lambda: sync_index(index, pool, read_committed, owner=owner)


def backend_options(config: RunConfig, settings: Settings) -> dict[str, Any]:
    """The run's backend options completed from the settings (model cache, server URLs).

    Raises:
        InvalidInput: an openai run with no server to call.
    """
    check_backend(config, settings)
    options = dict(config.backend_options)
    if config.backend in ("vllm", "transformers"):
        options.setdefault("cache_dir", settings.model_cache_dir)
    if config.backend == "openai" and not options.get("base_url"):
        options["base_url"] = settings.openai_base_url
    return options


def make_run_backend(config: RunConfig, settings: Settings) -> Backend:
    """A new backend for the run's config (close it when done)."""
    return make_backend(config.backend, model=config.model, **backend_options(config, settings))


class RunPipeline:
    """The state a worker keeps for one run between iterations: pool, index, backend."""

    def __init__(
        self,
        *,
        config: RunConfig,
        backend: Backend,
        index: NearDuplicateIndex,
        seed_tasks: list[PoolTask],
        machine_tasks: list[PoolTask] | MachinePool,
        semantic: SemanticDuplicateIndex | Future[SemanticDuplicateIndex | None] | None = None,
        index_sync: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        # A shared index follows the database (see open_shared_index); a local one is fed.
        self.index_sync = index_sync
        self._semantic = semantic
        self.backend = backend
        self.index = index
        self.seed_tasks = seed_tasks
        self.machine_tasks = machine_tasks
        # This pipeline's measured yield (since the claim): instruction prompts sent, screened
        # candidates sent on to the later stages, and tasks accepted at commit.
        self.prompts_sent = 0
        self.screened_kept = 0
        self.accepted = 0
        self._room: int | None = None

    @property
    def semantic(self) -> SemanticDuplicateIndex | None:
        """The embedding rule's index (waiting for its build, see :func:`build_in_background`),
        or None when the run does not enable the rule.

        Raises:
            Whatever building it raised (see :func:`make_semantic_index`).
        """
        if isinstance(self._semantic, Future):
            self._semantic = self._semantic.result()
        return self._semantic

    def step(self, iteration: int, room: int | None = None) -> IterationOutcome:
        """Run iteration number `iteration` (1-based) of the run's method; nothing is stored.

        Args:
            iteration: the iteration's number.
            room: tasks the run still needs (its target minus accepted), or None. With it a
                self-instruct batch is sized to the room (see :meth:`last_batch_prompts` and
                :meth:`later_stages_cap`); the commit still caps the accepted at the target.
        """
        started = time.perf_counter()
        self._room = room
        bootstrap = self.config.bootstrap
        if self.config.method == "self_instruct" and room is not None:
            prompts = self.last_batch_prompts(room)
            if prompts < bootstrap.prompts_per_iteration:
                bootstrap = dataclasses.replace(bootstrap, prompts_per_iteration=prompts)
        stages = Iteration(
            backend=self.backend,
            config=bootstrap,
            seed=self.config.seed * 1_000_003 + iteration,
        )
        grow = {
            "evol": self._evol,
            "multiturn": self._multiturn,
            "preference": self._preference,
        }.get(self.config.method, self._self_instruct)
        candidates, kept, tasks = grow(stages, iteration)
        self._score_with_judge([t for t in tasks if t.accepted])
        for task in tasks:
            if task.accepted and self.config.score_gate:
                self._gate(task)
        result = stages.result(candidates, kept)
        model = self.semantic.encoder.model_id if self.semantic is not None else None
        wall_s = time.perf_counter() - started
        return IterationOutcome(iteration, result, tasks, wall_s, embedding_model=model)

    def last_batch_prompts(self, room: int) -> int:
        """Instruction prompts for a batch that needs ``room`` more tasks: enough for
        :data:`LAST_BATCH_MARGIN` times the room at the accepted-per-prompt measured so far,
        at least 1 and at most ``prompts_per_iteration`` (all of them before any measure)."""
        most = self.config.bootstrap.prompts_per_iteration
        if self.accepted <= 0 or self.prompts_sent <= 0:
            return most
        per_prompt = self.accepted / self.prompts_sent
        return max(1, min(most, math.ceil(LAST_BATCH_MARGIN * room / per_prompt)))

    def later_stages_cap(self, room: int) -> int:
        """Screened candidates worth classifying and giving instances when ``room`` more tasks
        are needed: :data:`LAST_BATCH_MARGIN` times the room over the share of screened
        candidates that ended accepted so far (taken as 1 before any measure)."""
        survive = 1.0
        if self.accepted > 0 and self.screened_kept > 0:
            survive = min(1.0, self.accepted / self.screened_kept)
        return max(1, math.ceil(LAST_BATCH_MARGIN * room / survive))

    def _self_instruct(self, stages: Iteration, iteration: int) -> Grown:
        """The paper's stages: instructions, screening, classification, instances, their rules.

        With the room known, screened candidates beyond :meth:`later_stages_cap` are
        rejected ``over_target`` before the later stages spend tokens on them.
        """
        candidates = stages.instructions(self.seed_tasks, self.machine_tasks)
        self.prompts_sent += stages.config.prompts_per_iteration
        with stages.timed("filters_s"):
            tasks = self._screen(candidates)
        if self._room is not None:
            cap = self.later_stages_cap(self._room)
            why = f"target in sight: {self._room} more were needed, {cap} were sent on"
            cap_accepted(tasks, cap, why)
        kept = [t.candidate for t in tasks if t.accepted]
        self.screened_kept += len(kept)
        stages.classify(kept)
        stages.instances(kept)
        self._judge_all(stages, tasks)
        return candidates, kept, tasks

    def _evol(self, stages: Iteration, iteration: int) -> Grown:
        """Evol-Instruct: evolve pool tasks, eliminate failed evolutions, answer the rest.

        Elimination (filters.evolution) runs before the heuristics and near-duplicates on the
        evolved task, and on the answer before the instance rules and scorers.
        """
        config, elimination = self.config.evol, self.config.elimination
        picks = evol.pick_parents(
            self.seed_tasks, self.machine_tasks, rng=random.Random(stages.seed), config=config
        )
        parents = {p.id: evol.parent_text(p) for p, _ in picks}
        candidates = evol.evolve(stages, picks, config)

        def eliminate(c: Candidate) -> Verdict:
            return check_evolved(parents[c.parent_id or ""], c.instruction, elimination)

        with stages.timed("filters_s"):
            tasks = self._screen(candidates, first=eliminate)
        kept = [t.candidate for t in tasks if t.accepted]
        evol.answer(stages, kept, config)
        with stages.timed("filters_s"):
            for task in tasks:
                if task.accepted and task.candidate.instances:
                    verdict = check_answer(task.candidate.instances[0].output, elimination)
                    if not verdict.accepted:
                        task.verdict, task.instance_verdicts = verdict, [verdict]
        self._judge_all(stages, tasks)
        return candidates, kept, tasks

    def _multiturn(self, stages: Iteration, iteration: int) -> Grown:
        """Conversations grown from pool tasks; each turn passes filters.turns or ends it.

        A conversation is a task (its first user turn as the instruction, every message in
        ``turns``, the last answer as its instance) accepted when it holds at least two user
        turns. Its first turn is a pool task's own, so the pool's near-duplicate rule does not
        apply; the turn rules compare each turn with the one before it.
        """
        config, rules = self.config.multiturn, self.config.turn_rules
        rng = random.Random(stages.seed)
        pool = self.seed_tasks + [t for t in self.machine_tasks if t.instances]
        picks = [rng.choice(pool) for _ in range(self.config.bootstrap.prompts_per_iteration)]
        conversations = multiturn.start_conversations(picks, rng=rng, config=config)

        def check(conv: multiturn.Conversation, user: str, answer: str) -> str | None:
            verdict = check_turn(conv.last("user"), conv.last("assistant"), user, answer, rules)
            return None if verdict.accepted else f"{verdict.rule}: {verdict.reason}"

        multiturn.grow(stages, conversations, rng=rng, config=config, check=check)
        candidates, tasks = [], []
        signatures = self.index.signatures([c.last("user") for c in conversations])
        for i, (conv, sig) in enumerate(zip(conversations, signatures, strict=True)):
            first_user = next(m["content"] for m in conv.messages if m["role"] == "user")
            ids = conv.generation_ids
            cand = Candidate(
                first_user,
                ids[0] if ids else "",
                is_classification=False,
                instances=[Instance("", conv.last("assistant"))],
                instances_generation_id=ids[-1] if ids else None,
                parent_id=conv.task_id,
                operation="multiturn",
                turns=list(conv.messages),
            )
            if conv.user_turns >= 2:
                verdict = Verdict(True, "all", TURN_RULES_VERSION)
            else:
                rule, _, reason = (conv.stopped_by or "turn_length: no turn").partition(": ")
                verdict = Verdict(False, rule, TURN_RULES_VERSION, reason=reason)
            task = PendingTask(f"new:{i}", cand, sig, verdict, instance_verdicts=[verdict])
            if verdict.accepted:
                self._score_outputs(task, [0])
            candidates.append(cand)
            tasks.append(task)
        return candidates, [t.candidate for t in tasks if t.accepted], tasks

    def _preference(self, stages: Iteration, iteration: int) -> Grown:
        """Preference pairs: k sampled responses per seed prompt, every pair judged.

        A prompt is a task (its seed task as parent, operation ``preference``) whose
        instances are its k responses; each pair of them is judged in both orders and at
        equal length by the run's own model (filters.judge.PairwiseJudge) and stored with its
        outcome. The task is accepted when at least one pair is kept; otherwise it is
        rejected by ``no_preference_pair`` with the outcomes counted in the reason.
        """
        from filters.judge import KEPT, NO_PAIR_RULE, PairwiseJudge, comparison_outcome

        config = self.config.preference
        picks = preference.pick_prompts(
            self.seed_tasks,
            iteration=iteration,
            per_iteration=config.prompts_per_iteration,
            seed=self.config.seed,
        )
        inputs = [next((i.input for i in p.instances if i.input.strip()), "") for p in picks]
        texts = [evol.parent_text(p) for p in picks]
        responses = preference.sample_responses(stages, texts, config)
        if config.judge_mode == "text":
            judge = PairwiseJudge(
                judge_completer(self.backend, chat_wrap=self.config.bootstrap.chat_wrap),
                config.rubric_version,
                length_control=config.length_control,
            )
        else:
            judge = PairwiseJudge(
                None,
                config.rubric_version,
                length_control=config.length_control,
                label_logprobs=judge_label_logprobs(
                    self.backend, chat_wrap=self.config.bootstrap.chat_wrap
                ),
                tie_threshold=config.tie_threshold,
                min_label_mass=config.min_label_mass,
            )
        index_pairs = preference.response_pairs(config.responses_per_prompt)
        items = [
            (p.instruction, inp, rs[a].completion.strip(), rs[b].completion.strip())
            for p, inp, rs in zip(picks, inputs, responses, strict=True)
            for a, b in index_pairs
        ]
        with stages.timed("judge_s"):
            judgements = judge.compare(items)
        signatures = self.index.signatures([p.instruction for p in picks])
        candidates, tasks = [], []
        per = len(index_pairs)
        for n, (pick, inp, records, sig) in enumerate(
            zip(picks, inputs, responses, signatures, strict=True)
        ):
            cand = Candidate(
                pick.instruction,
                records[0].id,
                is_classification=False,
                instances=[Instance(inp, r.completion.strip(), r.id) for r in records],
                parent_id=pick.id,
                operation="preference",
            )
            comparisons = []
            for (a, b), j in zip(index_pairs, judgements[n * per : (n + 1) * per], strict=True):
                outcome = comparison_outcome(j, min_margin=config.min_margin)
                pref = j.preference or 0.0
                comparisons.append(
                    ComparisonToStore(
                        responses=(a, b),
                        judgement=j,
                        outcome=outcome,
                        chosen=(a if pref > 0 else b) if outcome == KEPT else None,
                        margin=abs(pref) if outcome == KEPT else None,
                        judge_model=self.backend.model_info.name,
                        judge_mode=judge.mode,
                        rubric_version=judge.rubric_version,
                        rubric_sha256=judge.rubric_sha256,
                    )
                )
            verdict = Verdict(True, "all", NO_PAIR_RULE[1])
            if not any(c.outcome == KEPT for c in comparisons):
                counts: dict[str, int] = {}
                for c in comparisons:
                    counts[c.outcome] = counts.get(c.outcome, 0) + 1
                why = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                verdict = Verdict(False, *NO_PAIR_RULE, reason=f"no pair kept: {why}")
            task = PendingTask(
                f"new:{n}",
                cand,
                sig,
                verdict,
                instance_verdicts=[verdict] * len(records),
                comparisons=comparisons,
            )
            self._score_outputs(task, range(len(records)))
            candidates.append(cand)
            tasks.append(task)
        return candidates, [t.candidate for t in tasks if t.accepted], tasks

    def _judge_all(self, stages: Iteration, tasks: list[PendingTask]) -> None:
        # Why an instance completion gave nothing (e.g. "truncated"), to name in the rejection.
        unparsed: dict[str | None, str] = {f.generation_id: f.reason for f in stages.failures}
        with stages.timed("filters_s"):
            for task in tasks:
                if task.accepted:
                    reason = unparsed.get(task.candidate.instances_generation_id)
                    self._judge_instances(task, reason)

    def _screen(
        self, candidates: list[Candidate], first: Callable[[Candidate], Verdict] | None = None
    ) -> list[PendingTask]:
        """The method's own rule (`first`), heuristics, then near-duplicates against the pool
        and within the batch.

        ROUGE-L first; the embedding rule, when the run enables it, on ROUGE-L's survivors.
        """
        signatures = self.index.signatures([c.instruction for c in candidates])
        tasks = []
        for i, (cand, sig) in enumerate(zip(candidates, signatures, strict=True)):
            verdict = first(cand) if first is not None else None
            if verdict is None or verdict.accepted:
                verdict = check_instruction(cand.instruction, self.config.heuristics)
            tasks.append(PendingTask(f"new:{i}", cand, sig, verdict))
        survivors = [t for t in tasks if t.accepted]
        dedup = self.index.check_batch(
            [(t.key, t.candidate.instruction, t.signature) for t in survivors], add_accepted=False
        )
        for task, verdict in zip(survivors, dedup, strict=True):
            task.verdict = verdict
        if self.semantic is not None:
            survivors = [t for t in survivors if t.accepted]
            vectors = self.semantic.embed([t.candidate.instruction for t in survivors])
            semantic = self.semantic.check_batch(
                [(t.key, t.candidate.instruction) for t in survivors],
                add_accepted=False,
                vectors=vectors,
            )
            for task, verdict, vector in zip(survivors, semantic, vectors, strict=True):
                task.verdict, task.embedding = verdict, vector
        return tasks

    def _judge_instances(self, task: PendingTask, parse_reason: str | None = None) -> None:
        cand = task.candidate
        pairs = [(i.input, i.output) for i in cand.instances]
        task.instance_verdicts = check_instances(
            pairs,
            is_classification=bool(cand.is_classification),
            instruction=cand.instruction,
            config=self.config.heuristics,
        )
        good = [i for i, v in enumerate(task.instance_verdicts) if v.accepted]
        if not good:
            why = "no instance was generated" if not pairs else "every instance was rejected"
            if not pairs and parse_reason:
                why += f" ({parse_reason})"
            task.verdict = Verdict(False, *NO_INSTANCES_RULE, reason=why)
            return
        self._score_outputs(task, good)

    def _score_outputs(self, task: PendingTask, indexes: Sequence[int]) -> None:
        """The run's text scorers (heuristic quality, refusal) on the task's instances at
        ``indexes``, for every method: a conversation's last answer and each preference
        response are scored as an instance's output is (the LLM judge scores them too), under
        the prompt it answers (``Candidate.prompt_of``: a last answer, its last user turn)."""
        cand = task.candidate
        for i in indexes:
            instruction, inp = cand.prompt_of(i)
            out = cand.instances[i].output
            if "heuristic_quality" in self.config.scorers:
                task.scores.append((i, score_heuristic_quality(instruction, inp, out)))
            if "refusal" in self.config.scorers:
                task.scores.append((i, detect_refusal(out)))

    def _gate(self, task: PendingTask) -> None:
        """Reject instances scored below the run's gate; a task left with none goes too."""
        for i, verdict in enumerate(task.instance_verdicts):
            if verdict.accepted:
                scores = (s for idx, s in task.scores if idx == i)
                rejection = check_score_gate(scores, self.config.score_gate)
                task.instance_verdicts[i] = rejection or verdict
        gated = [v for v in task.instance_verdicts if v.rule == SCORE_GATE_RULE]
        if gated and not any(v.accepted for v in task.instance_verdicts):
            reasons = "; ".join(v.reason for v in gated)
            task.verdict = Verdict(
                False, SCORE_GATE_RULE, gated[0].rule_version, reason=f"every instance: {reasons}"
            )

    def _score_with_judge(self, tasks: list[PendingTask]) -> None:
        if "llm_judge" not in self.config.scorers or not tasks:
            return
        from filters.judge import LLMJudge

        judge = LLMJudge(judge_completer(self.backend, chat_wrap=self.config.bootstrap.chat_wrap))
        items, where = [], []
        for task in tasks:
            for i, v in enumerate(task.instance_verdicts):
                if v.accepted:
                    instruction, inp = task.candidate.prompt_of(i)
                    items.append((instruction, inp, task.candidate.instances[i].output))
                    where.append((task, i))
        for (task, i), score in zip(where, judge.score(items), strict=True):
            task.scores.append((i, score))

    def absorb(self, committed: list[tuple[int, PendingTask]]) -> None:
        """After the commit: accepted tasks join the pool and the index under their ids."""
        accepted = [(tid, t) for tid, t in committed if t.accepted]
        self.accepted += len(accepted)
        if self.index_sync is not None:
            self.index_sync()
        else:
            self.index.add_many(
                (str(tid), t.candidate.instruction, t.signature) for tid, t in accepted
            )
        # Embedded once, in _screen: the pool takes the same vectors the check used. Tasks the
        # rule never screened (a multi-turn conversation repeats its parent's instruction) have
        # none and stay out of it.
        screened = [(str(tid), t.embedding) for tid, t in accepted if t.embedding is not None]
        if self.semantic is not None and screened:
            self.semantic.add_vectors([i for i, _ in screened], np.stack([v for _, v in screened]))
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


def judge_completer(
    backend: Backend, *, chat_wrap: bool | None = None
) -> Callable[[list[str]], list[str]]:
    """A `complete` function for the LLM judge: deterministic; wrapped by the one rule for
    instruction-style prompts (:func:`generators.bootstrap.wraps_prompts`, the run's
    ``chat_wrap``)."""
    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=128, stop=("\n\n",))
    wrap = wraps_prompts(None, is_chat=backend.model_info.is_chat, chat_wrap=chat_wrap)

    def complete(prompts: list[str]) -> list[str]:
        _, completions = send_prompts(backend, prompts, sampling, wrap=wrap)
        return [c.text for c in completions]

    return complete


def judge_label_logprobs(
    backend: Backend, *, chat_wrap: bool | None = None
) -> Callable[[list[str], str], list[dict[str, float] | None]]:
    """A ``label_logprobs`` function for the logprob judge (filters.judge.PairwiseJudge).

    Each prompt is chat-wrapped when the one rule says so
    (:func:`generators.bootstrap.wraps_prompts`, the run's ``chat_wrap``) and the answer
    prefix put after it (the start of the assistant's turn); one greedy token is generated and
    its 20 likeliest alternatives returned (None when the backend returned no
    log-probabilities). On an OpenAI chat endpoint the server wraps, so the prefix ends the
    user's message.
    """
    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=1, top_logprobs=20)
    wrap = wraps_prompts(None, is_chat=backend.model_info.is_chat, chat_wrap=chat_wrap)

    def label_logprobs(prompts: list[str], prefix: str) -> list[dict[str, float] | None]:
        sent, server_wraps = [], False
        for p in prompts:
            wrapped = backend.wrap_chat(p) if wrap else p
            if wrapped != p:  # wrapped here: the prefix starts the assistant's turn
                sent.append(wrapped + prefix)
            else:  # not wrapped, or a chat API that wraps on the server (no prefill there)
                sent.append(f"{p}\n\n{prefix}")
                server_wraps = wrap
        completions = backend.generate(sent, sampling, chat=server_wraps)
        return [c.top_logprobs[0] if c.top_logprobs else None for c in completions]

    return label_logprobs
