"""Model text the filters read is bounded only by max_tokens: no rule may be quadratic in it.

Long runs are what a weak model writes when it degenerates (dots, spaces after a label). Each
case took seconds of CPU (quadratic backtracking) before its pattern was made linear; the bound
is far above the linear cost (~0.05 s) and far below the quadratic one (>5 s at 20k characters).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from filters.completion_defects import residue_factor
from filters.errors import FilterError
from filters.evolution import check_answer
from filters.pairwise_replies import parse_pairwise_reply
from filters.refusal import detect_refusal

N = 20_000


@pytest.mark.parametrize(
    ("check", "text"),
    [
        (detect_refusal, "." * N + "x"),
        (detect_refusal, "!?" * N + "x"),
        (check_answer, "." * N + "x"),
        (residue_factor, "Output" + " " * N + "x"),
        (residue_factor, "\nExample 2" + "\t" * N + "x"),
        (parse_pairwise_reply, "Output" + " " * N + "x"),
        (parse_pairwise_reply, "Answer" + " " * N + "( x"),
        (parse_pairwise_reply, "a" + " " * N + "x"),
        (parse_pairwise_reply, "the better" + " " * N + "x"),
    ],
)
def test_long_runs_are_read_in_linear_time(check: Callable[[str], object], text: str) -> None:
    started = time.process_time()
    with contextlib.suppress(FilterError):
        check(text)
    assert time.process_time() - started < 1.0
