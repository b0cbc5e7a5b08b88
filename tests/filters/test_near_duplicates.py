"""The near-duplicate index: decisions, batches, signatures, rebuilds, Redis."""

from __future__ import annotations

import pytest

from filters.errors import ConfigError, DuplicateKeyError, IndexStorageError, SignatureError
from filters.near_duplicates import RULE_NAME, RULE_VERSION, NearDuplicateIndex
from filters.rouge import rouge_l_text
from tests.filters.conftest import redis_config

A = "Give three tips for staying healthy."
A2 = "Give three tips for staying very healthy."
B = "Write a short poem about the sea at night."
C = "Explain the difference between a list and a tuple in Python."


def test_rejects_above_threshold_with_evidence() -> None:
    index = NearDuplicateIndex()
    index.add("a", A)
    verdict = index.check_batch([("x", A2)])[0]
    assert not verdict.accepted
    assert (verdict.rule, verdict.rule_version) == (RULE_NAME, RULE_VERSION)
    assert verdict.nearest_id == "a"
    assert verdict.similarity == rouge_l_text(A2, A)
    assert "0.923" in verdict.reason and "'a'" in verdict.reason


def test_accepts_and_reports_nearest_similarity() -> None:
    index = NearDuplicateIndex()
    index.add("a", A)
    far = index.check_batch([("b", B)])[0]
    assert far.accepted and far.reason == "" and far.rule == RULE_NAME
    assert far.nearest_id is None and far.similarity is None
    # Same words in reverse order: LSH must propose it (Jaccard 1), ROUGE-L is 1/6.
    reverse = " ".join(reversed(A.split()))
    close = index.check_batch([("c", reverse)])
    assert close[0].accepted and close[0].nearest_id == "a"
    assert close[0].similarity == rouge_l_text(A, reverse) == pytest.approx(1 / 6)


def test_threshold_is_strict() -> None:
    # 7 tokens vs 7 tokens, LCS 5: F = 5/7 = 0.714 > 0.7; with threshold 5/7 it passes.
    a, b = "one two three four five six seven", "one two three four five eight nine"
    assert rouge_l_text(a, b) == pytest.approx(5 / 7)
    strict = NearDuplicateIndex(threshold=rouge_l_text(a, b))
    strict.add("a", a)
    assert strict.check_batch([("b", b)])[0].accepted
    default = NearDuplicateIndex()
    default.add("a", a)
    assert not default.check_batch([("b", b)])[0].accepted


def test_batch_checks_against_earlier_accepted_candidates() -> None:
    index = NearDuplicateIndex()
    verdicts = index.check_batch([("1", A), ("2", B), ("3", A2), ("4", A.upper())])
    assert [v.accepted for v in verdicts] == [True, True, False, False]
    assert verdicts[2].nearest_id == "1" and "this batch" in verdicts[2].reason
    assert len(index) == 2 and "1" in index and "3" not in index


def test_rejected_candidates_do_not_shadow_later_ones() -> None:
    index = NearDuplicateIndex()
    index.add("p", A)
    verdicts = index.check_batch([("1", A2), ("2", C)], add_accepted=False)
    assert [v.accepted for v in verdicts] == [False, True]
    assert len(index) == 1  # add_accepted=False leaves the pool unchanged


def test_duplicate_keys_in_batch_raise() -> None:
    with pytest.raises(DuplicateKeyError):
        NearDuplicateIndex().check_batch([("k", A), ("k", B)])


def test_empty_and_symbol_only_texts_are_never_duplicates() -> None:
    index = NearDuplicateIndex()
    verdicts = index.check_batch([("e1", ""), ("e2", ""), ("e3", "!!! ??? ..."), ("e4", "日本語")])
    assert all(v.accepted for v in verdicts)
    assert len(index) == 4 and index.nearest("") == (None, 0.0)


def test_adversarial_texts() -> None:
    index = NearDuplicateIndex()
    index.add("a", A)
    long_text = " ".join(f"w{i}" for i in range(20000))
    verdicts = index.check_batch(
        [
            ("zw", "Give\u200b three tips for staying healthy."),  # zero-width: no split
            ("cyr", "Give three tіps for staying healthy."),  # Cyrillic і: another word
            ("long", long_text),
            ("long2", long_text + " extra"),
        ]
    )
    # Decisions follow the ROUGE-L tokens exactly, whatever the characters.
    assert verdicts[0].accepted is (
        rouge_l_text(A, "Give\u200b three tips for staying healthy.") <= 0.7
    )
    assert verdicts[1].similarity == rouge_l_text(A, "Give three tіps for staying healthy.")
    assert verdicts[2].accepted and not verdicts[3].accepted
    assert verdicts[3].nearest_id == "long"


def test_nearest_and_membership() -> None:
    index = NearDuplicateIndex()
    index.add_many([("a", A, None), ("b", B, None)])
    assert index.nearest(A) == ("a", 1.0)
    assert index.nearest(C) == (None, 0.0)
    assert "a" in index and "z" not in index and 3 not in index
    index.add("a", "something else entirely")  # an existing key is left as it is
    assert index.nearest(A) == ("a", 1.0) and len(index) == 2


def test_self_match_is_excluded_and_ties_are_deterministic() -> None:
    index = NearDuplicateIndex()
    index.add_many([("b", A, None), ("a", A, None)])
    assert index.nearest(A) == ("a", 1.0)  # tie: smallest key
    verdict = index.check_batch([("a", A)])[0]  # checking a pool member skips itself
    assert not verdict.accepted and verdict.nearest_id == "b"


def test_rebuild_from_signatures_without_rehashing(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = {"a": A, "b": B, "c": C}
    first = NearDuplicateIndex(seed=3)
    sigs = first.signatures(list(texts.values()))
    assert sigs[0] == first.signature(A) and isinstance(sigs[0], bytes)
    rebuilt = NearDuplicateIndex(seed=3)

    def no_hashing(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuild must not re-hash")

    monkeypatch.setattr(rebuilt._hasher, "minhashes", no_hashing)
    rebuilt.add_many((k, t, s) for (k, t), s in zip(texts.items(), sigs, strict=True))
    monkeypatch.undo()
    assert rebuilt.nearest(A2)[0] == "a"
    assert len(rebuilt) == 3


def test_signature_settings_are_checked() -> None:
    sig = NearDuplicateIndex(seed=1).signature(A)
    with pytest.raises(SignatureError, match="seed"):
        NearDuplicateIndex(seed=2).add("a", A, sig)
    with pytest.raises(SignatureError):
        NearDuplicateIndex(num_perm=128).add("a", A, sig)
    with pytest.raises(SignatureError):
        NearDuplicateIndex().add("a", A, sig[:-4])
    with pytest.raises(SignatureError):
        NearDuplicateIndex().add("a", A, b"junk")


def test_config_errors() -> None:
    with pytest.raises(ConfigError):
        NearDuplicateIndex(threshold=1.5)
    with pytest.raises(ConfigError):
        NearDuplicateIndex(num_perm=64, lsh_params=(20, 5))
    index = NearDuplicateIndex(num_perm=128, lsh_threshold=0.5)
    assert index.bands * index.rows <= 128


def test_missing_text_from_lookup_raises() -> None:
    index = NearDuplicateIndex(text_lookup=lambda keys: {})
    index.add("a", A)
    index._codes.clear()  # as a fresh worker would be
    with pytest.raises(IndexStorageError):
        index.nearest(A)


@pytest.mark.redis
def test_redis_index_is_shared_between_workers(redis_basename: bytes) -> None:
    worker1 = NearDuplicateIndex(storage_config=redis_config(redis_basename))
    worker2 = NearDuplicateIndex(storage_config=redis_config(redis_basename))
    assert worker1.check_batch([("a", A), ("b", B)])[1].accepted
    # worker2 never saw the texts: candidates and texts come from Redis.
    assert len(worker2) == 2 and "a" in worker2 and "zz" not in worker2
    verdict = worker2.check_batch([("x", A2), ("y", C)])
    assert not verdict[0].accepted and verdict[0].nearest_id == "a"
    assert verdict[0].similarity == rouge_l_text(A2, A)
    assert verdict[1].accepted
    assert worker1.nearest(C) == ("y", 1.0)
    assert len(worker1) == 3


@pytest.mark.redis
def test_redis_rebuild_from_signatures_and_text_lookup(redis_basename: bytes) -> None:
    texts = {"a": A, "b": B}
    sigs = NearDuplicateIndex().signatures(list(texts.values()))
    lookups: list[list[str]] = []

    def lookup(keys):
        lookups.append(list(keys))
        return {k: texts[k] for k in keys}

    config = redis_config(redis_basename)
    builder = NearDuplicateIndex(storage_config=config, text_lookup=lookup)
    builder.add_many([(k, t, s) for (k, t), s in zip(texts.items(), sigs, strict=True)])
    builder.add_many([("a", A, sigs[0])])  # idempotent rebuild
    reader = NearDuplicateIndex(storage_config=config, text_lookup=lookup)
    assert len(reader) == 2
    assert reader.nearest(A2) == ("a", rouge_l_text(A2, A))
    assert lookups == [["a"]]  # the text came from the lookup, not from Redis
