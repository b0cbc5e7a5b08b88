"""Filters that keep the instruction pool clean and diverse.

A library of pure functions and small classes: heuristic rules, near-duplicate detection
(exact token-overlap candidates, then the exact ROUGE-L), decontamination against held-out
eval sets and quality scorers. Every decision is a :class:`filters.types.Verdict` or
:class:`filters.types.Score` that names its rule or scorer and version.
"""

from filters.types import Score, Verdict

__all__ = ["Score", "Verdict"]
