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
        similarity: For similarity rules: ROUGE-L F-measure to ``nearest_id``.
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
