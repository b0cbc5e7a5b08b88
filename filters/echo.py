"""Whether an instance's output merely repeats its prompt: the instruction, the input, or both.

Sources: the paper's ``filter_invalid_instances`` (yizhongw/self-instruct
``prepare_for_finetuning.py``) drops an output identical to its input; the data the demo exported
from the embedded model (issue 15: 7 of 25 machine examples) adds outputs that repeat the input
under a field label or the instruction, or the instruction followed by nothing new.

Against the instruction, case, punctuation, whitespace and field labels are ignored: no real
answer is its instruction re-typed. Against the input, only whitespace, compatibility forms and
field labels are: on Alpaca 52k every output that differs from its input only in case (25) or
punctuation (241) answers a capitalisation or punctuation task ("i love dogs" -> "I LOVE DOGS").
"""

from __future__ import annotations

import re
import unicodedata

from filters.normalization import normalize_text

# A field label at a line start ("Input:", "Output 2:") is template residue, not content.
FIELD_LABEL = re.compile(
    r"^[ \t]*(?:input|output|instruction|task|answer|response|example)[ \t]*\d*[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)


def _strip_labels(text: str) -> str:
    return normalize_text(FIELD_LABEL.sub(" ", text))


def _loose_key(text: str) -> str:
    """Casefolded words with punctuation removed; symbols (emoji, ``+``, ``>``) are kept."""
    kept = "".join(" " if unicodedata.category(ch)[0] == "P" else ch for ch in _strip_labels(text))
    return " ".join(kept.casefold().split())


def repeated_part(output: str, *, instruction: str | None, input_text: str) -> str | None:
    """Name the part of the prompt that ``output`` merely repeats, if it repeats one.

    Args:
        output: The instance's output.
        instruction: The task's instruction; None when the caller does not know it.
        input_text: The instance's input (may be empty).

    Returns:
        ``"input"`` when the output is the input (up to whitespace and field labels),
        ``"instruction"`` when it is the instruction, ``"instruction and input"`` when it is the
        two in either order (the instruction followed by nothing new), or None. The last two
        ignore case and punctuation as well; an output of punctuation only never repeats them.
    """
    bare = _strip_labels(output)
    if bare and bare == _strip_labels(input_text):
        return "input"
    out = _loose_key(output)
    ins = _loose_key(instruction) if instruction else ""
    if not out or not ins:
        return None
    inp = _loose_key(input_text)
    if out == ins:
        return "instruction"
    if inp and out in (f"{ins} {inp}", f"{inp} {ins}"):
        return "instruction and input"
    return None
