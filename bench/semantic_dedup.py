"""Semantic near-duplicates: recall on paraphrases, false rejects, cost per candidate.

Quality, at several cosine thresholds, against the ROUGE-L rule (> 0.7) on the same items:
* hand-written rewordings of seed tasks (``bench/semantic_pairs.py``) against the 175 seeds;
* rule-based paraphrases (``bench/paraphrases.py``, 4 operations) of Alpaca instructions
  against the pool they came from;
* false rejects on distinct tasks: each seed task against the other 174, and the 252
  user-oriented instructions against the seeds.

Cost per candidate at pools of 10k and 100k texts (``bench/embedding_cache.py``), measured
in the same run as the ROUGE-L index (``filters.near_duplicates.NearDuplicateIndex``): the
candidates embedded in batches of 32 and of 64 (as the pipeline embeds an iteration's
survivors: one forward pass per batch for fp32 MiniLM, one per text for the int8 encoder),
then queried in batches of 100
(FAISS HNSW as shipped, FAISS flat = exact, and usearch HNSW when installed); HNSW recall
is the share of candidates whose decision and nearest key equal the exact search's. Pool
embeddings are cached (``python bench/embedding_cache.py`` fills the cache: about an hour for
100k on a loaded 2-core CPU); a pool not fully cached gets a stand-in for the embedding index
only (:func:`surrogate_pool`, named in the row's ``pool_vectors``).

The threshold is picked from the measured curve (every 0.025 from 0.6): the lowest with at
most 1% false rejects on both distinct-task sets.

The default encoder, ``all-MiniLM-L6-v2-int8`` (result file ``semantic_dedup.json``; prepared
by ``instructforge model prepare``), embeds one text per forward pass, so a text's vector does
not depend on its batch. Measured 2026-12-01 at load 12-20 on the 2 cores, real pool vectors at
both sizes (100k embed in about 4 CPU minutes): picked threshold 0.775, the shipped value;
there rule paraphrases 0.96, hand rewordings 0.156, false rejects 0 (seeds) and 0.008 (user vs
seeds). At 100k, CPU ms per candidate: embedding 2.19, HNSW query 0.27 (decisions equal to
exact search; exact 12.1), so the rule costs 2.46, goal (under 5) met, against ROUGE-L's 0.39
in the same run; wall 7.8 + 1.2 = 8.9 ms (ROUGE-L 1.3). At 10k: 3.24 + 0.18 = 3.41 CPU ms
(ROUGE-L 0.16; each pool size has its own 200 candidates, and the load varied). Before this,
padded batches cost 6.3 CPU ms a text (batch 32) and moved a text's vector with its batch
mates (dynamic quantisation scales activations per tensor).

fp32 MiniLM (``--model all-MiniLM-L6-v2``, result file ``semantic_dedup_fp32.json``): measured
2026-11-30 (load average 19-27 on
the 2 cores: eight sessions at work): picked 0.8, the shipped value; there hand-reworded
recall is 0.094 (0.5 needs 0.675, where 10% of seeds and 5% of user tasks are rejected), rule
paraphrases 0.96, false rejects 0 (seeds) and 0.008 (user vs seeds). Cost at 100k (stand-in
vectors): ROUGE-L 1.7 ms, HNSW query 2.0 ms (decisions equal to exact search), embedding 175
ms at batch 64 and 212 ms at 32 (24 ms at batch 100 on a quieter machine before): the
embedding forward pass is the whole cost, and batching does not bring it near 5 ms. In the
same run as the int8 encoder's (2026-12-01, load 20-24, torch's default threads): at 100k
(stand-in vectors) 25.9 CPU ms per candidate (embedding 25.5 at batch 64, HNSW 0.36; ROUGE-L
0.49), the same curve and picked 0.8; the int8 encoder at 0.775 has its recall and false
rejects (hand rewordings 0.156 against 0.094) at a tenth of its cost.

``--model all-MiniLM-L6-v2-static`` measures the static encoder model2vec distils from the
same MiniLM (``instructforge model prepare --static-encoder``; result file
``semantic_dedup_static.json``), on real pool vectors at both sizes (no stand-in: 100k texts
embed in about 10 CPU seconds). Run again beside the int8 encoder (2026-12-01, load 21-23):
0.31 CPU ms per candidate at 100k (embedding 0.09, HNSW 0.23; ROUGE-L 0.45), picked 0.9 again
(rule paraphrases 0.79, hand 0). Measured 2026-12-01 at load 20-28, the run before: at
100k, CPU ms per candidate: embedding 0.10, HNSW query 0.46 (decisions equal to exact search),
so the rule costs 0.56, against ROUGE-L's 0.56 in the same run; wall ms 0.91 + 2.63 = 3.55
(ROUGE-L 5.5). At 10k: 0.18 + 0.28 = 0.46 CPU ms (ROUGE-L 0.41). An earlier run at the same
load gave 0.56 CPU ms at 100k again, and 9.8 wall ms (wall time here is mostly waiting).
Its curve is clearly worse than MiniLM's: distinct seeds reach 0.89 to each other,
so the picked threshold is 0.9 (false rejects 0 on seeds, 0.008 user vs seeds), where it finds
79% of rule paraphrases (MiniLM at 0.8: 96%) and none of the 32 hand rewordings (MiniLM: 9%).
It ships as an option with that threshold; MiniLM (int8 now) stays the default. The goal is on
CPU time from this run on (the wall figures stay in the rows).

``--cascade`` measures MiniLM's own CPU cost per candidate and the pair "static encoder
shortlist, MiniLM re-check" (:func:`cascade_rows`; result file ``semantic_dedup_cascade.json``):
the static encoder's HNSW index gives each candidate its :data:`SHORTLIST` nearest pool texts;
a candidate whose nearest static cosine is below ``t_low`` is kept without MiniLM; the others
are embedded by MiniLM and compared with the stored MiniLM vectors of their shortlist only
(rejected above MiniLM's threshold, 0.8). Quality on the same sets as above (exact search;
the MiniLM-alone figure is computed the same way beside it); cost at 10k and 100k, every step
in CPU ms per candidate, with the share of candidates re-checked (the bench's candidates are
half paraphrases of pool texts, so that share is higher than a run's). MiniLM runs on one
torch thread (``torch.set_num_threads(1)``: on the shared 2-core machine a second thread
costs CPU without saving it).

Measured 2026-12-01 (load 9-14 on the 2 cores; CPU time, one torch thread), the committed
run: **MiniLM alone does not meet the goal**: embedding 11.7 CPU ms per candidate at 100k
(13.4 at 10k) on the bench's candidates; on 640 shorter Alpaca instructions at batch 64 it is
5.0-6.0 CPU ms (load 1-16, measured beside this bench), so even before the HNSW query
(0.36 CPU ms) MiniLM's forward pass alone is at or above 5 ms. **The pair does not rescue it**:
in a 100k pool almost every candidate has a static neighbour above any useful ``t_low``
(re-checked share at 0.7: 0.945 at 100k, 0.84 at 10k; half the candidates are paraphrases,
so about 90% of the distinct ones are re-checked too), so the pair costs about what MiniLM
alone costs (11-15 CPU ms at 100k; the differences between ``t_low`` values are noise at this
load). Its quality at ``t_low`` 0.7: rule paraphrases 0.953 (MiniLM alone 0.960, same
counting: rejected by any pool text), hand rewordings 0.031 (0.094), false rejects 0 on
seeds and 0.008 user vs seeds (same as MiniLM). Outside this bench (an ad hoc script, not
shipped): MiniLM exported to ONNX and run by onnxruntime 1.30 on one thread costs 6.3-6.9
CPU ms (no gain over torch's 5.6-6.0 in the same run); ONNX Runtime's dynamic int8
quantisation (per channel) costs 2.8-3.3 CPU ms, with cosine to the fp32 vectors at least
0.981 (mean 0.993), but 10 of 204,480 pair decisions at 0.8 flip (77 pairs are above 0.8 in
fp32), so it would be a model of its own with its own measured threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.embedding_cache import cached_embeddings, pool_texts
from bench.paraphrases import paraphrase
from bench.result_file import goal, write_result
from bench.semantic_pairs import PARAPHRASES
from filters.embeddings import (
    DEFAULT_MODEL,
    INT8_MODEL,
    STATIC_MODEL,
    OnnxSentenceEncoder,
    SentenceEncoder,
    StaticSentenceEncoder,
    load_encoder,
)
from filters.near_duplicates import NearDuplicateIndex
from filters.rouge import rouge_l_text
from filters.semantic_duplicates import (
    HNSW_EF_CONSTRUCTION,
    HNSW_NEIGHBOURS,
    SemanticDuplicateIndex,
    default_threshold,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
# One result file per encoder: the rule's default (int8 MiniLM) in semantic_dedup.json, the
# shipped rule's figures; fp32 MiniLM's and the static distillation's beside it.
RESULTS = {
    INT8_MODEL: ROOT / "bench" / "results" / "semantic_dedup.json",
    DEFAULT_MODEL: ROOT / "bench" / "results" / "semantic_dedup_fp32.json",
    STATIC_MODEL: ROOT / "bench" / "results" / "semantic_dedup_static.json",
}
CASCADE_RESULT = ROOT / "bench" / "results" / "semantic_dedup_cascade.json"
SHORTLIST = 5  # static neighbours MiniLM re-checks per candidate
T_LOWS = (0.6, 0.65, 0.7, 0.75, 0.8)  # static cosine below which MiniLM is not asked
CASCADE_T_LOW = 0.7  # the goal row's t_low
# The curve the threshold is picked from (recall against false rejects), every 0.025.
THRESHOLDS = tuple(round(0.6 + 0.025 * i, 3) for i in range(15))
MAX_FALSE_REJECT = 0.01  # the picked threshold rejects at most 1% of distinct tasks
MODEL_CACHE = Path(os.environ.get("INSTRUCTFORGE_MODEL_CACHE_DIR", ROOT / "data" / "model-cache"))
POOLS = (10_000, 100_000)
CANDIDATES = 200  # per pool: half paraphrases of pool texts, half user-oriented instructions
BATCH = 100
# Candidates a worker embeds at once: one iteration's survivors of the heuristics and ROUGE-L
# (32 instruction prompts give a few dozen); the forward pass is per batch.
EMBED_BATCHES = (32, 64)
SEED = 7


def _jsonl(name: str) -> list[dict]:
    lines = (SHARED / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def quality_rows(encoder: SentenceEncoder, pool10k: list[str], vecs10k: np.ndarray) -> list[dict]:
    """Recall and false-reject rates per threshold, with ROUGE-L's on the same items."""
    seeds = {t["id"]: t["instruction"] for t in _jsonl("self_instruct_seed_tasks.jsonl")}
    users = [t["instruction"] for t in _jsonl("self_instruct_user_oriented_instructions.jsonl")]
    seed_ids, seed_vecs = list(seeds), encoder.encode(list(seeds.values()))
    hand = encoder.encode([p for _, p in PARAPHRASES])
    hand_cos = [
        float(seed_vecs[seed_ids.index(s)] @ v) for (s, _), v in zip(PARAPHRASES, hand, strict=True)
    ]
    hand_rouge = [rouge_l_text(seeds[s], p) for s, p in PARAPHRASES]
    rng = random.Random(SEED)
    sources = rng.sample(range(len(pool10k)), 300)
    made = [paraphrase(pool10k[i], rng, 4) for i in sources]
    made_vecs = encoder.encode(made)
    made_cos = [float(vecs10k[i] @ v) for i, v in zip(sources, made_vecs, strict=True)]
    made_rouge = [rouge_l_text(pool10k[i], p) for i, p in zip(sources, made, strict=True)]
    gram = seed_vecs @ seed_vecs.T
    np.fill_diagonal(gram, -1.0)
    seed_nearest = gram.max(axis=1)
    user_nearest = (encoder.encode(users) @ seed_vecs.T).max(axis=1)
    rows = []
    for name, cos, rouge in (
        ("hand_paraphrases", hand_cos, hand_rouge),
        ("rule_paraphrases", made_cos, made_rouge),
    ):
        cos, rouge = np.array(cos), np.array(rouge)
        row = {"set": name, "n": len(cos), "rouge_l_recall": float(np.mean(rouge > 0.7))}
        for t in THRESHOLDS:
            row[f"recall@{t}"] = float(np.mean(cos > t))
            row[f"either@{t}"] = float(np.mean((cos > t) | (rouge > 0.7)))
        rows.append(row)
    for name, nearest in (("seeds_vs_seeds", seed_nearest), ("user_vs_seeds", user_nearest)):
        row = {"set": name, "n": len(nearest)}
        row.update({f"false_reject@{t}": float(np.mean(nearest > t)) for t in THRESHOLDS})
        rows.append(row)
    return rows


SURROGATE = "surrogate: random rotations of the real 10k pool's vectors"


def surrogate_pool(encoder: SentenceEncoder, size: int) -> np.ndarray:
    """A pool of ``size`` vectors when the real ones are not cached: rotated copies of 10k.

    Each copy is the real 10k pool's vectors times a random orthogonal matrix: every copy has
    the real neighbourhood structure, and copies are unrelated to each other. The ROUGE-L
    index still gets the real texts; only the embedding index's pool is stand-in.
    """
    base, _ = cached_embeddings(encoder, pool_texts(POOLS[0]))
    assert base is not None
    rng = np.random.default_rng(SEED)
    copies = []
    for _ in range(-(-size // len(base))):
        q, _ = np.linalg.qr(rng.standard_normal((base.shape[1], base.shape[1])))
        copies.append((base @ q).astype(np.float32))
    return np.vstack(copies)[:size]


def _usearch_index(dimension: int) -> Any:
    try:
        from usearch.index import Index
    except ImportError:
        return None
    return Index(ndim=dimension, metric="ip", dtype="f32", connectivity=32, expansion_search=64)


def cost_row(encoder: SentenceEncoder, size: int, shipped: float) -> dict:
    """Cost per candidate of both rules on one pool size; skipped when not cached."""
    texts = pool_texts(size)
    # The static encoder embeds 100k texts in CPU seconds and the int8 one in CPU minutes: no
    # stand-in pool for them (fp32 MiniLM takes 10+ CPU minutes for 100k, most of an hour of
    # wall time on the shared machine: it gets rotated copies of its real 10k vectors).
    cheap = isinstance(encoder, StaticSentenceEncoder | OnnxSentenceEncoder)
    vectors, _ = cached_embeddings(encoder, texts, compute=cheap or size == POOLS[0])
    pool_vectors = "real"
    if vectors is None:
        vectors, pool_vectors = surrogate_pool(encoder, size), SURROGATE
    rng = random.Random(SEED + size)
    # never in an Alpaca pool: the user-oriented instructions
    users = _jsonl("self_instruct_user_oriented_instructions.jsonl")
    unseen = [t["instruction"] for t in users[: CANDIDATES // 2]]
    candidates = [paraphrase(t, rng, 4) for t in rng.sample(texts, CANDIDATES // 2)] + unseen
    keyed = [(f"c{i}", c) for i, c in enumerate(candidates)]
    row: dict = {"pool": size, "pool_vectors": pool_vectors, "candidates": len(candidates)}

    began = time.perf_counter()
    rouge = NearDuplicateIndex()
    rouge.add_many((str(i), t, None) for i, t in enumerate(texts))
    row["rouge_build_s"] = time.perf_counter() - began
    began, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(keyed), BATCH):
        rouge.check_batch(keyed[start : start + BATCH], add_accepted=False)
    row["rouge_ms_per_candidate"] = (time.perf_counter() - began) * 1000 / len(keyed)
    row["rouge_cpu_ms_per_candidate"] = (time.process_time() - cpu) * 1000 / len(keyed)

    for batch in EMBED_BATCHES:
        began, cpu = time.perf_counter(), time.process_time()
        cand_vecs = np.vstack(
            [
                encoder.encode(candidates[s : s + batch], batch_size=batch)
                for s in range(0, len(candidates), batch)
            ]
        )
        row[f"embed_ms_per_candidate@{batch}"] = (time.perf_counter() - began) * 1000 / len(keyed)
        row[f"embed_cpu_ms_per_candidate@{batch}"] = (time.process_time() - cpu) * 1000 / len(keyed)
    row["embed_ms_per_candidate"] = min(row[f"embed_ms_per_candidate@{b}"] for b in EMBED_BATCHES)
    row["embed_cpu_ms_per_candidate"] = min(
        row[f"embed_cpu_ms_per_candidate@{b}"] for b in EMBED_BATCHES
    )
    keys = [str(i) for i in range(size)]
    decisions = {}
    for kind in ("exact", "hnsw"):
        index = SemanticDuplicateIndex(encoder, threshold=shipped, index=kind)
        began = time.perf_counter()
        index.add_vectors(keys, vectors)
        row[f"{kind}_build_s"] = time.perf_counter() - began
        began, cpu = time.perf_counter(), time.process_time()
        found = []
        for s in range(0, len(keyed), BATCH):
            found += index.search(cand_vecs[s : s + BATCH])
        row[f"{kind}_query_ms_per_candidate"] = (time.perf_counter() - began) * 1000 / len(keyed)
        row[f"{kind}_query_cpu_ms_per_candidate"] = (time.process_time() - cpu) * 1000 / len(keyed)
        decisions[kind] = [(k if c > shipped else None, c > shipped) for k, c in found]
    same = [a == b for a, b in zip(decisions["exact"], decisions["hnsw"], strict=True)]
    row["hnsw_decision_recall"] = float(np.mean(same))
    row["exact_rejected"] = sum(r for _, r in decisions["exact"])
    usearch = _usearch_index(encoder.dimension)
    if usearch is not None:
        began = time.perf_counter()
        usearch.add(np.arange(size), vectors)
        row["usearch_build_s"] = time.perf_counter() - began
        began = time.perf_counter()
        matches = usearch.search(cand_vecs, 1)
        row["usearch_query_ms_per_candidate"] = (time.perf_counter() - began) * 1000 / len(keyed)
        got = [
            (str(k) if 1 - d > shipped else None, 1 - d > shipped)
            for k, d in zip(matches.keys[:, 0], matches.distances[:, 0], strict=True)
        ]
        row["usearch_decision_recall"] = float(
            np.mean([a == b for a, b in zip(decisions["exact"], got, strict=True)])
        )
    row["semantic_ms_per_candidate"] = (
        row["embed_ms_per_candidate"] + row["hnsw_query_ms_per_candidate"]
    )
    row["semantic_cpu_ms_per_candidate"] = (
        row["embed_cpu_ms_per_candidate"] + row["hnsw_query_cpu_ms_per_candidate"]
    )
    return row


def _pair_rejects(
    static_q: np.ndarray,
    static_pool: np.ndarray,
    mini_q: np.ndarray,
    mini_pool: np.ndarray,
    t_low: float,
    threshold: float,
    leave_out_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(pair rejects, MiniLM alone rejects) per query row, by exact search.

    The pair rejects when the nearest static cosine is at least ``t_low`` and one of the
    :data:`SHORTLIST` static neighbours has a MiniLM cosine above ``threshold``; MiniLM alone
    rejects when any pool text does. ``leave_out_self``: query i is pool text i (the seeds
    against the other seeds).
    """
    static_sims = static_q @ static_pool.T
    mini_sims = mini_q @ mini_pool.T
    if leave_out_self:
        np.fill_diagonal(static_sims, -1.0)
        np.fill_diagonal(mini_sims, -1.0)
    shortlist = np.argsort(-static_sims, axis=1)[:, :SHORTLIST]
    rechecked = np.take_along_axis(mini_sims, shortlist, axis=1).max(axis=1)
    pair = (static_sims.max(axis=1) >= t_low) & (rechecked > threshold)
    return pair, mini_sims.max(axis=1) > threshold


def cascade_quality_rows(
    static: SentenceEncoder, mini: SentenceEncoder, pool10k: list[str], threshold: float
) -> list[dict]:
    """Recall and false rejects of the pair per ``t_low``, beside MiniLM alone (same sets)."""
    seeds = [t["instruction"] for t in _jsonl("self_instruct_seed_tasks.jsonl")]
    users = [t["instruction"] for t in _jsonl("self_instruct_user_oriented_instructions.jsonl")]
    rng = random.Random(SEED)
    made = [paraphrase(pool10k[i], rng, 4) for i in rng.sample(range(len(pool10k)), 300)]
    static10k, _ = cached_embeddings(static, pool10k)
    mini10k, _ = cached_embeddings(mini, pool10k)
    assert static10k is not None and mini10k is not None
    hand = [p for _, p in PARAPHRASES]
    sets = (  # name, queries, pool texts' (static, MiniLM) vectors, leave out self, kind
        ("hand_paraphrases", hand, seeds, False, "recall"),
        ("rule_paraphrases", made, None, False, "recall"),
        ("seeds_vs_seeds", seeds, seeds, True, "false_reject"),
        ("user_vs_seeds", users, seeds, False, "false_reject"),
    )
    rows = []
    for name, queries, pool, leave_out, kind in sets:
        sp = static10k if pool is None else static.encode(pool)
        mp = mini10k if pool is None else mini.encode(pool)
        sq, mq = static.encode(queries), mini.encode(queries)
        row: dict = {"set": name, "n": len(queries)}
        for t_low in T_LOWS:
            pair, alone = _pair_rejects(sq, sp, mq, mp, t_low, threshold, leave_out)
            row[f"{kind}@{t_low}"] = float(np.mean(pair))
        row[f"minilm_alone_{kind}"] = float(np.mean(alone))
        rows.append(row)
    return rows


def cascade_cost_row(
    static: SentenceEncoder, mini: SentenceEncoder, size: int, threshold: float
) -> dict:
    """CPU ms per candidate of MiniLM alone (embedding) and of the pair, per ``t_low``."""
    import faiss

    texts = pool_texts(size)
    static_vecs, _ = cached_embeddings(static, texts)
    assert static_vecs is not None
    rng = random.Random(SEED + size)  # the candidates of cost_row
    users = _jsonl("self_instruct_user_oriented_instructions.jsonl")
    unseen = [t["instruction"] for t in users[: CANDIDATES // 2]]
    candidates = [paraphrase(t, rng, 4) for t in rng.sample(texts, CANDIDATES // 2)] + unseen
    n = len(candidates)
    row: dict = {"pool": size, "candidates": n, "torch_threads": _torch_threads()}
    index = faiss.IndexHNSWFlat(static.dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = 64
    cpu = time.process_time()
    index.add(np.ascontiguousarray(static_vecs, dtype=np.float32))
    row["static_hnsw_build_cpu_s"] = time.process_time() - cpu

    cpu = time.process_time()
    mini.encode(candidates, batch_size=64)
    row["minilm_embed_cpu_ms_per_candidate"] = (time.process_time() - cpu) * 1000 / n
    cpu = time.process_time()
    cand_static = static.encode(candidates, batch_size=64)
    row["static_embed_cpu_ms_per_candidate"] = (time.process_time() - cpu) * 1000 / n
    cpu = time.process_time()
    sims, ids = [], []
    for s in range(0, n, BATCH):
        got = index.search(np.ascontiguousarray(cand_static[s : s + BATCH]), SHORTLIST)
        sims.append(got[0])
        ids.append(got[1])
    static_sims, static_ids = np.vstack(sims), np.vstack(ids)
    row["static_query_cpu_ms_per_candidate"] = (time.process_time() - cpu) * 1000 / n
    # The shortlisted pool texts' MiniLM vectors: stored when the pool was built, so outside
    # the timing.
    needed = sorted({int(i) for i in static_ids.ravel() if i >= 0})
    stored = dict(zip(needed, mini.encode([texts[i] for i in needed]), strict=True))
    first_stage = (
        row["static_embed_cpu_ms_per_candidate"] + row["static_query_cpu_ms_per_candidate"]
    )
    for t_low in T_LOWS:
        chosen = [i for i in range(n) if static_sims[i, 0] >= t_low]
        cpu = time.process_time()
        rejected = 0
        if chosen:
            vecs = mini.encode([candidates[i] for i in chosen], batch_size=64)
            for v, i in zip(vecs, chosen, strict=True):
                near = np.stack([stored[int(j)] for j in static_ids[i] if j >= 0])
                rejected += bool((near @ v).max() > threshold)
        spent = (time.process_time() - cpu) * 1000 / n
        row[f"recheck_share@{t_low}"] = len(chosen) / n
        row[f"rejected@{t_low}"] = rejected
        row[f"cascade_cpu_ms_per_candidate@{t_low}"] = first_stage + spent
    return row


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def cascade_main() -> None:
    """``--cascade``: MiniLM's own cost and the static-shortlist pair (see the docstring)."""
    import torch

    torch.set_num_threads(1)
    mini = load_encoder(DEFAULT_MODEL)
    static = load_encoder(STATIC_MODEL, cache_dir=MODEL_CACHE)
    threshold = default_threshold(DEFAULT_MODEL)
    quality = cascade_quality_rows(static, mini, pool_texts(POOLS[0]), threshold)
    costs = [cascade_cost_row(static, mini, size, threshold) for size in POOLS]
    for row in quality + costs:
        print(
            " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        )
    at_100k = costs[-1]
    goals = [
        goal(
            "minilm_embed_cpu_ms_per_candidate_100k",
            at_100k["minilm_embed_cpu_ms_per_candidate"],
            5.0,
            "lower",
        ),
        goal(
            f"cascade_cpu_ms_per_candidate_100k@{CASCADE_T_LOW}",
            at_100k[f"cascade_cpu_ms_per_candidate@{CASCADE_T_LOW}"],
            5.0,
            "lower",
        ),
    ]
    env = {
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "threshold": threshold,
        "shortlist": SHORTLIST,
        "models": [mini.model_id, static.model_id],
    }
    write_result(CASCADE_RESULT, [*quality, *costs], goals, env)


def pick_threshold(by_set: dict[str, dict]) -> float:
    """The lowest threshold of the curve whose false rejects stay within MAX_FALSE_REJECT on
    both distinct-task sets: the most paraphrase recall the false-reject budget allows."""
    for t in THRESHOLDS:
        worst = max(by_set[s][f"false_reject@{t}"] for s in ("seeds_vs_seeds", "user_vs_seeds"))
        if worst <= MAX_FALSE_REJECT:
            return t
    return THRESHOLDS[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        choices=sorted(RESULTS),
        action="append",
        help="an encoder to measure (repeatable); default: all of them, in one run",
    )
    parser.add_argument(
        "--cascade", action="store_true", help="MiniLM alone vs static shortlist + MiniLM"
    )
    args = parser.parse_args()
    if args.cascade:
        cascade_main()
        return
    for model in args.model or list(RESULTS):
        print(f"== {model}", flush=True)
        measure(model)


def measure(model: str) -> None:
    """One encoder's curve, picked threshold and costs, written to its result file."""
    encoder = load_encoder(model, cache_dir=MODEL_CACHE)
    shipped = default_threshold(model)
    pool10k = pool_texts(POOLS[0])
    vecs10k, _embed_s = cached_embeddings(encoder, pool10k)
    assert vecs10k is not None
    quality = quality_rows(encoder, pool10k, vecs10k)
    costs = [cost_row(encoder, size, shipped) for size in POOLS]
    for row in quality + costs:
        print(
            " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        )
    by_set = {r["set"]: r for r in quality}
    picked = pick_threshold(by_set)
    pick_row = {
        "set": "picked_threshold",
        "threshold": picked,
        "max_false_reject": MAX_FALSE_REJECT,
        "hand_recall": by_set["hand_paraphrases"][f"recall@{picked}"],
        "rule_recall": by_set["rule_paraphrases"][f"recall@{picked}"],
        "seed_false_reject": by_set["seeds_vs_seeds"][f"false_reject@{picked}"],
        "user_false_reject": by_set["user_vs_seeds"][f"false_reject@{picked}"],
    }
    print(" ".join(f"{k}={v}" for k, v in pick_row.items()))
    # The shipped threshold's point of the curve: the issue names recall and false rejects
    # but no target for them, so they are rows; its one target is the cost at 100k.
    shipped_row = {
        "set": "at_shipped_threshold",
        "threshold": shipped,
        "hand_recall": by_set["hand_paraphrases"][f"recall@{shipped}"],
        "hand_either_recall": by_set["hand_paraphrases"][f"either@{shipped}"],
        "rule_recall": by_set["rule_paraphrases"][f"recall@{shipped}"],
        "seed_false_reject": by_set["seeds_vs_seeds"][f"false_reject@{shipped}"],
        "user_false_reject": by_set["user_vs_seeds"][f"false_reject@{shipped}"],
    }
    print(" ".join(f"{k}={v}" for k, v in shipped_row.items()))
    at_100k = next(r for r in costs if r["pool"] == POOLS[-1])
    goals = [
        # CPU time: on the shared 2-core machine wall time is mostly waiting for a core (load
        # 20-28 gave 10-20x the CPU figure); the wall figures stay in the rows.
        goal(
            "semantic_cpu_ms_per_candidate_100k",
            at_100k["semantic_cpu_ms_per_candidate"],
            5.0,
            "lower",
        ),
    ]
    env = {
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "model": encoder.name,
        "threshold": shipped,
        "model_id": encoder.model_id,
    }
    write_result(RESULTS[model], [*quality, pick_row, shipped_row, *costs], goals, env)


if __name__ == "__main__":
    main()
