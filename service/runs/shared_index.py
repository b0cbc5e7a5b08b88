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

Layout under ``base``
(``instructforge:ndx:<rule>.<tokens>.<layout>:<database>:<run id>:<created at>``, so a new
database's run 1 never meets an old one's copy, nor a release another layout's):

* ``base:meta``, a hash: ``mark`` (committed iteration), ``count`` (members);
* ``base:k``, a hash: task key -> member number;
* ``base:v``, a hash: the pool's vocabulary, ROUGE-L token -> token id (from 1, handed out
  once by a script, so every worker encodes alike); field ``""`` counts the ids given;
* ``base:m``, a hash: member number -> the key's length (``<u2``), the key, and the member's
  tokens as the code points of their ids (``<u4``, :func:`filters.rouge.code_points`): what
  the exact rule needs, one ``HMGET`` away and decoded by one ``utf-32-le`` decode, with no
  re-tokenizing or re-encoding of pool text in the worker;
* ``base:p:<token>\\x1f<occurrence>``, strings: the posting list of one element of the
  prefix-filtered token index (:mod:`filters.candidates`), packed ``<u4`` pairs (member,
  token count), grown by ``APPEND``.

A batch of candidates costs four round trips of one command each, whatever its size: the ids
of its tokens, the posting sizes of every element (one script), the shortest posting lists each
query must probe (``MGET``), and the codes of the candidates that may pass (``HMGET``).
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
from filters.rouge import (
    MAX_CODE_ID,
    TOKENS_VERSION,
    Encoded,
    code_point,
    code_points,
    token_ids,
)

SEP = "\x1f"  # never inside a token (letters, digits and marks only) nor a task key
# 1: members stored as their tokens joined by SEP. 2: as the code points of shared token ids.
LAYOUT_VERSION = 2
# str codes while the vocabulary's ids stay below this; a batch's tokens the pool lacks take
# the ids above it, never a pool token's. Past it, codes are int tuples.
WIDE_AT = MAX_CODE_ID - 2**16
# Hand out ids to the tokens that have none, atomically (an id never changes once given).
_ASSIGN_IDS = """
local out = {}
for i, token in ipairs(ARGV) do
    local id = redis.call('hget', KEYS[1], token)
    if not id then
        id = redis.call('hincrby', KEYS[1], '', 1)
        redis.call('hset', KEYS[1], token, id)
    end
    out[i] = tonumber(id)
end
return out
"""
_STRLENS = """
local out = {}
for i, name in ipairs(KEYS) do
    out[i] = redis.call('strlen', name)
end
return out
"""
# The stored values of members given as packed <u4 numbers, as one string: each value after
# its <u4 length (0xFFFFFFFF: no such member). One reply, so the client parses one string,
# not one per member.
_MEMBERS = """
local parts = {}
for i = 1, #ARGV[1], 4 do
    local value = redis.call('hget', KEYS[1], tostring(struct.unpack('<I4', ARGV[1], i)))
    if value then
        parts[#parts + 1] = struct.pack('<I4', #value) .. value
    else
        parts[#parts + 1] = struct.pack('<I4', 4294967295)
    end
end
return table.concat(parts)
"""
_MISSING = 0xFFFFFFFF
_ASSIGN_CHUNK = 10_000  # tokens per script call
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
        self._meta, self._keys, self._members = f"{base}:meta", f"{base}:k", f"{base}:m"
        self._vocab = f"{base}:v"
        self._lock = f"{base}.build"  # outside base:* so that wipe() keeps it
        self._renew = client.register_script(_RENEW_IF_OWNER)
        self._assign_ids = client.register_script(_ASSIGN_IDS)
        self._strlens = client.register_script(_STRLENS)
        self._fetch_members = client.register_script(_MEMBERS)
        # Whether the codes of the last encode_many are int tuples (see WIDE_AT), and how many
        # ids the vocabulary had given then.
        self._wide = False
        self._known = 0

    def _posting(self, element: tuple[Any, int]) -> str:
        return f"{self.base}:p:{element[0]}{SEP}{element[1]}"

    def __len__(self) -> int:
        """Number of keys in the pool."""
        return int(self._call(self.client.hget, self._meta, "count") or 0)

    def encode_many(self, token_lists: Sequence[Sequence[str]]) -> list[Encoded]:
        """The codes of token lists in the pool's shared ids (one round trip, nothing written).

        Tokens the pool lacks get ids of this call only, above every pool id, so they match
        each other within the call and nothing in the pool. The codes are str while the
        vocabulary fits below :data:`WIDE_AT`, int tuples beyond; the next :meth:`candidates`
        returns the pool's codes in the same form, and leaves out a member added since with
        a token that had no id here (to these codes it is not in the pool yet: its tokens
        could not be compared).
        """
        distinct = list(dict.fromkeys(t for tokens in token_lists for t in tokens))
        found, count = [], None
        if distinct:
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.hmget(self._vocab, distinct)
                    pipe.hget(self._vocab, "")
                    found, count = pipe.execute()
            except redis.RedisError as exc:
                raise IndexStorageError(f"shared index {self.base}: {exc}") from exc
        ids: dict[str, int] = {}
        for token, raw in zip(distinct, found, strict=True):
            ids[token] = int(raw) if raw is not None else -(len(ids) + 1)
        self._known = int(count or 0)
        self._wide = self._known >= WIDE_AT or len(ids) >= MAX_CODE_ID - WIDE_AT
        if self._wide:
            return [tuple([ids[t] for t in tokens]) for tokens in token_lists]
        char = {t: code_point(i if i > 0 else WIDE_AT - i) for t, i in ids.items()}
        return ["".join([char[t] for t in tokens]) for tokens in token_lists]

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
                ids = self._ids_for(fresh)
                pipe.multi()
                self._write(pipe, fresh, count, ids)
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

    def _ids_for(self, entries: Sequence[PoolEntry]) -> dict[str, int]:
        """The vocabulary's ids of the entries' tokens, handing out new ones (written at once:
        an id given to a token that is then not added costs nothing)."""
        distinct = list(dict.fromkeys(t for e in entries for t in e.tokens))
        ids: dict[str, int] = {}
        for start in range(0, len(distinct), _ASSIGN_CHUNK):
            chunk = distinct[start : start + _ASSIGN_CHUNK]
            got = self._call(self._assign_ids, keys=[self._vocab], args=chunk)
            ids.update(zip(chunk, (int(i) for i in got), strict=True))
        return ids

    def _write(
        self, pipe: Any, entries: Sequence[PoolEntry], first: int, ids: dict[str, int]
    ) -> None:
        """Queue the commands that add ``entries`` as members ``first``, ``first + 1``...

        ``ids`` holds the vocabulary's id of every token of the entries (:meth:`_ids_for`).
        """
        if not entries:
            return
        postings: dict[str, list[tuple[int, int]]] = {}
        keys, members = {}, {}
        lengths = [len(e.tokens) for e in entries]
        flat = np.fromiter((ids[t] for e in entries for t in e.tokens), np.int64, sum(lengths))
        points = code_points(flat).astype("<u4").tobytes()
        end = 0
        for member, e in enumerate(entries, start=first):
            keys[e.key] = member
            key = e.key.encode()
            start, end = end, end + 4 * len(e.tokens)
            members[member] = len(key).to_bytes(2, "little") + key + points[start:end]
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
                ids = self._ids_for(chunk)
                with self.client.pipeline(transaction=False) as pipe:
                    self._write(pipe, chunk, count, ids)
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

        Three round trips for the whole batch: posting sizes, the shortest posting lists each
        query must probe (any ``probe_size`` of them is exact), member codes (in the form of
        the last :meth:`encode_many`'s codes).
        """
        per_query = [[self._posting(e) for e in elements(q)] for q in queries]
        names = list(dict.fromkeys(n for names in per_query for n in names))
        if not names:
            return [[] for _ in queries]
        sizes = dict(zip(names, self._call(self._strlens, keys=names), strict=True))
        probes = []
        for q, names_q in zip(queries, per_query, strict=True):
            probe = probe_size(self.threshold, len(q))
            probes.append((probe, sorted(names_q, key=sizes.__getitem__)[:probe]))
        wanted = list(dict.fromkeys(n for _, chosen in probes for n in chosen if sizes[n]))
        got = self._call(self.client.mget, wanted) if wanted else []
        lists = dict(zip(wanted, got, strict=True))
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
        packed = np.array(needed, dtype="<u4").tobytes()
        blob = b""
        if needed:
            blob = self._call(self._fetch_members, keys=[self._members], args=[packed])
        decoded: dict[int, tuple[str, Encoded] | None] = {}
        known = code_point(min(self._known, MAX_CODE_ID))
        at = 0
        for member in needed:
            size = int.from_bytes(blob[at : at + 4], "little")
            if size == _MISSING:
                raise IndexStorageError(f"shared index {self.base}: member {member} has no tokens")
            raw, at = blob[at + 4 : at + 4 + size], at + 4 + size
            start = 2 + int.from_bytes(raw[:2], "little")
            code = self._code(raw[start:], known)
            decoded[member] = None if code is None else (raw[2:start].decode(), code)
        return [
            [hit for m in kept.tolist() if (hit := decoded[m]) is not None]
            for kept in kept_per_query
        ]

    def _code(self, body: bytes, known: str) -> Encoded | None:
        """A member's stored code points as a code comparable with the last encode_many's;
        None when it holds an id given after that call (``known``: its last id's character)."""
        if not self._wide:
            try:
                code = body.decode("utf-32-le")
            except UnicodeDecodeError:  # an id past Unicode, so given after that call
                return None
            return code if not code or max(code) <= known else None
        ids = token_ids(np.frombuffer(body, dtype="<u4"))
        return tuple(ids.tolist()) if not len(ids) or int(ids.max()) <= self._known else None

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
        f"instructforge:ndx:{RULE_VERSION}.{TOKENS_VERSION}.{LAYOUT_VERSION}:{database_name}:"
        f"{run_id}:"
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
