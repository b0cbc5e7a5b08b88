"""Embeddings of the benchmark pool, cached in chunk files under data/ so re-runs are fast.

Embedding 100k texts takes most of an hour on a shared 2-core CPU; each chunk of
:data:`CHUNK` texts is written as soon as it is done (``.npy``, float32), named by the sha256 of
its texts and the model, so an interrupted run resumes and a changed pool is never mixed up.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from pathlib import Path

import numpy as np

from filters.embeddings import SentenceEncoder

ROOT = Path(__file__).resolve().parents[1]
ALPACA = ROOT.parent / "shared" / "data" / "alpaca_data.json"
CACHE = ROOT / "data" / "bench" / "embeddings"
CHUNK = 2000
SEED = 42
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def pool_texts(size: int = 100_000) -> list[str]:
    """Distinct texts for a pool: Alpaca instructions, then sentences of Alpaca outputs.

    Alpaca has 52k instructions; the first two sentences of its outputs (5 to 40 words) make
    up the rest of a 100k pool. Shuffled with a fixed seed, so any prefix is a fair sample and
    the 10k pool is the first 10k of the 100k one.
    """
    rows = json.loads(ALPACA.read_text(encoding="utf-8"))
    seen: set[str] = set()
    texts: list[str] = []
    for text in [r["instruction"] for r in rows] + [
        sentence for r in rows for sentence in _SENTENCE_END.split(r["output"].strip())[:2]
    ]:
        text = text.strip()
        key = text.lower()
        if 5 <= len(text.split()) <= 40 and key not in seen:
            seen.add(key)
            texts.append(text)
    random.Random(SEED).shuffle(texts)
    if len(texts) < size:
        raise ValueError(f"only {len(texts)} distinct texts for a pool of {size}")
    return texts[:size]


def _chunk_path(encoder: SentenceEncoder, texts: list[str]) -> Path:
    digest = hashlib.sha256("\n".join([encoder.name, *texts]).encode()).hexdigest()[:16]
    return CACHE / f"{digest}.npy"


def cached_embeddings(
    encoder: SentenceEncoder, texts: list[str], *, compute: bool = True
) -> tuple[np.ndarray | None, float]:
    """Embeddings of ``texts`` from the chunk cache, computing missing chunks when asked.

    Returns:
        ``(array (len(texts), dim) or None if a chunk is missing and compute is False,
        seconds spent embedding in this call)``.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    parts, spent = [], 0.0
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        path = _chunk_path(encoder, chunk)
        if path.exists():
            parts.append(np.load(path))
            continue
        if not compute:
            return None, spent
        began = time.perf_counter()
        vectors = encoder.encode(chunk, batch_size=128)
        spent += time.perf_counter() - began
        np.save(path, vectors)
        parts.append(vectors)
        print(f"embedded {start + len(chunk)}/{len(texts)} ({spent:.0f} s)", flush=True)
    return np.concatenate(parts) if parts else np.zeros((0, encoder.dimension)), spent


if __name__ == "__main__":
    from filters.embeddings import load_encoder

    cached_embeddings(load_encoder(), pool_texts())
