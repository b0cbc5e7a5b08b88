"""The near-duplicate pool of a run kept in Redis, shared by every worker, following the database.

The database is the source of truth: a run's pool is its seed set's tasks plus its accepted
machine tasks of committed iterations (``runs.iteration`` only moves in the transaction that
stores an iteration's tasks). Redis holds a copy for each run, versioned by a *mark*: the last
committed iteration whose accepted tasks it holds. A worker brings the copy up to the run's
committed iteration before it checks candidates (:func:`sync_index`, at each claim and after
each commit), reading only the tasks of the iterations after the mark. So:

* a worker that crashed after its commit but before updating Redis leaves the mark behind; the
  next sync (by whichever worker holds the run) adds that iteration, so no duplicate is missed;
* Redis is only written after the commit, from committed rows, so it never holds a task the
  database lacks (no false duplicate) - a rolled-back iteration never reaches it;
* the mark moves only by compare-and-set (``WATCH``/``MULTI``) in the same transaction that
  adds the tasks, so two workers catching up at once add each task once;
* a copy with no mark (Redis restarted or evicted it, or a first build died half-way) is wiped
  and rebuilt from the database under a build lock, once.

Layout under ``base`` (``instructforge:ndx:<rule>.<tokens>:<database>:<run id>:<created at>``,
so a new database's run 1 never meets an old one's copy):

* ``base:meta``, a hash: ``mark`` (committed iteration), ``count`` (members);
* ``base:k``, a hash: task key -> member number;
* ``base:m``, a hash: member number -> the key and the ROUGE-L tokens, joined by ``\\x1f``
  (what the exact rule needs, one ``HMGET`` away);
* ``base:p:<token>\\x1f<occurrence>``, strings: the posting list of one element of the
  prefix-filtered token index (:mod:`filters.candidates`), packed ``<u4`` pairs (member,
  token count), grown by ``APPEND``.

A batch of candidates costs three round trips whatever its size: the posting sizes of every
element, the shortest posting lists each query must probe, and the tokens of the candidates
that may pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import redis

from filters.candidates import elements, may_pass, probe_size
from filters.errors import IndexStorageError
from filters.near_duplicates import RULE_VERSION, NearDuplicateIndex, PoolEntry
from filters.rouge import TOKENS_VERSION, Encoded, TokenEncoder

SEP = "\x1f"  # never inside a token (letters, digits and marks only) nor a task key
_POSTING = np.dtype([("member", "<u4"), ("length", "<u4")])
BUILD_CHUNK = 20_000  # entries per pipeline when a pool is built from scratch
_BUILD_LOCK_SECONDS = 600
# Extend the build lock only while it is still ours (one atomic step on the server).
_RENEW_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('expire', KEYS[1], ARGV[2])
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisPool:
    """A :class:`filters.near_duplicates.PoolStorage` in Redis (see the module docstring).

    Args:
        client: A redis-py client (``decode_responses`` off).
        base: The key prefix of this pool.
        threshold: ROUGE-L F threshold the candidates are sought for.

    Raises:
        IndexStorageError: From any method, when Redis fails or a member's tokens are lost.
    """

    def __init__(self, client: redis.Redis, base: str, threshold: float) -> None:
        """Attach to (or start) the pool under ``base``; nothing is read yet."""
        self.client = client
        self.base = base
        self.threshold = threshold
        self._encoder = TokenEncoder()
        self._meta, self._keys, self._members = f"{base}:meta", f"{base}:k", f"{base}:m"
        self._lock = f"{base}.build"  # outside base:* so that wipe() keeps it
        self._renew = client.register_script(_RENEW_IF_OWNER)

    def _posting(self, element: tuple[Any, int]) -> str:
        return f"{self.base}:p:{element[0]}{SEP}{element[1]}"

    def __len__(self) -> int:
        """Number of keys in the pool."""
        return int(self._call(self.client.hget, self._meta, "count") or 0)

    def encode(self, tokens: Sequence[str]) -> Encoded:
        """The code of a token list (this process's token ids)."""
        return self._encoder.encode(tokens)

    def mark(self) -> int | None:
        """The committed iteration the pool holds, or None when it holds no complete copy."""
        raw = self._call(self.client.hget, self._meta, "mark")
        return None if raw is None else int(raw)

    def present(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` already in the pool."""
        if not keys:
            return set()
        found = self._call(self.client.hmget, self._keys, list(keys))
        return {k for k, v in zip(keys, found, strict=True) if v is not None}

    def add(self, entries: Sequence[PoolEntry]) -> None:
        """Add entries, whatever the mark (for callers that keep no mark)."""
        while not self.advance(entries, expected=self.mark(), mark=None):
            pass  # another worker moved the mark meanwhile: read it again

    def advance(
        self, entries: Sequence[PoolEntry], *, expected: int | None, mark: int | None
    ) -> bool:
        """Add entries and move the mark from ``expected`` to ``mark``, atomically.

        Args:
            entries: What the committed iterations after ``expected`` accepted.
            expected: The mark the caller read; nothing is written if it has moved.
            mark: The new mark; None leaves it as it is.

        Returns:
            False when another worker moved the mark first (the caller syncs again).
        """
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(self._meta)
                now = pipe.hmget(self._meta, ["mark", "count"])
                if (None if now[0] is None else int(now[0])) != expected:
                    return False
                count = int(now[1] or 0)
                keys = [e.key for e in entries]
                flags = pipe.hmget(self._keys, keys) if keys else []
                fresh = [e for e, f in zip(entries, flags, strict=True) if f is None]
                pipe.multi()
                self._write(pipe, fresh, count)
                fields: dict[str, int] = {"count": count + len(fresh)}
                if mark is not None:
                    fields["mark"] = mark
                pipe.hset(self._meta, mapping=fields)  # type: ignore[arg-type]
                pipe.execute()
            except redis.WatchError:
                return False
            except redis.RedisError as exc:
                raise IndexStorageError(f"shared index {self.base}: {exc}") from exc
        return True

    def _write(self, pipe: Any, entries: Sequence[PoolEntry], first: int) -> None:
        """Queue the commands that add ``entries`` as members ``first``, ``first + 1``..."""
        if not entries:
            return
        postings: dict[str, list[tuple[int, int]]] = {}
        keys, members = {}, {}
        for member, e in enumerate(entries, start=first):
            keys[e.key] = member
            members[member] = SEP.join([e.key, *e.tokens])
            for element in elements(e.tokens):
                postings.setdefault(self._posting(element), []).append((member, len(e.tokens)))
        pipe.hset(self._keys, mapping=keys)
        pipe.hset(self._members, mapping=members)
        for name, pairs in postings.items():
            pipe.append(name, np.array(pairs, dtype=_POSTING).tobytes())

    def rebuild(self, chunks: Iterable[Sequence[PoolEntry]], mark: int, *, owner: str) -> None:
        """Replace the whole pool by the entries of ``chunks`` (a first build, or one after
        Redis lost the pool).

        Written chunk by chunk outside a transaction (a chunk is prepared only when the one
        before is written, so a million-task pool is never all in memory at once). The mark
        is set last: a build that dies half-way leaves no mark, and the next one starts
        again from a wiped pool. ``owner`` must hold the build lock; it is renewed at each
        chunk, and the build stops if another worker took it (its lock had expired).
        """
        try:
            self._hold(owner)
            self.wipe()
            count = 0
            for chunk in chunks:
                self._hold(owner)
                with self.client.pipeline(transaction=False) as pipe:
                    self._write(pipe, chunk, count)
                    pipe.execute()
                count += len(chunk)
            self.client.hset(self._meta, mapping={"count": count, "mark": mark})
        except redis.RedisError as exc:
            raise IndexStorageError(f"shared index {self.base}: {exc}") from exc

    def _hold(self, owner: str) -> None:
        """Renew the build lock for ``owner``, or stop: another worker took it."""
        if not self._renew(keys=[self._lock], args=[owner, _BUILD_LOCK_SECONDS]):
            raise IndexStorageError(f"shared index {self.base}: build lock lost")

    def wipe(self) -> None:
        """Delete every key of the pool."""
        names = list(self.client.scan_iter(match=f"{self.base}:*", count=10_000))
        for start in range(0, len(names), 10_000):
            self.client.unlink(*names[start : start + 10_000])

    def build_lock(self, owner: str) -> bool:
        """Take the lock for a build from scratch (held ``_BUILD_LOCK_SECONDS`` at most)."""
        return bool(self._call(self.client.set, self._lock, owner, nx=True, ex=_BUILD_LOCK_SECONDS))

    def release_build_lock(self, owner: str) -> None:
        """Release the build lock if we still hold it."""
        if self._call(self.client.get, self._lock) == owner.encode():
            self._call(self.client.delete, self._lock)

    def candidates(self, queries: Sequence[Sequence[str]]) -> list[list[tuple[str, Encoded]]]:
        """Per query, the pool texts that may pass the threshold, as ``(key, code)``.

        Three pipelined round trips for the whole batch: posting sizes, the shortest posting
        lists each query must probe (any ``probe_size`` of them is exact), member tokens.
        """
        per_query = [[self._posting(e) for e in elements(q)] for q in queries]
        names = list(dict.fromkeys(n for names in per_query for n in names))
        if not names:
            return [[] for _ in queries]
        sizes = dict(zip(names, self._pipelined("strlen", names), strict=True))
        probes = []
        for q, names_q in zip(queries, per_query, strict=True):
            probe = probe_size(self.threshold, len(q))
            probes.append((probe, sorted(names_q, key=sizes.__getitem__)[:probe]))
        wanted = list(dict.fromkeys(n for _, chosen in probes for n in chosen if sizes[n]))
        lists = dict(zip(wanted, self._pipelined("get", wanted), strict=True))
        kept_per_query = []
        for q, (probe, chosen) in zip(queries, probes, strict=True):
            found = [np.frombuffer(lists[n], dtype=_POSTING) for n in chosen if sizes[n]]
            if not found:
                kept_per_query.append(np.empty(0, dtype=np.int64))
                continue
            both = np.concatenate(found)
            members, first, hits = np.unique(both["member"], return_index=True, return_counts=True)
            n = both["length"][first].astype(np.int64)
            mask = may_pass(self.threshold, len(q), probe, hits.astype(np.int64), n)
            kept_per_query.append(members[mask].astype(np.int64))
        needed = np.unique(np.concatenate(kept_per_query)).tolist() if kept_per_query else []
        stored = self._call(self.client.hmget, self._members, needed) if needed else []
        decoded: dict[int, tuple[str, Encoded]] = {}
        for member, raw in zip(needed, stored, strict=True):
            if raw is None:
                raise IndexStorageError(f"shared index {self.base}: member {member} has no tokens")
            key, *tokens = _text(raw).split(SEP)
            decoded[member] = (key, self._encoder.encode(tokens))
        return [[decoded[m] for m in kept.tolist()] for kept in kept_per_query]

    def _pipelined(self, command: str, names: list[str]) -> list[Any]:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    getattr(pipe, command)(name)
                return list(pipe.execute())
        except redis.RedisError as exc:
            raise IndexStorageError(f"shared index {self.base}: {exc}") from exc

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise IndexStorageError(f"shared index {self.base}: {exc}") from exc


def pool_base(database_name: str, run_id: int, created_at: float) -> str:
    """The key prefix of a run's pool: rule and token versions, database, run, its creation.

    Args:
        database_name: Names the database (host, port, name; never a password).
        run_id: The run.
        created_at: The run's creation time (POSIX seconds), so a recreated database's run of
            the same id gets a new pool.
    """
    return (
        f"instructforge:ndx:{RULE_VERSION}.{TOKENS_VERSION}:{database_name}:{run_id}:"
        f"{round(created_at * 1e6)}"
    )


# Items of committed tasks: (key, text, stored signature or None).
Items = list[tuple[str, str, bytes | None]]
# Reads (committed iteration, items of the tasks after `after`; all of them when None).
CommittedReader = Callable[[int | None], tuple[int, Items]]


def sync_index(
    index: NearDuplicateIndex,
    pool: RedisPool,
    read_committed: CommittedReader,
    *,
    owner: str,
    wait_seconds: float = 600.0,
) -> int:
    """Bring the shared pool up to the run's committed iteration; returns the mark reached.

    Args:
        index: The index over ``pool`` (it tokenizes and encodes what is added).
        pool: The run's shared pool.
        read_committed: Reads the run's committed iteration, and the items of the accepted
            tasks of the iterations after the given mark (the seed set's tasks and every
            accepted machine task when given None), from the database.
        owner: Who builds from scratch (the build lock's value).
        wait_seconds: How long to wait for another worker's build from scratch.

    Raises:
        IndexStorageError: Redis failed, or another worker's build did not finish in time.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        mark = pool.mark()
        if mark is None:
            if pool.build_lock(owner):
                try:
                    committed, items = read_committed(None)
                    chunks = (
                        index.prepare(items[i : i + BUILD_CHUNK])
                        for i in range(0, len(items), BUILD_CHUNK)
                    )
                    pool.rebuild(chunks, committed, owner=owner)
                finally:
                    pool.release_build_lock(owner)
                continue
            if time.monotonic() > deadline:
                raise IndexStorageError(f"shared index {pool.base}: a build did not finish")
            time.sleep(0.2)
            continue
        committed, items = read_committed(mark)
        if committed < mark:
            # The copy holds iterations the database does not (it was restored from a
            # backup, or another database shares its name): its tasks would be false
            # duplicates. Drop it and build again.
            pool.wipe()
            continue
        if committed == mark:
            return mark
        if pool.advance(index.prepare_new(items), expected=mark, mark=committed):
            return committed
