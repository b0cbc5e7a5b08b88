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

* ``base:meta``, a hash: ``mark`` (committed iteration), ``count`` (members), ``threshold``
  (the one the posting lists were cut for: a pool serves that threshold only), ``epoch``
  (set when a build from scratch starts: a batch checked while the copy was wiped or rebuilt
  under it sees the epoch or mark change and raises :class:`filters.errors.IndexUnavailable`
  rather than decide with token ids and posting lists of two copies);
* ``base:k``, a hash: task key -> member number;
* ``base:v``, a hash: the pool's vocabulary, ROUGE-L token -> token id (from 1, handed out
  once by a script, so every worker encodes alike); field ``""`` counts the ids given;
* ``base:m``, a hash: member number -> the key's length (``<u2``), the key, and the member's
  tokens as the code points of their ids (``<u4``, :func:`filters.rouge.code_points`): what
  the exact rule needs, one ``HMGET`` away and decoded by one ``utf-32-le`` decode, with no
  re-tokenizing or re-encoding of pool text in the worker;
* ``base:p:<token id>.<occurrence>[,<token id>.<occurrence>]``, strings: the posting list
  of one element or of a pair of elements, packed entries of 16 bytes: ``<u4`` member and
  token count, and the member's ``<u8`` sketch (:func:`filters.candidates.sketch_bound`,
  which prunes most members before their codes are fetched), grown by ``APPEND``. A member
  is listed under the pairs of its prefix only (:func:`filters.candidates.prefix_lists`:
  its rarest elements in the global order of token ids, which a build from scratch hands
  out commonest first), and alone only where a partner may need one shared token or is
  longer than :data:`filters.candidates.PAIRS_UP_TO`; so common words, whose lists would
  grow with the pool, are seldom listed, and a pair of them far more seldom than either.

A batch of candidates costs three round trips, whatever its size: the ids of its tokens, the
posting lists of the queries' prefixes (``MGET``), and the codes of the members that may pass
(a script). No command names or returns more than :data:`READ_CHUNK` items (keys, fields,
members): a longer one is cut into several, sent in one pipeline, so a reply stays bounded
at any pool size (a single posting list is at most 20 bytes per member listed under it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import redis

from filters.candidates import (
    Listing,
    element_bits,
    elements,
    min_lcs,
    prefix_lists,
    sketch,
    sketch_bound,
)
from filters.errors import IndexStorageError, IndexUnavailable
from filters.near_duplicates import RULE_VERSION, NearDuplicateIndex, PoolEntry
from filters.rouge import (
    MAX_CODE_ID,
    TOKENS_VERSION,
    Encoded,
    code_point,
    code_points,
    rouge_tokenize,
    token_ids,
)

# 1: members stored as their tokens joined by "\x1f". 2: as the code points of shared token ids.
# 3: posting lists of prefixes only, named by token id, with the element's position.
# 4: posting lists of pairs of prefix elements (single elements where one shared token may
#    pass or a partner is long), no position; a build ranks the vocabulary by frequency.
LAYOUT_VERSION = 4
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
# The stored values of members given as packed <u4 numbers, split into four strings: the
# keys' byte lengths and the codes' byte lengths (packed <u4; 0xFFFFFFFF: no such member),
# the keys joined, the codes joined. So the client parses four strings, not one per member,
# and decodes all the codes with one utf-32 decode.
_MEMBERS = """
local key_lengths, code_lengths, keys, codes = {}, {}, {}, {}
for i = 1, #ARGV[1], 4 do
    local value = redis.call('hget', KEYS[1], tostring(struct.unpack('<I4', ARGV[1], i)))
    if value then
        local size = struct.unpack('<I2', value)
        key_lengths[#key_lengths + 1] = struct.pack('<I4', size)
        code_lengths[#code_lengths + 1] = struct.pack('<I4', #value - 2 - size)
        keys[#keys + 1] = string.sub(value, 3, 2 + size)
        codes[#codes + 1] = string.sub(value, 3 + size)
    else
        key_lengths[#key_lengths + 1] = struct.pack('<I4', 4294967295)
        code_lengths[#code_lengths + 1] = struct.pack('<I4', 0)
    end
end
return {table.concat(key_lengths), table.concat(code_lengths), table.concat(keys),
        table.concat(codes)}
"""
# Append to many posting lists in one command: ARGV[1] the pieces joined, ARGV[2] their
# byte lengths (packed <u4), one per key. A build touches ~10 lists per member (most of
# them new pairs), and one APPEND each cost more in the client than the whole index.
_APPEND_ALL = """
local data, sizes, at = ARGV[1], ARGV[2], 1
for i, key in ipairs(KEYS) do
    local size = struct.unpack('<I4', sizes, 4 * i - 3)
    redis.call('append', key, string.sub(data, at, at + size - 1))
    at = at + size
end
return #KEYS
"""
_MISSING = 0xFFFFFFFF
# Items (keys, hash fields, members, tokens) per command: bounds every request and reply.
READ_CHUNK = 1_000
_POSTING = np.dtype([("member", "<u4"), ("length", "<u4"), ("sketch", "<u8")])
# Seconds a client waits on a Redis socket: a stalled server is an error, not a hang; far
# above any bounded reply (READ_CHUNK items) on a loaded machine. A redis:// URL's own
# socket_timeout / socket_connect_timeout parameters take precedence.
SOCKET_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
BUILD_CHUNK = 20_000  # entries per pipeline when a pool is built from scratch
# Texts sampled, at a build from scratch, to order the vocabulary by frequency (RedisPool.
# rebuild): ~0.5 s of tokenizing, and plenty to tell common words from rare ones.
VOCABULARY_SAMPLE = 50_000
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
        self._fetch_members = client.register_script(_MEMBERS)
        self._append_all = client.register_script(_APPEND_ALL)
        # Whether the codes of the last encode_many are int tuples (see WIDE_AT), how many
        # ids the vocabulary had given then, and the ids it gave its tokens (<= 0: none).
        self._wide = False
        self._known = 0
        self._ids: dict[str, int] = {}
        # The copy the last encode_many read: (epoch, mark) of base:meta then; and whether
        # this pool was ever seen with a mark (from then on a copy without one is a lost one).
        self._copy: tuple[bytes | None, bytes | None] = (None, None)
        self._marked = False

    def _posting(self, listing: Listing) -> str:
        return f"{self.base}:p:" + ",".join([f"{t}.{k}" for t, k in listing])

    def _chunked(self, command: str, key: str | None, items: Sequence[Any]) -> list[Any]:
        """``command`` over ``items`` in commands of READ_CHUNK items at most, one pipeline
        (one round trip); the replies joined. ``key``: the hash the command reads, if any."""
        if not items:
            return []
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for start in range(0, len(items), READ_CHUNK):
                    chunk = list(items[start : start + READ_CHUNK])
                    getattr(pipe, command)(*([key] if key else []), chunk)
                return [v for reply in pipe.execute() for v in reply]
        except redis.RedisError as exc:
            raise self._failed(exc) from exc

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
        found: list[Any] = []
        count = None
        if distinct:
            # The count first: every id handed out after it is above it, so a member holding
            # one is left out (see candidates), whether or not this read saw the id.
            try:
                with self.client.pipeline(transaction=False) as pipe:
                    pipe.hmget(self._meta, ["epoch", "mark"])
                    pipe.hget(self._vocab, "")
                    for start in range(0, len(distinct), READ_CHUNK):
                        pipe.hmget(self._vocab, distinct[start : start + READ_CHUNK])
                    copy, count, *chunks = pipe.execute()
            except redis.RedisError as exc:
                raise self._failed(exc) from exc
            self._copy = (copy[0], copy[1])
            self._marked = self._marked or copy[1] is not None
            found = [v for chunk in chunks for v in chunk]
        ids: dict[str, int] = {}
        for token, raw in zip(distinct, found, strict=True):
            ids[token] = int(raw) if raw is not None else -(len(ids) + 1)
        self._ids = ids
        self._known = int(count or 0)
        self._wide = self._known >= WIDE_AT or len(ids) >= MAX_CODE_ID - WIDE_AT
        if self._wide:
            return [tuple([ids[t] for t in tokens]) for tokens in token_lists]
        char = {t: code_point(i if i > 0 else WIDE_AT - i) for t, i in ids.items()}
        return ["".join([char[t] for t in tokens]) for tokens in token_lists]

    def mark(self) -> int | None:
        """The committed iteration the pool holds, or None when it holds no complete copy
        (or one cut for another threshold: it is rebuilt for this one)."""
        raw, threshold = self._call(self.client.hmget, self._meta, ["mark", "threshold"])
        self._marked = self._marked or raw is not None
        if raw is None or (threshold is not None and float(threshold) != self.threshold):
            return None
        return int(raw)

    def present(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` already in the pool."""
        found = self._chunked("hmget", self._keys, keys)
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
                now = pipe.hmget(self._meta, ["mark", "count", "threshold"])
                if now[2] is not None and float(now[2]) != self.threshold:
                    raise IndexStorageError(
                        f"shared index {self.base}: cut for threshold {float(now[2])}, "
                        f"not {self.threshold}"
                    )
                if (None if now[0] is None else int(now[0])) != expected:
                    return False
                count = int(now[1] or 0)
                keys = [e.key for e in entries]
                flags = [
                    f
                    for start in range(0, len(keys), READ_CHUNK)
                    for f in pipe.hmget(self._keys, keys[start : start + READ_CHUNK])
                ]
                fresh = [e for e, f in zip(entries, flags, strict=True) if f is None]
                ids = self._ids_for(fresh)
                pipe.multi()
                self._write(pipe, fresh, count, ids)
                fields: dict[str, int | str] = {
                    "count": count + len(fresh),
                    "threshold": repr(self.threshold),
                }
                if mark is not None:
                    fields["mark"] = mark
                pipe.hset(self._meta, mapping=fields)  # type: ignore[arg-type]
                pipe.execute()
            except redis.WatchError:
                return False
            except redis.RedisError as exc:
                raise self._failed(exc) from exc
        return True

    def _ids_for(self, entries: Sequence[PoolEntry]) -> dict[str, int]:
        """The vocabulary's ids of the entries' tokens, handing out new ones (written at once:
        an id given to a token that is then not added costs nothing)."""
        distinct = list(dict.fromkeys(t for e in entries for t in e.tokens))
        ids: dict[str, int] = {}
        for start in range(0, len(distinct), READ_CHUNK):
            chunk = distinct[start : start + READ_CHUNK]
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
        # Each listing of each entry as (posting list number, entry number): the entries are
        # packed with one numpy pass and cut per list, not one small array per list.
        postings: dict[str, int] = {}
        listed: list[int] = []
        listing_entry: list[int] = []
        keys, members = {}, {}
        lengths = [len(e.tokens) for e in entries]
        flat = np.fromiter((ids[t] for e in entries for t in e.tokens), np.int64, sum(lengths))
        points = code_points(flat).astype("<u4").tobytes()
        occurrences = np.fromiter(
            (k for e in entries for _, k in elements(e.tokens)), np.int64, len(flat)
        )
        starts = np.cumsum([0, *lengths[:-1]])
        sketches = np.zeros(len(entries), dtype=np.uint64)
        nonempty = np.array(lengths) > 0
        if nonempty.any():
            sketches[nonempty] = sketch(flat, occurrences, starts[nonempty])
        end = 0
        for member, e in zip(range(first, first + len(entries)), entries, strict=True):
            keys[e.key] = member
            key = e.key.encode()
            start, end = end, end + 4 * len(e.tokens)
            members[member] = len(key).to_bytes(2, "little") + key + points[start:end]
            for listing in prefix_lists([ids[t] for t in e.tokens], self.threshold):
                listed.append(postings.setdefault(self._posting(listing), len(postings)))
                listing_entry.append(member - first)
        names = list(keys)
        for start in range(0, len(names), READ_CHUNK):
            chunk = names[start : start + READ_CHUNK]
            pipe.hset(self._keys, mapping={k: keys[k] for k in chunk})
            pipe.hset(self._members, mapping={keys[k]: members[keys[k]] for k in chunk})
        if not listed:
            return
        which = np.array(listing_entry, dtype=np.int64)
        rows = np.zeros(len(which), dtype=_POSTING)
        rows["member"] = first + which
        rows["length"] = np.array(lengths, dtype=np.int64)[which]
        rows["sketch"] = sketches[which]
        # Stable: a list's new entries stay in member order, as one APPEND each would leave.
        packed = rows[np.argsort(np.array(listed), kind="stable")].tobytes()
        sizes = np.bincount(listed, minlength=len(postings)) * _POSTING.itemsize
        ends = np.r_[0, np.cumsum(sizes)].tolist()
        names = list(postings)
        for start in range(0, len(names), READ_CHUNK):
            stop = min(start + READ_CHUNK, len(names))
            self._append_all(
                keys=names[start:stop],
                args=[packed[ends[start] : ends[stop]], sizes[start:stop].astype("<u4").tobytes()],
                client=pipe,
            )

    def rebuild(
        self,
        chunks: Iterable[Sequence[PoolEntry]],
        mark: int,
        *,
        owner: str,
        sample: Sequence[Sequence[str]] = (),
    ) -> None:
        """Replace the whole pool by the entries of ``chunks`` (a first build, or one after
        Redis lost the pool).

        ``sample``: token lists (a sample of the pool's texts) whose token counts order the
        vocabulary before anything is written: the commonest token gets id 1, and so on, so
        that prefixes (rarest ids first) skip common words (see :meth:`_rank_vocabulary`).

        Written chunk by chunk outside a transaction (a chunk is prepared only when the one
        before is written, so a million-task pool is never all in memory at once). The mark
        is set last: a build that dies half-way leaves no mark, and the next one starts
        again from a wiped pool. ``owner`` must hold the build lock; it is renewed at each
        chunk, and the build stops if another worker took it (its lock had expired).
        """
        try:
            self._hold(owner)
            self.wipe()
            # Before any id is handed out: a reader that saw the old copy now sees a new epoch.
            self.client.hset(self._meta, "epoch", f"{owner}:{time.time_ns()}")
            self._rank_vocabulary(sample)
            count = 0
            for chunk in chunks:
                self._hold(owner)
                ids = self._ids_for(chunk)
                with self.client.pipeline(transaction=False) as pipe:
                    self._write(pipe, chunk, count, ids)
                    pipe.execute()
                count += len(chunk)
            self.client.hset(
                self._meta,
                mapping={"count": count, "mark": mark, "threshold": repr(self.threshold)},
            )
        except redis.RedisError as exc:
            raise self._failed(exc) from exc

    def _rank_vocabulary(self, sample: Sequence[Sequence[str]]) -> None:
        """Give the tokens of ``sample`` the first ids, commonest first (ties: first seen).

        Prefixes hold a text's elements of the highest ids. Ids handed out as tokens are
        first seen put a common word seen late (a request frame such as "please", "could")
        into most prefixes, and its posting list grows with the pool: at 1M paraphrase tasks
        such lists held ~60k entries fetched per candidate. Ranked by frequency, prefixes hold
        rare words. Any fixed order is exact, so a sample suffices, and tokens it lacks (or
        a pool adds later) take the ids after it, as rare ones.
        """
        # most_common orders equal counts as first encountered.
        counts = Counter(token for tokens in sample for token in tokens)
        self._ids_for([PoolEntry("", [token for token, _ in counts.most_common()], "")])

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

        Two round trips for the whole batch: the posting lists of the queries' prefixes, and
        the codes of the members that may pass (in the form of the last :meth:`encode_many`'s
        codes; its token ids order the prefixes, so the queries must be of its token lists).
        """
        if not any(queries):  # texts without tokens match nothing
            return [[] for _ in queries]
        if any(t not in self._ids for q in queries for t in q):
            self.encode_many(queries)  # a caller that did not encode these tokens
        query_ids = [[self._ids[t] for t in q] for q in queries]
        names = [[self._posting(p) for p in prefix_lists(ids, self.threshold)] for ids in query_ids]
        wanted = list(dict.fromkeys(name for n in names for name in n))
        lists = dict(zip(wanted, self._chunked("mget", None, wanted), strict=True))
        kept_per_query = []
        for ids, probed in zip(query_ids, names, strict=True):
            found = [np.frombuffer(raw, dtype=_POSTING) for n in probed if (raw := lists[n])]
            kept_per_query.append(self._may_pass(ids, found))
        needed = np.unique(np.concatenate(kept_per_query)).tolist() if kept_per_query else []
        replies = self._member_replies(needed)
        decoded: dict[int, tuple[str, Encoded] | None] = {}
        for chunk, reply in zip(
            (needed[i : i + READ_CHUNK] for i in range(0, len(needed), READ_CHUNK)),
            replies,
            strict=True,
        ):
            decoded.update(zip(chunk, self._decode(chunk, reply), strict=True))
        return [
            [hit for m in kept.tolist() if (hit := decoded[m]) is not None]
            for kept in kept_per_query
        ]

    def _check_copy(self, now: list[bytes | None]) -> None:
        """Raise IndexUnavailable unless the copy read now (``[epoch, mark]`` of ``base:meta``)
        is the one the last encode_many read, complete both times.

        Otherwise the batch's token ids, posting lists and members would come from two
        copies (Redis lost the copy and a worker rebuilt it with its own ranking), from a
        half-built one, or from a lost one whose lists are gone: a false duplicate or a miss.
        A copy is complete when it has a mark; a pool only ever filled by ``add`` (no build
        from scratch, no mark, no epoch) is checked by its epoch alone.
        """
        (epoch, mark), (epoch_now, mark_now) = self._copy, (now[0], now[1])
        expect_mark = self._marked or epoch is not None
        if epoch_now != epoch or (expect_mark and (mark is None or mark_now is None)):
            raise IndexUnavailable(
                f"shared index {self.base}: the copy was lost or rebuilt during the batch"
            )

    def _decode(self, members: list[int], reply: list[bytes]) -> list[tuple[str, Encoded] | None]:
        """``(key, code)`` of each member from one ``_MEMBERS`` reply; None for a member
        holding an id given after the last encode_many (its code could not be compared)."""
        key_lengths = np.frombuffer(reply[0], dtype="<u4").astype(np.int64)
        if (key_lengths == _MISSING).any():
            member = members[int(np.argmax(key_lengths == _MISSING))]
            raise IndexStorageError(f"shared index {self.base}: member {member} has no tokens")
        key_ends = np.cumsum(key_lengths).tolist()
        code_lengths = np.frombuffer(reply[1], dtype="<u4").astype(np.int64) // 4
        code_ends = np.cumsum(code_lengths)
        code_starts = code_ends - code_lengths
        points = np.frombuffer(reply[3], dtype="<u4")
        ids = token_ids(points)
        late = ids > self._known
        # A member holding an id past the last encode_many's: a running count of such ids.
        newer = np.r_[0, np.cumsum(late)]
        fresh = newer[code_ends] == newer[code_starts]
        if self._wide:
            codes: list[Encoded] = [
                tuple(ids[a:b].tolist()) for a, b in zip(code_starts, code_ends, strict=True)
            ]
        else:
            # Ids past the last encode_many may lie past Unicode: decode the others only.
            text = points.copy()
            text[late] = 0
            whole = text.tobytes().decode("utf-32-le")
            spans = zip(code_starts.tolist(), code_ends.tolist(), strict=True)
            codes = [whole[a:b] for a, b in spans]
        keys = reply[2]
        out: list[tuple[str, Encoded] | None] = []
        start = 0
        for end, code, ok in zip(key_ends, codes, fresh.tolist(), strict=True):
            out.append((keys[start:end].decode(), code) if ok else None)
            start = end
        return out

    def _may_pass(self, query_ids: list[int], found: list[np.ndarray]) -> np.ndarray:
        """Members of a query's probed posting lists (``found``) whose length and sketch may
        pass the threshold, as an int64 array (each member once).

        ``query_ids``: the query's token ids (<= 0: a token the pool lacks)."""
        if not found:
            return np.empty(0, dtype=np.int64)
        both = np.concatenate(found)
        m = len(query_ids)
        known = [(i, k) for i, k in elements(query_ids) if i > 0]
        bits = element_bits(np.array([i for i, _ in known]), np.array([k for _, k in known]))
        n = both["length"].astype(np.int64)
        need = min_lcs(self.threshold, m, n)
        keep = (need <= np.minimum(m, n)) & (sketch_bound(bits, both["sketch"]) >= need)
        kept: np.ndarray = np.unique(both["member"][keep]).astype(np.int64)
        return kept

    def _member_replies(self, members: list[int]) -> list[list[bytes]]:
        """The stored values of ``members`` (see ``_MEMBERS``), READ_CHUNK members a script
        call, one pipeline; then the copy is checked to be the one the batch was encoded
        against (:meth:`_check_copy`), in the same round trip.

        Raises:
            IndexUnavailable: The copy changed since the last encode_many.
        """
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for start in range(0, len(members), READ_CHUNK):
                    packed = np.array(members[start : start + READ_CHUNK], dtype="<u4").tobytes()
                    self._fetch_members(keys=[self._members], args=[packed], client=pipe)
                pipe.hmget(self._meta, ["epoch", "mark"])
                *replies, copy = pipe.execute()
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        self._check_copy(copy)
        return replies

    def _failed(self, exc: redis.RedisError) -> IndexStorageError:
        """The filters error for a Redis failure: IndexUnavailable when the server could not
        be reached or did not answer in time (worth retrying later), else IndexStorageError."""
        message = f"shared index {self.base}: {exc}"
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            return IndexUnavailable(message)
        return IndexStorageError(message)

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise self._failed(exc) from exc


def connect(url: str) -> redis.Redis:
    """A client for the shared pools at ``url`` (redis://host:port/db), with socket timeouts
    (:data:`SOCKET_TIMEOUT_S`, :data:`CONNECT_TIMEOUT_S`) unless the URL sets its own."""
    client: redis.Redis = redis.Redis.from_url(
        url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S
    )
    return client


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
        if mark is not None:
            committed, items = read_committed(mark)
            if committed == mark:
                return mark
            if committed > mark:
                if pool.advance(index.prepare_new(items), expected=mark, mark=committed):
                    return committed
                continue
            # The copy holds iterations the database does not (it was restored from a
            # backup, or another database shares its name): its tasks would be false
            # duplicates. Build it again, under the build lock like any build: a wipe without
            # it could land inside another worker's build of this copy and delete what that
            # build wrote before its mark (a copy marked complete that misses tasks).
        if _build(index, pool, read_committed, owner=owner):
            continue
        if time.monotonic() > deadline:
            raise IndexStorageError(f"shared index {pool.base}: a build did not finish")
        time.sleep(0.2)


def _build(
    index: NearDuplicateIndex, pool: RedisPool, read_committed: CommittedReader, *, owner: str
) -> bool:
    """Build the pool from scratch from the database (:meth:`RedisPool.rebuild`, which wipes
    it first), holding the build lock; False when another worker holds it."""
    if not pool.build_lock(owner):
        return False
    try:
        committed, items = read_committed(None)
        chunks = (
            index.prepare(items[i : i + BUILD_CHUNK]) for i in range(0, len(items), BUILD_CHUNK)
        )
        # Evenly spread over the pool (its texts come in creation order).
        every = max(1, len(items) // VOCABULARY_SAMPLE)
        sample = [rouge_tokenize(text) for _, text, _ in items[::every]]
        pool.rebuild(chunks, committed, owner=owner, sample=sample)
    finally:
        pool.release_build_lock(owner)
    return True
