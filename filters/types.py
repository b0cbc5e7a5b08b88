"""The two result types every filter returns: a verdict on a text, or a score of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """The decision of one rule (or of all rules) about one text.

    An accepted verdict has ``rule`` set to ``"all"`` or to the rule's name and an empty
    ``reason``. A rejection always names the rule, its version and the reason in words; for
    duplicates it also carries the nearest item's id and the similarity.

    Attributes:
        accepted: Whether the text passes.
        rule: Name of the deciding rule (``"all"`` when every rule passed).
        rule_version: Version of that rule (or of the rule set).
        reason: Why the text was rejected, in words; empty when accepted.
        nearest_id: For similarity rules: the id of the most similar item found, if any.
        similarity: For similarity rules: the rule's similarity to ``nearest_id`` (ROUGE-L
            F-measure for ``near_duplicate``, cosine for ``semantic_duplicate``).
    """

    accepted: bool
    rule: str
    rule_version: str
    reason: str = ""
    nearest_id: str | None = None
    similarity: float | None = None


@dataclass(frozen=True)
class Score:
    """A quality score with the scorer's name and version stored alongside it.

    Attributes:
        scorer: Name of the scorer (e.g. ``"heuristic_quality"``, ``"llm_judge"``).
        version: Version of the scorer; a new version means scores are not comparable.
        value: The score, or ``None`` when it could not be computed (``details["error"]``
            then says why).
        details: JSON-serialisable components and evidence.
    """

    scorer: str
    version: str
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)


def similarity_verdict(
    rule: tuple[str, str, str], threshold: float, nearest: tuple[str | None, float], where: str
) -> Verdict:
    """The verdict of a similarity rule: reject when the similarity is strictly above ``threshold``.

    Args:
        rule: ``(name, version, measure)``, e.g. ``("near_duplicate", "3", "ROUGE-L")``.
        threshold: Reject strictly above this.
        nearest: ``(id, similarity)`` of the most similar item found; id ``None`` when there
            was nothing to compare.
        where: Where the nearest item was found, in words (e.g. ``"the pool"``).

    Returns:
        A rejection naming the nearest item and its similarity, or an acceptance that still
        records them.
    """
    (name, version, measure), (nearest_id, similarity) = rule, nearest
    if nearest_id is None:
        return Verdict(True, name, version)
    if similarity > threshold:
        reason = f"{measure} {similarity:.3f} > {threshold} against {nearest_id!r} in {where}"
        return Verdict(False, name, version, reason, nearest_id, similarity)
    return Verdict(True, name, version, "", nearest_id, similarity)
