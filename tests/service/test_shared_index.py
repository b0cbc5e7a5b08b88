"""The near-duplicate pool in Redis: shared by workers, following the database after crashes.

Real Redis (127.0.0.1:6379) and both databases; the backend is scripted (its replies are the
candidates the rule decides on).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest
import redis

from filters.errors import IndexStorageError, IndexUnavailable
from filters.near_duplicates import NearDuplicateIndex, PoolEntry
from filters.rouge import TokenEncoder, f_measure, rouge_l_many, rouge_l_text, rouge_tokenize
from filters.types import Verdict
from generators.config import BootstrapConfig
from service.errors import LeaseLost
from service.runs.config import RunConfig
from service.runs.pipeline import PendingTask, RunPipeline, open_pipeline
from service.runs.shared_index import RedisPool, pool_base, sync_index
from service.settings import Settings
from service.statuses import RunStatus
from service.storage.db import Database
from service.storage.iterations import commit_iteration, committed_pool_items
from service.storage.models import Run
from service.storage.runs import claim_run, get_run, release_lease
from tests.service.scripted_run import TOPICS, batches, claimed_run

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"
A = "Write a short poem about the ocean at night."
A2 = "Write a short poem about the sea at night."
B = "List three ways to save water at home."
C = "Translate the following sentence into French."


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """The real Redis; every key a test made (under its own prefixes) is deleted after."""
    c = redis.Redis.from_url(REDIS_URL)
    try:
        c.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Redis on 127.0.0.1:6379: {exc}")
    made: list[str] = []
    c.test_prefixes = made  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        for prefix in made:
            for pattern in (f"{prefix}:*", f"{prefix}.*"):
                keys = list(c.scan_iter(match=pattern, count=10_000))
                if keys:
                    c.delete(*keys)
        c.close()


def fresh_pool(client: redis.Redis, threshold: float = 0.7) -> RedisPool:
    base = f"iftest:{uuid.uuid4().hex[:12]}"
    client.test_prefixes.append(base)  # type: ignore[attr-defined]
    return RedisPool(client, base, threshold)


def decisions(verdicts: list[Verdict]) -> list[Verdict | bool]:
    """Rejections whole, acceptances as True: an acceptance records the nearest text among
    the candidates its pool found, and the Redis pool (prefixes in a global token order)
    and the memory pool (shortest posting lists) find different supersets of the texts
    above the threshold; what is above it, they both find."""
    return [v.accepted or v for v in verdicts]


def exact_scores(queries: Sequence[Sequence[str]], texts: Sequence[Sequence[str]]) -> np.ndarray:
    """ROUGE-L F of every query (rows) against every text (columns) by brute force: every
    pair's LCS (``rouge_l_many``, bitwise equal to ``rouge_l_f`` pair by pair), one encoder
    for all (the pairwise ``rouge_l_f`` re-encoded both lists each time: 90% of these tests'
    CPU)."""
    encoder = TokenEncoder()
    codes = [encoder.encode(t) for t in texts]
    rows = [rouge_l_many(encoder.encode(q), codes) for q in queries]
    return np.array(rows, dtype=np.float64).reshape(len(queries), len(texts))


def shared(client: redis.Redis, base: str) -> NearDuplicateIndex:
    return NearDuplicateIndex(storage=RedisPool(client, base, 0.7))


def test_pool_is_shared_between_indexes(client: redis.Redis) -> None:
    base = fresh_pool(client).base
    worker1, worker2 = shared(client, base), shared(client, base)
    assert worker1.check_batch([("a", A), ("b", B)])[1].accepted
    # worker2 never saw the texts: candidates and their tokens come from Redis.
    assert len(worker2) == 2 and "a" in worker2 and "zz" not in worker2
    verdicts = worker2.check_batch([("x", A2), ("y", C)])
    assert not verdicts[0].accepted and verdicts[0].nearest_id == "a"
    assert verdicts[0].similarity == rouge_l_text(A2, A)
    assert verdicts[1].accepted
    assert worker1.nearest(C) == ("y", 1.0)
    assert len(worker1) == 3
    worker1.add_many([("a", A, None), ("y", C, None)])  # present: nothing added twice
    assert len(worker2) == 3


def test_shared_pool_decides_as_the_memory_pool(
    client: redis.Redis, seed_tasks_texts: list[str]
) -> None:
    """Same verdicts, nearest keys and similarities as in memory, on real seed tasks, their
    word edits and text in other scripts."""
    rng = random.Random(7)
    pool = [(f"s{i}", t, None) for i, t in enumerate(seed_tasks_texts)]
    edits = []
    for i, text in enumerate(rng.sample(seed_tasks_texts, 60)):
        words = text.split()
        words.pop(rng.randrange(len(words)))
        edits.append((f"e{i}", " ".join(words)))
    others = [("zh", "请把这段话改写得更礼貌一些。"), ("zh2", "请把这段话改写得更礼貌一点。")]
    others += [("ru", "Перепишите этот абзац более вежливо."), ("t", TOPICS[0])]
    memory = NearDuplicateIndex()
    redis_index = NearDuplicateIndex(storage=fresh_pool(client))
    for index in (memory, redis_index):
        index.add_many(pool)
    expected = memory.check_batch(edits + others)
    got = redis_index.check_batch(edits + others)
    assert decisions(got) == decisions(expected)
    assert sum(not v.accepted for v in got) >= 50  # the edits are duplicates of the pool
    assert [v.accepted for v in got[-4:]] == [True, False, True, True]


@pytest.fixture
def seed_tasks_texts() -> list[str]:
    """The 175 Self-Instruct seed instructions."""
    from dataformats.jsonl import read_jsonl
    from tests.conftest import shared_data

    return [r["instruction"] for _, r in read_jsonl(shared_data("self_instruct_seed_tasks.jsonl"))]


def redis_settings() -> Settings:
    return Settings(redis_url=REDIS_URL)


def track(client: redis.Redis, database: Database, run_id: int) -> RedisPool:
    """The run's pool as the pipeline names it (and deleted after the test)."""
    with database.sessions() as s:
        created = get_run(s, run_id).created_at.timestamp()
    base = pool_base(database.identity, run_id, created)
    client.test_prefixes.append(base)  # type: ignore[attr-defined]
    return RedisPool(client, base, 0.7)


def step_and_commit(
    database: Database, run_id: int, pipeline: RunPipeline, *, owner: str = "me", absorb: bool
) -> list[tuple[int, PendingTask]]:
    """One iteration, committed; absorbed into the index only when `absorb` (else: a crash
    between the database commit and the Redis update)."""
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
    outcome = pipeline.step(run.iteration + 1)
    with database.transaction() as s:
        stored = commit_iteration(s, run=run, owner=owner, lease_seconds=60, outcome=outcome)
    if absorb:
        pipeline.absorb(stored)
    return stored


def opened(database: Database, run_id: int, replies: object) -> RunPipeline:
    from generators.backends.scripted import ScriptedBackend

    return open_pipeline(
        database,
        run_id,
        settings=redis_settings(),
        backend_for=lambda _: ScriptedBackend(replies),  # type: ignore[arg-type]
    )


def accepted_ids(stored: list[tuple[int, PendingTask]]) -> dict[str, int]:
    return {t.candidate.instruction: tid for tid, t in stored if t.accepted}


def config() -> RunConfig:
    return RunConfig(
        seed_set="default", bootstrap=BootstrapConfig(prompts_per_iteration=1), target_tasks=100
    )


def test_claims_share_the_pool_and_a_warm_claim_builds_nothing(
    client: redis.Redis, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = claimed_run(database, config())
    pool = track(client, database, run_id)
    first = opened(database, run_id, batches(3, 2))
    seeds = len(first.seed_tasks)
    assert pool.mark() == 0 and len(pool) == seeds
    stored = step_and_commit(database, run_id, first, absorb=True)
    assert len(accepted_ids(stored)) == 3
    assert pool.mark() == 1 and len(pool) == seeds + 3

    def no_rebuild(*args: object) -> None:
        raise AssertionError("a warm claim must not rebuild the pool")

    monkeypatch.setattr(RedisPool, "rebuild", no_rebuild)
    second = opened(database, run_id, batches(0))
    assert second.index.nearest(TOPICS[1]) == (str(accepted_ids(stored)[TOPICS[1]]), 1.0)


def test_a_crash_between_commit_and_redis_update_misses_no_duplicate(
    client: redis.Redis, database: Database
) -> None:
    run_id = claimed_run(database, config())
    pool = track(client, database, run_id)
    crashed = opened(database, run_id, batches(3))
    stored = step_and_commit(database, run_id, crashed, absorb=False)  # died before Redis
    assert pool.mark() == 0  # Redis is behind the database
    # The next worker's claim brings the pool up to the committed iteration.
    resumed = opened(database, run_id, lambda p: "")
    assert pool.mark() == 1
    ids = accepted_ids(stored)
    verdicts = resumed.index.check_batch(
        [("new", TOPICS[2]), ("other", TOPICS[5])], add_accepted=False
    )
    assert not verdicts[0].accepted and verdicts[0].nearest_id == str(ids[TOPICS[2]])
    assert verdicts[1].accepted


def test_a_rolled_back_iteration_never_reaches_redis(
    client: redis.Redis, database: Database
) -> None:
    """A worker that lost its lease commits nothing, so Redis gets nothing: no false
    duplicate of a task the database does not hold."""
    run_id = claimed_run(database, config(), owner="stale")
    pool = track(client, database, run_id)
    stale = opened(database, run_id, batches(3))
    with database.transaction() as s:
        release_lease(s, run_id=run_id, owner="stale", status=RunStatus.QUEUED)
        assert claim_run(s, owner="fresh", lease_seconds=60) == run_id
    with pytest.raises(LeaseLost):
        step_and_commit(database, run_id, stale, owner="stale", absorb=True)
    assert pool.mark() == 0
    fresh = opened(database, run_id, batches(0))
    assert fresh.index.check_batch([("x", TOPICS[0])], add_accepted=False)[0].accepted


def test_a_copy_lost_or_ahead_of_the_database_is_rebuilt(
    client: redis.Redis, database: Database
) -> None:
    run_id = claimed_run(database, config())
    pool = track(client, database, run_id)
    stored = step_and_commit(database, run_id, opened(database, run_id, batches(3)), absorb=True)
    size = len(pool)
    pool.wipe()  # Redis restarted without its data
    rebuilt = opened(database, run_id, batches(0))
    assert pool.mark() == 1 and len(pool) == size
    tid = accepted_ids(stored)[TOPICS[0]]
    assert rebuilt.index.nearest(TOPICS[0]) == (str(tid), 1.0)
    # A copy that says it holds more than the database committed (a restored backup) holds
    # tasks the database lacks: it is dropped, not trusted.
    client.hset(pool._meta, "mark", 5)
    rebuilt.index.add("ghost", D := "Name the capital city of every country in South America.")
    opened(database, run_id, batches(0))
    assert pool.mark() == 1 and len(pool) == size and "ghost" not in rebuilt.index
    assert rebuilt.index.nearest(D) == (None, 0.0)


def test_two_workers_syncing_at_once_add_each_task_once(
    client: redis.Redis, database: Database
) -> None:
    run_id = claimed_run(database, config())
    pool = track(client, database, run_id)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sync(owner: str) -> None:
        pool_for = RedisPool(redis.Redis.from_url(REDIS_URL), pool.base, 0.7)

        def read(after: int | None) -> tuple[int, list[tuple[str, str, bytes | None]]]:
            with database.reads() as s:
                return committed_pool_items(s, run_id, after)

        barrier.wait()
        try:
            sync_index(NearDuplicateIndex(storage=pool_for), pool_for, read, owner=owner)
        except BaseException as exc:
            errors.append(exc)

    def both() -> None:
        threads = [threading.Thread(target=sync, args=(f"w{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors

    both()  # a cold start: one builds, the other waits for its build
    seeds = len(pool)
    assert pool.mark() == 0 and seeds == 69  # the default seed set, once
    step_and_commit(database, run_id, opened(database, run_id, batches(3)), absorb=False)
    both()  # both catch up the same committed iteration: its tasks go in once
    assert pool.mark() == 1 and len(pool) == seeds + 3
    assert len(client.hkeys(pool._members)) == seeds + 3


def test_two_workers_on_one_run_share_what_each_accepted(
    client: redis.Redis, database: Database
) -> None:
    """The run moves from one worker to the other between iterations; the second rejects
    copies of what the first accepted, and the first (claiming again) those of the second."""
    run_id = claimed_run(database, config(), owner="w1")
    pool = track(client, database, run_id)
    w1 = opened(database, run_id, batches(2))
    first = step_and_commit(database, run_id, w1, owner="w1", absorb=True)
    with database.transaction() as s:
        release_lease(s, run_id=run_id, owner="w1", status=RunStatus.QUEUED)
        assert claim_run(s, owner="w2", lease_seconds=60) == run_id
    # w2 is asked for the first topic again (a copy) and two new ones.
    w2 = opened(database, run_id, lambda p: _listing(p, [TOPICS[0], TOPICS[2], TOPICS[3]]))
    second = step_and_commit(database, run_id, w2, owner="w2", absorb=True)
    verdicts = {t.candidate.instruction: t for _, t in second}
    copy = verdicts[TOPICS[0]].verdict
    assert not copy.accepted and copy.nearest_id == str(accepted_ids(first)[TOPICS[0]])
    assert verdicts[TOPICS[2]].accepted and verdicts[TOPICS[3]].accepted
    assert pool.mark() == 2
    # w1's index is the same pool: it sees w2's tasks without reloading anything.
    assert w1.index.nearest(TOPICS[3])[1] == 1.0


def _listing(prompt: str, tasks: list[str]) -> str:
    from tests.service.scripted_run import reply

    if not prompt.startswith("Come up with a series of tasks"):
        return reply(prompt)
    return "\n".join(f"{i}. {t}" for i, t in enumerate(tasks, start=10))[3:]


def test_a_build_stops_when_its_lock_is_no_longer_its_own(client: redis.Redis) -> None:
    """A build whose lock expired and was taken by another worker must not keep writing
    (two builders would number members twice)."""
    pool = fresh_pool(client)
    index = NearDuplicateIndex(storage=pool)
    entries = index.prepare([("a", A, None), ("b", B, None)])
    assert pool.build_lock("first")
    pool.rebuild([entries], 3, owner="first")
    assert pool.mark() == 3 and len(pool) == 2
    pool.release_build_lock("first")
    assert pool.build_lock("second")
    with pytest.raises(IndexStorageError, match="build lock lost"):
        pool.rebuild([entries], 4, owner="first")
    assert pool.mark() == 3 and len(pool) == 2  # the builder that lost its lock wrote nothing


# Words of several scripts; Han and Thai are cut by character, the others by word.
SCRIPT_WORDS = {
    "latin": [
        "write",
        "poem",
        "ocean",
        "night",
        "list",
        "ways",
        "save",
        "water",
        "home",
        "translate",
        "sentence",
        "french",
    ],
    "cyrillic": [
        "напишите",
        "стихотворение",
        "океан",
        "ночь",
        "список",
        "способы",
        "вода",
        "дом",
        "перевод",
    ],
    "greek": [
        "γράψε",
        "ποίημα",
        "ωκεανός",
        "νύχτα",
        "λίστα",
        "τρόποι",
        "νερό",
        "σπίτι",
        "μετάφραση",
    ],
    "arabic": ["اكتب", "قصيدة", "المحيط", "الليل", "قائمة", "طرق", "الماء", "البيت", "ترجمة"],
    "devanagari": ["लिखो", "कविता", "सागर", "रात", "सूची", "तरीके", "पानी", "घर", "अनुवाद"],
    "han": list("写一首关于夜晚海洋的短诗列出三种在家节约用水方法"),
    "thai": list("เขียนบทกวีสั้นเกี่ยวกับทะเล"),
}


def random_text(rng: random.Random) -> str:
    """A text of 3-14 words drawn mostly from one script, sometimes mixed with another."""
    script = rng.choice(list(SCRIPT_WORDS))
    words = SCRIPT_WORDS[script] + rng.choice(list(SCRIPT_WORDS.values()))[: rng.randint(0, 4)]
    picked = [rng.choice(words) for _ in range(rng.randint(3, 14))]
    return ("" if script in ("han", "thai") else " ").join(picked)


def edited(text: str, rng: random.Random) -> str:
    """The text with 1-3 word edits (drop, duplicate, swap neighbours): often still > 0.7."""
    words = text.split() if " " in text else list(text)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(words))
        op = rng.choice(("drop", "dup", "swap"))
        if op == "drop" and len(words) > 1:
            words.pop(i)
        elif op == "dup":
            words.insert(i, words[i])
        elif i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
    return (" " if " " in text else "").join(words)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shared_pool_decides_as_exhaustive_rouge_on_a_random_multiscript_pool(
    client: redis.Redis, seed: int
) -> None:
    """The candidate pruning and the stored codes never change a decision: against every
    pool text by brute force, a query is rejected exactly when some ROUGE-L exceeds 0.7, with
    that best score and the smallest key holding it; and as the in-memory pool decides."""
    rng = random.Random(seed)
    texts = list(dict.fromkeys(random_text(rng) for _ in range(300)))
    pool = [(f"p{i:03d}", t, None) for i, t in enumerate(texts)]
    queries = [(f"q{i}", edited(rng.choice(texts), rng)) for i in range(120)]
    queries += [(f"n{i}", random_text(rng)) for i in range(40)]
    memory = NearDuplicateIndex()
    redis_index = NearDuplicateIndex(storage=fresh_pool(client))
    for index in (memory, redis_index):
        index.add_many(pool)
    got = []
    for start in range(0, len(queries), 8):  # batches as the worker sends them
        got += redis_index.check_batch(queries[start : start + 8], add_accepted=False)
    expected = []
    for start in range(0, len(queries), 8):
        expected += memory.check_batch(queries[start : start + 8], add_accepted=False)
    assert decisions(got) == decisions(expected)
    rejected = 0
    pool_texts = [(key, text) for key, text, _ in pool]
    every = exact_scores(
        [rouge_tokenize(text) for _, text in queries], [rouge_tokenize(t) for _, t in pool_texts]
    )
    for (_, text), verdict, scores in zip(queries, got, every, strict=True):
        best = float(scores.max())
        assert verdict.accepted == (best <= 0.7), text
        if not verdict.accepted:
            rejected += 1
            assert verdict.similarity == best
            assert verdict.nearest_id == min(
                k for (k, _), s in zip(pool_texts, scores, strict=True) if s == best
            )
        elif verdict.nearest_id is not None:  # the nearest text found, truly scored
            nearest = dict(queries).get(verdict.nearest_id) or dict(pool_texts)[verdict.nearest_id]
            assert verdict.similarity == rouge_l_text(text, nearest) <= 0.7
    assert 40 <= rejected <= 140  # both kinds of decision are exercised


def test_int_tuple_codes_decide_as_str_codes(
    client: redis.Redis, seed_tasks_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WIDE_AT token ids the codes are int tuples; the verdicts stay the same."""
    import service.runs.shared_index as shared_index

    rng = random.Random(11)
    pool = [(f"s{i}", t, None) for i, t in enumerate(seed_tasks_texts)]
    queries = [(f"e{i}", edited(t, rng)) for i, t in enumerate(rng.sample(seed_tasks_texts, 40))]
    queries += [("zh", "请把这段话改写得更礼貌一些。"), ("zh2", "请把这段话改写得更礼貌一点。")]
    memory = NearDuplicateIndex()
    memory.add_many(pool)
    expected = memory.check_batch(queries)
    redis_pool = fresh_pool(client)
    redis_index = NearDuplicateIndex(storage=redis_pool)
    redis_index.add_many(pool)
    monkeypatch.setattr(shared_index, "WIDE_AT", 3)
    got = redis_index.check_batch(queries)
    assert isinstance(redis_pool.encode_many([["a"]])[0], tuple)
    assert decisions(got) == decisions(expected)
    assert sum(not v.accepted for v in got) >= 15


def test_a_member_with_tokens_new_since_the_encoding_waits_for_the_next_batch(
    client: redis.Redis,
) -> None:
    """A member added by another worker between a batch's encoding and its candidates, with
    a token the encoding did not know, is left out of that batch (its codes could not be
    compared) and found by the next one."""
    base = fresh_pool(client).base
    mine, other = RedisPool(client, base, 0.7), shared(client, base)
    other.add_many([("a", A, None)])
    index = NearDuplicateIndex(storage=mine)
    query = index.prepare([("q", A2, None)])[0]  # "sea" has no id yet
    other.add_many([("b", A2, None), ("c", A, None)])
    found = dict(mine.candidates([query.tokens])[0])
    assert set(found) == {"a", "c"}  # "b" holds "sea": left out; "c" holds known tokens only
    assert index.nearest(A2) == ("b", 1.0)


def test_a_claim_reads_no_machine_task_and_few_shot_draws_are_unchanged(
    client: redis.Redis, database: Database
) -> None:
    """With the pool in Redis a claim reads the machine tasks' ids only; prompts draw the
    same tasks, in the same order, as from the pool loaded whole, and read only those."""
    from generators.prompts import sample_few_shot
    from service.runs.few_shot_pool import MachinePool
    from service.storage.iterations import load_pool

    run_id = claimed_run(database, config())
    track(client, database, run_id)
    first = opened(database, run_id, batches(6, 2))
    stored = step_and_commit(database, run_id, first, absorb=True)
    stored += step_and_commit(database, run_id, first, absorb=True)
    assert len(accepted_ids(stored)) >= 5
    claim = opened(database, run_id, batches(0))
    lazy = claim.machine_tasks
    assert isinstance(lazy, MachinePool) and lazy.loaded == 0
    with database.sessions() as s:
        seeds, machine, _ = load_pool(s, get_run(s, run_id))
    assert claim.seed_tasks == seeds and len(lazy) == len(machine)
    for seed in range(20):
        kwargs = {"num_total": 8, "num_machine": 2}
        drawn = sample_few_shot(seeds, lazy, rng=random.Random(seed), **kwargs)
        assert drawn == sample_few_shot(seeds, machine, rng=random.Random(seed), **kwargs)
    assert 0 < lazy.loaded <= 2 * 20
    assert list(lazy) == machine and lazy[-1] == machine[-1] and lazy[1:3] == machine[1:3]
    # What the run accepts next joins the pool without a read.
    more = step_and_commit(database, run_id, claim, absorb=True)
    assert len(lazy) == len(machine) + len(accepted_ids(more))


def test_a_pool_larger_than_a_chunk_loads_and_decides_identically(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 3 items per command and 7 tasks per build chunk, a claim's build of a 300-task
    pool writes byte for byte what one-chunk commands write, decides as exhaustive ROUGE-L,
    and no reply holds more than 3 items (the 300k run died on one unbounded reply)."""
    import redis.connection

    import service.runs.shared_index as shared_index

    rng = random.Random(5)
    texts = list(dict.fromkeys(random_text(rng) for _ in range(300)))
    items = [(f"p{i:03d}", t, None) for i, t in enumerate(texts)]
    queries = [(f"q{i}", edited(rng.choice(texts), rng)) for i in range(60)]
    queries += [(f"n{i}", random_text(rng)) for i in range(20)]

    def load(pool: RedisPool) -> list[Verdict]:
        index = NearDuplicateIndex(storage=pool)
        assert sync_index(index, pool, lambda after: (4, items if after is None else []),
                          owner="me") == 4  # fmt: skip
        got = []
        for start in range(0, len(queries), 8):
            got += index.check_batch(queries[start : start + 8], add_accepted=False)
        return got

    def stored(pool: RedisPool) -> dict[bytes, bytes | dict[bytes, bytes]]:
        out: dict[bytes, bytes | dict[bytes, bytes]] = {}
        for name in client.scan_iter(match=f"{pool.base}:*", count=10_000):
            short = name[len(pool.base) :]
            out[short] = client.hgetall(name) if client.type(name) == b"hash" else client.get(name)
        meta = out[b":meta"]
        assert isinstance(meta, dict) and meta.pop(b"epoch")  # each build's own
        return out

    whole = fresh_pool(client)
    expected = load(whole)
    sizes: list[int] = []
    read = redis.connection.Connection.read_response

    def spy(self: redis.connection.Connection, *args: object, **kwargs: object) -> object:
        reply = read(self, *args, **kwargs)
        if isinstance(reply, list) and len(reply) == 4 and all(isinstance(r, bytes) for r in reply):
            sizes.append(len(reply[0]) // 4)  # member codes: four strings, 4 bytes a member
        elif isinstance(reply, list):
            sizes.append(len(reply))
        return reply

    monkeypatch.setattr(shared_index, "READ_CHUNK", 3)
    monkeypatch.setattr(shared_index, "BUILD_CHUNK", 7)
    monkeypatch.setattr(redis.connection.Connection, "read_response", spy)
    chunked = fresh_pool(client)
    got = load(chunked)
    monkeypatch.undo()
    assert max(sizes) == 3 and len(sizes) > 300  # many chunks, none larger than 3
    assert stored(chunked) == stored(whole) and len(chunked) == len(texts)
    assert got == expected
    every = exact_scores(
        [rouge_tokenize(q) for _, q in queries], [rouge_tokenize(t) for t in texts]
    )
    for (_, text), verdict, scores in zip(queries, got, every, strict=True):
        best = float(scores.max())
        assert verdict.accepted == (best <= 0.7), text
        assert verdict.accepted or verdict.similarity == best
    assert 20 <= sum(not v.accepted for v in got) <= 70


def test_a_pool_cut_for_another_threshold_is_not_used(client: redis.Redis) -> None:
    """Prefixes are cut for one threshold (a lower one needs longer prefixes): a pool built
    for 0.7 has no mark for an index at 0.5 (its sync rebuilds it), and is not added to."""
    pool = fresh_pool(client)
    index = NearDuplicateIndex(storage=pool)
    assert pool.build_lock("me")
    pool.rebuild([index.prepare([("a", A, None)])], 2, owner="me")
    assert pool.mark() == 2
    lower = RedisPool(client, pool.base, 0.5)
    assert lower.mark() is None
    with pytest.raises(IndexStorageError, match="threshold"):
        NearDuplicateIndex(threshold=0.5, storage=lower).add_many([("b", B, None)])
    assert len(pool) == 1


@pytest.mark.parametrize(
    ("threshold", "longest_paired"), [(0.3, 48), (0.7, 48), (0.9, 48), (0.7, 6)]
)
def test_a_built_pool_ranks_its_vocabulary_and_decides_as_exhaustive_rouge(
    client: redis.Redis,
    threshold: float,
    longest_paired: int,
    pairs_up_to: Callable[[int], None],
) -> None:
    """A build from scratch gives the commonest sampled tokens the first ids; the pool then
    grown by adds (new tokens take ids after the ranked ones) still finds every text above
    the threshold, against brute force, at thresholds where pairs and single lists are
    used (0.3: short texts need one shared token; PAIRS_UP_TO 6: texts of 3-14 tokens meet
    through pairs, single elements, or both)."""
    from filters import candidates

    assert candidates.PAIRS_UP_TO == 48  # the default the other cases run with
    pairs_up_to(longest_paired)
    rng = random.Random(int(threshold * 100))
    texts = list(dict.fromkeys(random_text(rng) for _ in range(260)))
    built, added = texts[:200], texts[200:]
    items = [(f"p{i:03d}", t, None) for i, t in enumerate(built)]
    pool = fresh_pool(client, threshold)
    index = NearDuplicateIndex(threshold=threshold, storage=pool)
    assert sync_index(index, pool, lambda after: (1, items if after is None else []),
                      owner="me") == 1  # fmt: skip
    index.add_many([(f"a{i:03d}", t, None) for i, t in enumerate(added)])
    counts: dict[bytes, int] = {}
    for text in built:
        for token in rouge_tokenize(text):
            counts[token.encode()] = counts.get(token.encode(), 0) + 1
    vocabulary = {k: int(v) for k, v in client.hgetall(f"{pool.base}:v").items() if k}
    ranked = sorted(counts, key=lambda t: vocabulary[t])
    assert [counts[t] for t in ranked] == sorted(counts.values(), reverse=True)
    assert min(vocabulary[t] for t in vocabulary if t not in counts) > len(counts)
    queries = [(f"q{i}", edited(rng.choice(texts), rng)) for i in range(100)]
    queries += [(f"n{i}", random_text(rng)) for i in range(20)]
    got = []
    for start in range(0, len(queries), 8):
        got += index.check_batch(queries[start : start + 8], add_accepted=False)
    every = exact_scores(
        [rouge_tokenize(q) for _, q in queries], [rouge_tokenize(t) for t in texts]
    )
    for (_, text), verdict, scores in zip(queries, got, every, strict=True):
        best = float(scores.max())
        assert verdict.accepted == (best <= threshold), text
        assert verdict.accepted or verdict.similarity == best
    assert sum(not v.accepted for v in got) >= 20


def test_a_copy_of_another_layout_is_ignored_and_rebuilt(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool written by an older layout lives under another base: a claim of this release
    never reads it, finds no mark, and builds its own copy."""
    import service.runs.shared_index as shared_index

    items = [("a", A, None)]
    old_base = pool_base("db", 1, 1.0)
    monkeypatch.setattr(shared_index, "LAYOUT_VERSION", shared_index.LAYOUT_VERSION - 1)
    older = pool_base("db", 1, 1.0)
    monkeypatch.undo()
    assert older != old_base
    client.test_prefixes += [older, old_base]  # type: ignore[attr-defined]
    old = RedisPool(client, older, 0.7)
    sync_index(NearDuplicateIndex(storage=old), old, lambda after: (2, items), owner="me")
    assert old.mark() == 2
    new = RedisPool(client, old_base, 0.7)
    assert new.mark() is None
    index = NearDuplicateIndex(storage=new)
    assert sync_index(index, new, lambda after: (3, items if after is None else []),
                      owner="me") == 3  # fmt: skip
    assert not index.check_batch([("b", A)], add_accepted=False)[0].accepted


def _token_text(rng: random.Random, vocabulary: list[str]) -> list[str]:
    """Tokens of 1-3, 4-20, around 48 or over 60 elements; common words repeat (Zipf-like)."""
    n = rng.choice(
        (rng.randint(1, 3), rng.randint(4, 20), rng.randint(40, 58), rng.randint(61, 100))
    )
    top = len(vocabulary) - 1
    return [
        vocabulary[min(int(rng.paretovariate(1.0)) - 1, top)]
        if rng.random() < 0.6
        else rng.choice(vocabulary)
        for _ in range(n)
    ]


def _token_edit(rng: random.Random, tokens: list[str], extra: list[str]) -> list[str]:
    """Up to a third of the tokens replaced, dropped, inserted (``extra`` too) or repeated."""
    out = list(tokens)
    for _ in range(rng.randint(0, max(1, len(out) // 3))):
        op, i = rng.random(), rng.randrange(len(out) + 1)
        if op < 0.3 and i < len(out):
            out[i] = rng.choice(extra)
        elif op < 0.55 and i < len(out) and len(out) > 1:
            del out[i]
        elif op < 0.8:
            out.insert(i, rng.choice(extra))
        elif out:
            out.insert(i, rng.choice(out))
    return out


# Every threshold once and 0.7 twice, each vocabulary (8 Han, 30 Cyrillic, 200 Latin words)
# at two or three of them. Each case of the whole 6 x 3 grid fails where one of these fails
# (the pair prefix or the single prefix one element short, the pair-cap feasibility or the
# long-text condition removed, the one-token rule removed, the sketch bound made strict, no
# float slack); 0.7 alone catches every one of them.
@pytest.mark.parametrize(
    ("seed", "words", "threshold"),
    [(1, 8, 0.05), (2, 30, 0.5), (3, 200, 0.7), (1, 8, 0.7), (2, 30, 0.7000000001),
     (3, 200, 0.9), (1, 8, 1.0)],
)  # fmt: skip
def test_candidates_hold_every_pool_text_over_the_threshold_at_any_length(
    client: redis.Redis, seed: int, words: int, threshold: float
) -> None:
    """Layout 4's listings against brute force: for texts of 1-100 tokens (through pairs,
    single elements and the 48-token switch), repeated tokens, tokens the pool gained after
    its build (ids after the ranked ones, some scripts' characters), tokens no pool text has,
    and any threshold, ``candidates`` holds every pool text whose ROUGE-L F exceeds it."""
    rng = random.Random(seed)
    vocabulary = [[f"w{i}", chr(0x4E00 + i), f"сл{i}"][seed % 3] for i in range(words)]
    later = [f"new{i}" for i in range(20)] + [chr(0x0E01 + i) for i in range(10)]
    unseen = [f"zz{i}" for i in range(20)]
    built = [_token_text(rng, vocabulary) for _ in range(240)]
    pool = fresh_pool(client, threshold)
    assert pool.build_lock("me")
    entries = [PoolEntry(f"b{i}", t, "") for i, t in enumerate(built)]
    pool.rebuild([entries[:100], entries[100:]], 0, owner="me", sample=built[::3])
    texts = {e.key: e.tokens for e in entries}
    for step in range(4):  # grown after the build, some texts with tokens it never ranked
        grown = [
            _token_edit(rng, rng.choice(built), vocabulary + later)
            if rng.random() < 0.7
            else _token_text(rng, vocabulary + later)
            for _ in range(30)
        ]
        added = [PoolEntry(f"g{step}.{i}", t, "") for i, t in enumerate(grown)]
        pool.add(added)
        texts.update((e.key, e.tokens) for e in added)
    # Boundary pairs, the worst case of prefix filtering: a query sharing with a member only
    # the fewest tokens that pass (F just over the threshold, 7/10 at 0.7), and those its
    # commonest (ranked first, so last in both orders), the rest its own (rare, or unseen).
    lengths = [
        (m, n) for m in (1, 2, 3, 10, 27, 47, 48, 49, 50, 60) for n in (1, 3, 10, 48, 49, 70)
    ]
    boundary = []
    for m, n in lengths:
        passing = [o for o in range(1, min(m, n) + 1) if f_measure(o, m, n) > threshold]
        if passing:
            shared = [vocabulary[i % words] for i in range(min(passing))]
            own = [f"own{m}.{n}.{i}" for i in range(n - len(shared))]
            boundary.append(shared + [f"zz{m}.{n}.{i}" for i in range(m - len(shared))])
            texts[f"e{m}.{n}"] = shared + own
    pool.add([PoolEntry(k, t, "") for k, t in texts.items() if k.startswith("e")])
    pool.encode_many(boundary)
    keys_in_order = list(texts)
    every = exact_scores(boundary, list(texts.values()))
    for hits, scores in zip(pool.candidates(boundary), every, strict=True):
        keys = {key for key, _ in hits}
        assert all(k in keys for k, s in zip(keys_in_order, scores, strict=True) if s > threshold)
    found = over = 0
    for _ in range(4):
        queries = []
        for _ in range(40):
            source = rng.choice(list(texts.values()))
            if rng.random() < 0.15:
                queries.append(list(source))
            elif rng.random() < 0.9:
                queries.append(_token_edit(rng, source, vocabulary + later + unseen))
            else:
                queries.append(_token_text(rng, vocabulary + unseen))
        pool.encode_many(queries)
        every = exact_scores(queries, list(texts.values()))
        for hits, scores in zip(pool.candidates(queries), every, strict=True):
            keys = {key for key, _ in hits}
            for key, score in zip(keys_in_order, scores, strict=True):
                if score > threshold:
                    over += 1
                    found += key in keys
    assert found == over
    assert over > 0 or threshold == 1.0


def built(pool: RedisPool, texts: list[str], *, ranked_by: list[str], mark: int = 0) -> None:
    """Build ``pool`` from scratch with ``texts`` (keys t0, t1...), its vocabulary ranked by
    the tokens of ``ranked_by`` (commonest first), as a worker's sync does."""
    owner = uuid.uuid4().hex
    assert pool.build_lock(owner)
    index = NearDuplicateIndex(storage=pool)
    chunks = (index.prepare([(f"t{i}", t, None) for i, t in enumerate(texts)]) for _ in [0])
    sample = [rouge_tokenize(t) for t in ranked_by]
    pool.rebuild(chunks, mark, owner=owner, sample=sample)
    pool.release_build_lock(owner)


# Two texts of equal length sharing no token: a copy ranked by E gives E's tokens the ids a
# copy ranked by F gives F's, so a query encoded against one copy and compared with the
# other's members would find F's text identical to E.
E = "Describe the water cycle in simple terms."
F = "Summarize this article about renewable energy policy."


def test_a_copy_rebuilt_under_a_batch_is_never_used_with_the_batchs_encoding(
    client: redis.Redis,
) -> None:
    """Token ids belong to a copy: a batch encoded against one copy, whose candidates would
    be read from another built meanwhile (Redis lost the copy, another worker rebuilt it with
    its own frequency ranking), must not be decided (it could find a false duplicate, here F
    for E at ROUGE-L 1.0, or miss a true one): the storage says the index is unavailable."""
    pool = fresh_pool(client)
    built(pool, [E, F], ranked_by=[E])
    mine = RedisPool(client, pool.base, 0.7)
    index = NearDuplicateIndex(storage=mine)
    query = index.prepare([("q", E, None)])[0]
    pool.wipe()
    built(pool, [F], ranked_by=[F])  # no E in the new copy; F's tokens take E's old ids
    with pytest.raises(IndexUnavailable, match="lost or rebuilt"):
        mine.candidates([query.tokens])
    # The next batch encodes against the new copy and decides right.
    assert index.check_batch([("q", E)], add_accepted=False)[0].accepted
    assert index.nearest(F) == ("t0", 1.0)


@pytest.mark.parametrize("when", ["wiped", "building", "wiped and built again"])
def test_a_batch_meeting_a_lost_or_half_built_copy_is_not_decided(
    client: redis.Redis, when: str
) -> None:
    """Siblings: the copy lost and not yet rebuilt (its posting lists empty: every duplicate
    would be missed), a build from scratch under way at the encoding (the copy holds part of
    the pool), and a rebuild that kept the same ranking (same ids, but the batch straddled
    the wipe)."""
    pool = fresh_pool(client)
    built(pool, [E, F], ranked_by=[E, F])
    mine = RedisPool(client, pool.base, 0.7)
    index = NearDuplicateIndex(storage=mine)
    if when == "building":
        owner = uuid.uuid4().hex
        pool.wipe()
        client.hset(pool._meta, "epoch", f"{owner}:1")  # as rebuild() leaves it at its start
        with pytest.raises(IndexUnavailable):
            index.check_batch([("q", E)])
        return
    query = index.prepare([("q", E, None)])[0]
    pool.wipe()
    if when == "wiped and built again":
        built(pool, [E, F], ranked_by=[E, F])
    with pytest.raises(IndexUnavailable):
        mine.candidates([query.tokens])
    if when == "wiped":  # a later batch too: this pool had a mark, a copy without one is lost
        with pytest.raises(IndexUnavailable):
            index.nearest(E)
    else:
        assert index.nearest(E) == ("t0", 1.0)


def test_a_copy_that_only_grew_under_a_batch_is_used(client: redis.Redis) -> None:
    """Not a false alarm: another worker adding a committed iteration (the mark moves, the
    epoch stays) between a batch's encoding and its candidates is the normal case."""
    pool = fresh_pool(client)
    built(pool, [E], ranked_by=[E], mark=1)
    mine = RedisPool(client, pool.base, 0.7)
    index = NearDuplicateIndex(storage=mine)
    query = index.prepare([("q", E, None)])[0]
    other = NearDuplicateIndex(storage=pool)
    assert pool.advance(other.prepare([("g", F, None)]), expected=1, mark=2)
    assert dict(mine.candidates([query.tokens])[0]) == {"t0": query.code}
    assert index.check_batch([("q2", F)], add_accepted=False)[0].nearest_id == "g"


def test_a_copy_ahead_of_the_database_is_dropped_only_under_the_build_lock(
    client: redis.Redis,
) -> None:
    """Two workers find the same copy ahead of the database (mark 5, committed 3: a restored
    backup). One takes the build lock and rebuilds; the other drops the copy with a wipe, and
    that wipe took no lock: landing mid-build, it deletes what the build wrote so far (members,
    posting lists, vocabulary, epoch), and the build then sets its mark on a copy without
    them. Every later batch misses those tasks, and no check can tell (mark and epoch agree)."""
    pool = fresh_pool(client)
    built(pool, [E, F], ranked_by=[E, F], mark=5)
    items: list[tuple[str, str, bytes | None]] = [("t0", E, None), ("t1", F, None)]
    paused, go = threading.Event(), threading.Event()
    builder = RedisPool(client, pool.base, 0.7)

    def build() -> None:  # found the stale copy too, took the lock first
        assert builder.build_lock("builder")
        index = NearDuplicateIndex(storage=builder)

        def chunks() -> Iterator[list[PoolEntry]]:
            yield index.prepare(items[:1])
            paused.set()
            go.wait(10)
            yield index.prepare(items[1:])

        try:
            builder.rebuild(chunks(), 3, owner="builder", sample=[])
        finally:
            builder.release_build_lock("builder")

    thread = threading.Thread(target=build)

    def read_committed(after: int | None) -> tuple[int, list[tuple[str, str, bytes | None]]]:
        if after == 5 and not thread.is_alive() and not paused.is_set():
            thread.start()  # the other worker's build reaches its second chunk meanwhile
            assert paused.wait(10)
            threading.Timer(0.5, go.set).start()
        return 3, (items if after is None else [])

    mine = RedisPool(client, pool.base, 0.7)
    index = NearDuplicateIndex(storage=mine)
    assert sync_index(index, mine, read_committed, owner="me", wait_seconds=10) == 3
    thread.join(10)
    assert index.nearest(E) == ("t0", 1.0)
    assert index.nearest(F) == ("t1", 1.0)
