"""Whether an instance's output merely repeats its prompt: the instruction, the input, or both.

Sources: the paper's ``filter_invalid_instances`` (yizhongw/self-instruct
``prepare_for_finetuning.py``) drops an output identical to its input; the data the demo exported
from the embedded model (issue 15: 7 of 25 machine examples) adds outputs that repeat the input
under a field label or the instruction, or the instruction followed by nothing new; and, read
by eye, near-copies of the instruction (``"Sentence 2: X"`` -> ``"Sentence 1: X'"``, ROUGE-L
0.64-0.87 against it): :func:`near_copy_of_instruction`.

Against the instruction, case, punctuation, whitespace and field labels are ignored: no real
answer is its instruction re-typed. Against the input, only whitespace, compatibility forms and
field labels are: on Alpaca 52k every output that differs from its input only in case (25) or
punctuation (241) answers a capitalisation or punctuation task ("i love dogs" -> "I LOVE DOGS").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import LCSseq

from filters.list_numbers import strip_list_number
from filters.normalization import normalize_text
from filters.rouge import TokenEncoder, rouge_tokenize

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
        ``"instruction"`` when it is the instruction (once or said over again),
        ``"instruction and input"`` when it is the two in either order (the instruction
        followed by nothing new), or None. The last two
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
    # The instruction once, or over again ("Name a fruit. Name a fruit."): nothing new.
    words, ins_words = out.split(), ins.split()
    if len(words) % len(ins_words) == 0 and words == ins_words * (len(words) // len(ins_words)):
        return "instruction"
    if inp and out in (f"{ins} {inp}", f"{inp} {ins}"):
        return "instruction and input"
    return None


# A near-copy shares at least this share of its tokens with the instruction, and covers at
# least this share of the instruction's tokens, in order (LCS on rouge_tokenize tokens).
NEAR_COPY_SHARE = 0.6
# Instructions shorter than this (after labels and list numbers) are not compared: "6 + 3 = ?"
# -> "6 + 3 = 9" is an answer.
NEAR_COPY_MIN_TOKENS = 4
# An output made only of the instruction's words, in order, picks from it: "True or False:
# Sheep are mammals" -> "True. Sheep are mammals." (0.67 of the instruction). Below this share
# of the instruction such a selection is an answer; above it, the instruction with words cut.
SELECTION_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class NearCopy:
    """How closely an output follows its instruction.

    Attributes:
        output_share: LCS length / output tokens, in [0, 1].
        instruction_share: LCS length / instruction tokens, in [0, 1].
    """

    output_share: float
    instruction_share: float


def _copy_tokens(text: str) -> list[str]:
    """ROUGE tokens of a text without its field labels and its leading list number."""
    return rouge_tokenize(strip_list_number(_strip_labels(text)))


def _near_copy(out: list[str], prompt: list[str]) -> NearCopy | None:
    if len(prompt) < NEAR_COPY_MIN_TOKENS or not out or out[0] != prompt[0]:
        return None
    encoder = TokenEncoder()
    lcs = LCSseq.similarity(encoder.encode(out), encoder.encode(prompt))
    found = NearCopy(lcs / len(out), lcs / len(prompt))
    if min(found.output_share, found.instruction_share) < NEAR_COPY_SHARE:
        return None
    if lcs == len(out) and found.instruction_share < SELECTION_SHARE:
        return None
    return found


def near_copy_of_instruction(output: str, *, instruction: str) -> NearCopy | None:
    """Whether ``output`` re-types its instruction with small edits.

    The output, once field labels and a leading list number are set aside on both sides
    (:func:`filters.list_numbers.strip_list_number`), must start with the instruction's first
    token and share at least :data:`NEAR_COPY_SHARE` of its own tokens and of the instruction's
    tokens with it, in order (ROUGE-L's LCS on :func:`filters.rouge.rouge_tokenize` tokens). The
    start condition is what separates an echo from an answer that restates its question: answers
    start from the question's subject (``"Find the median of {4, 10, 8}"`` -> ``"The median of
    {4, 10, 8} is 8."``, ``"Which planet is closest to the sun?"`` -> ``"The planet closest to
    the sun is Mercury."``), an echo from its first word; a near-copy that changes the first
    word (``"The quick fox ..."`` -> ``"A quick fox ..."``) is let through: also accepting a
    second-word match rejected 31 more Alpaca answers, nearly all restatements. An output made
    only of the instruction's words that keeps less than :data:`SELECTION_SHARE` of them is a
    selection, not a copy (``"True or False: Sheep are mammals"`` -> ``"True. Sheep are
    mammals."``). Measured by ``bench/echo_rules.py`` on the seed, user-oriented and Stanford
    Alpaca outputs.

    Outputs close to the *input* are not near-copies, alone or after the instruction:
    rewriting tasks (fix the grammar, anonymise the names, fill the mask, put it in the passive
    voice) legitimately share most words with their input; on the seeds 8 instances, on the
    user-oriented set 7 and on Alpaca about 1,700 outputs share 0.6 of their tokens both ways
    with their input from its first token, nearly all good edits.

    Args:
        output: The instance's output.
        instruction: The task's instruction.

    Returns:
        The shares found when the output is a near-copy, else None.
    """
    return _near_copy(_copy_tokens(output), _copy_tokens(instruction))


# An output that ends by restating its instruction (scorer v7): the restatement covers at least
# this share of the instruction's tokens, in order, within its last 1.25 instruction lengths.
RESTATED_SHARE = 0.7
# ...after at least an instruction's length of other text, and fewer than this share of all its
# tokens are its own (in neither the instruction nor the input).
RESTATED_OWN_SHARE = 0.5


def restated_at_end(output: str, *, instruction: str, input_text: str) -> float | None:
    """Whether ``output`` is other prompt text followed by its instruction restated (scorer v7).

    A small model's echo copies the input and then says the instruction again (``"<the
    paragraph> Identify the countries mentioned in the paragraph."``): neither an exact repeat
    (:func:`repeated_part`) nor a near-copy from the instruction's first word
    (:func:`near_copy_of_instruction`). Real answers restate their question at the start and
    add the answer (``"The pitch of a string ... is A3."``), or close with it after their own
    words (``"... is a great way to reward them for their hard work"``: 71% of its tokens its
    own). On the 2,174 real answers of ``bench/quality.py``'s dev splits no answer matched;
    with the own-word bound at 0.8, 2 did, and with no bound on the text before the
    restatement, 29 short restatements.

    Returns:
        The share of the instruction's tokens restated at the end, when the output's last
        ``1.25 * n + 1`` tokens (``n``: the instruction's, at least
        :data:`NEAR_COPY_MIN_TOKENS`) hold at least :data:`RESTATED_SHARE` of them in order,
        at least ``n`` tokens come before, and fewer than :data:`RESTATED_OWN_SHARE` of the
        output's tokens are in neither the instruction nor the input; else None.
    """
    out, prompt = _copy_tokens(output), _copy_tokens(instruction)
    n = len(prompt)
    tail = out[-int(n * 1.25) - 1 :]
    if n < NEAR_COPY_MIN_TOKENS or len(out) - len(tail) < n:
        return None
    encoder = TokenEncoder()
    share = LCSseq.similarity(encoder.encode(tail), encoder.encode(prompt)) / n
    if share < RESTATED_SHARE:
        return None
    known = set(prompt) | set(rouge_tokenize(input_text))
    own = sum(token not in known for token in out) / len(out)
    return share if own < RESTATED_OWN_SHARE else None


# An output that is the start of its input, cut short, covers at least this share of the
# input's tokens (scorer v7; on the dev splits of bench/quality.py real answers that are a
# strict prefix of their input cover at most 0.6 of it: the first option picked, a clause kept).
INPUT_PREFIX_SHARE = 0.7


def input_prefix(output: str, *, input_text: str) -> float | None:
    """Whether ``output`` is the start of its input and stops before the input's end (scorer v7).

    A small model copies the paragraph it should answer about and is cut or stops partway;
    :func:`repeated_part` sees only a whole copy. Tokens are ROUGE tokens without field labels
    and a leading list number; outputs of fewer than :data:`NEAR_COPY_MIN_TOKENS` tokens are
    not judged (``"A. The Sun danced in the sky"`` picks an option).

    Returns:
        The share of the input's tokens the output copies from its start, when it is a strict
        prefix of at least :data:`INPUT_PREFIX_SHARE`; else None.
    """
    out, source = _copy_tokens(output), _copy_tokens(input_text)
    if len(out) < NEAR_COPY_MIN_TOKENS or len(out) >= len(source) or source[: len(out)] != out:
        return None
    share = len(out) / len(source)
    return share if share >= INPUT_PREFIX_SHARE else None


# A heading over copied text: a markdown heading line, a bold line, or up to 4 words before a
# colon ("Summary:", "Corrected sentence:", "摘要："), alone on its line or not (scorer v10).
_HEADING = re.compile(
    r"[ \t]*(?:#{1,6}[ \t]*[^\n]{1,60}\n|\*\*[^*\n]{1,60}\*\*[ \t]*[:：]?[ \t]*\n?"
    r"|[^\W\d_][^\n:：]{0,40}[:：][ \t]*\n?)"
)
_HEADING_WORDS = 4


def input_under_heading(output: str, *, input_text: str) -> str | None:
    """The heading of an ``output`` that is its input, whole, under a heading (scorer v10).

    A small model "summarises" or "corrects" by copying its input under a label (``"Summary:
    <the input>"``, ``"## Translation\\n<the input>"``); :func:`repeated_part` sees only a bare
    copy (or one under the prompt's field labels). The copy must be the whole input of
    :data:`NEAR_COPY_MIN_TOKENS` or more tokens, up to whitespace and field labels. On the
    52,177 Alpaca and seed answers 4 real ones match, each a label over an input that was
    already its answer (``"Facts: <the input>"``, ``"Quote: <the input>"``, two classes); a
    heading holding a digit ("There are 11 vowels in the sentence: ...") adds an answer and
    is not counted.

    Returns:
        The heading (stripped) when the output is a heading of at most 4 words without digits
        followed by the whole input; else None.
    """
    if len(rouge_tokenize(input_text)) < NEAR_COPY_MIN_TOKENS:
        return None
    match = _HEADING.match(output)
    if match is None:
        return None
    heading = match.group(0).strip(" \t\n#*:：")
    if len(heading.split()) > _HEADING_WORDS or any(ch.isdigit() for ch in heading):
        return None
    rest = _strip_labels(output[match.end() :])
    return heading if rest and rest == _strip_labels(input_text) else None
