"""The near-duplicate index: decisions, batches, signatures, rebuilds, Redis."""

from __future__ import annotations

import random

import pytest

from filters.errors import ConfigError, DuplicateKeyError, SignatureError
from filters.near_duplicates import RULE_NAME, RULE_VERSION, NearDuplicateIndex
from filters.rouge import Encoded, TokenEncoder, rouge_l_many, rouge_l_text, rouge_tokenize
from tests.filters.perturb import perturb

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
    with pytest.raises(SignatureError):
        NearDuplicateIndex(num_perm=1)


SHIP = (
    "Pretend you are a ship's cook in 1850. Describe a typical day aboard and the food you prepare."
)
SHIP_PARAPHRASES = [  # ROUGE-L against SHIP in (0.7, 0.8], with whole phrases replaced
    "Pretend you are a ship's cook in 1850. Describe your daily routine aboard and the meals "
    "you prepare.",
    "Imagine you are a ship's cook in the 1850s. Describe a typical day aboard and the meals "
    "you cook.",
    "Pretend that you are a cook on a ship in 1850. Describe a typical day aboard and the "
    "food you make.",
]


def test_issue_pair_follows_the_exact_rule() -> None:
    # The issue's example: by rouge-score's tokens its ROUGE-L is 2/3, so the rule keeps it.
    other = (
        "Pretend you are a ship's cook in the 1850s. Describe your daily routine aboard and "
        "the meals you cook."
    )
    index = NearDuplicateIndex()
    index.add("ship", SHIP)
    verdict = index.check_batch([("x", other)])[0]
    assert rouge_l_text(SHIP, other) == pytest.approx(2 / 3)
    # Its token overlap is too small to pass the threshold, so it is not even compared.
    assert verdict.accepted and verdict.nearest_id is None and verdict.similarity is None


@pytest.mark.parametrize("paraphrase", SHIP_PARAPHRASES)
def test_paraphrases_just_over_the_threshold_are_rejected(paraphrase: str) -> None:
    sim = rouge_l_text(SHIP, paraphrase)
    assert 0.7 < sim <= 0.8
    index = NearDuplicateIndex()
    index.add_many([("ship", SHIP, None), ("other", C, None)])
    verdict = index.check_batch([("x", paraphrase)])[0]
    assert not verdict.accepted and verdict.nearest_id == "ship" and verdict.similarity == sim
    # Either order, and inside one batch too.
    swapped = NearDuplicateIndex()
    swapped.add("p", paraphrase)
    assert swapped.nearest(SHIP) == ("p", sim)
    batch = NearDuplicateIndex().check_batch([("p", paraphrase), ("s", SHIP)])
    assert [v.accepted for v in batch] == [True, False]


def test_paper_loop_matches_the_exhaustive_rule(seed_tasks: list[dict]) -> None:
    # The paper's loop over a paraphrase-rich stream: each text checked against all kept
    # before. Heavier edits than the perturbation tests, so many pairs land in (0.7, 0.8].
    rng = random.Random(11)
    sources = [t["instruction"] for t in seed_tasks]
    stream = sources + [perturb(rng.choice(sources), rng, rng.randint(2, 6)) for _ in range(500)]
    rng.shuffle(stream)
    index = NearDuplicateIndex()
    encoder = TokenEncoder()
    kept: list[Encoded] = []  # the exhaustive rule's pool, compared in full (C++ LCS)
    in_band = 0
    for i, text in enumerate(stream):
        verdict = index.check_batch([(f"s{i}", text)])[0]
        code = encoder.encode(rouge_tokenize(text))
        best = float(rouge_l_many(code, kept).max()) if kept else 0.0
        assert verdict.accepted is (best <= 0.7), (text, best)
        if not verdict.accepted:
            assert verdict.similarity == best
            in_band += best <= 0.8
        else:
            kept.append(code)
    assert in_band >= 20
