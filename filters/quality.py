"""Heuristic quality score of one (instruction, input, output) example.

Six components in [0, 1], kept in the score's details so a low score explains itself. Each
answers one kind of junk a small model writes (issue 18; bench/quality.py measures the ranking
per kind on the Self-Instruct seed tasks and, held out, the user-oriented set):

- length: the output has no words once field labels are removed (``""``, ``"..."``,
  ``"Output:"``), is a placeholder (``"<noinput>"``, ``"[Your answer here]"``, ``"N/A"``:
  :func:`filters.placeholders.placeholder`, scorer v10), or runs away past 600 tokens. Symbols
  count as content where there are no words (``"👍"``, scorer v10).
- lexical_diversity and repetition: type-token ratio on a 100-token window and the share of
  word 3-grams used a third time or more (the first 10% free: templated list items repeat
  some, a chorus comes twice); a generation loop drives both down. Repetition the instruction
  asks for (``"... five times"``: :func:`filters.requested_counts.requested_copies`, scorer
  v10) is allowed.
- echo: the output repeats its prompt (:func:`filters.echo.repeated_part`: 0), ends by
  restating its instruction after other prompt text (:func:`filters.echo.restated_at_end`: 0,
  scorer v7) or is the start of its input cut short (:func:`filters.echo.input_prefix`: 0,
  scorer v7), is its input whole under a heading (:func:`filters.echo.input_under_heading`:
  0, scorer v10), or overlaps the instruction (ROUGE-L over 0.5) while starting with its first
  word or adding at most one word of its own (a restatement that answers, "The sum of 9 and 4
  is 13.", is not penalised).
  Overlap with the input is not counted: rewriting and completion tasks copy most of their
  input and are good answers (one verbatim run of the input is 57% of a labelled model echo's
  words, and 100% of a seed task's real completion).
- residue and truncation (:mod:`filters.completion_defects`): the answer runs on into the next
  numbered task or a field label of the prompt; the answer stops mid-sentence, leaves a bracket,
  quote or code fence open, breaks off a list, or lists fewer items than the instruction asks
  for (``"List five ..."``). A ``finish_reason`` of ``"length"``, when the caller knows it, says
  so outright.

The value is the weighted mean times the weakest component, so one fatal flaw ranks an
example below every example without one (a weighted mean alone let a loop or an echo hide
behind good components: issue 18 found junk above 0.93).
"""

from __future__ import annotations

import re
from collections import Counter

import regex

from filters.completion_defects import residue_factor, truncation_factor
from filters.echo import (
    FIELD_LABEL,
    input_prefix,
    input_under_heading,
    repeated_part,
    restated_at_end,
)
from filters.placeholders import placeholder
from filters.requested_counts import count_shortfall, requested_copies
from filters.rouge import rouge_l_f, rouge_tokenize
from filters.types import Score

SCORER_NAME = "heuristic_quality"
# 1: on rouge-score's [a-z0-9]+ tokens (text in other scripts had none and scored 0).
# 2: on filters.rouge tokens version 2 (words, or characters of Chinese, Japanese, Thai...).
# 3: echo of the prompt scores 0 and only overlap with the instruction counts (rewrites copy
# their input); residue and truncation components; labels alone ("Output:") are empty.
# 4: prompt residue counts only the prompt's own labels ("Answer:" heads real answers); truncation
# also by open brackets and code fences, operator ends and broken list or table shapes, and by
# finish_reason "length".
# 5: truncation also by the last word (filters.word_ends table v1): a word cut inside, a word
# that almost never ends a sentence, and a graded penalty by how often the word ends one.
# 6: truncation also when the answer's list stops short of a count the instruction names
# (completion_defects.count_shortfall), by an unclosed double quote, and mildly (0.9 to 1) for a
# list item or short line ending bare on a word that seldom ends sentences; option letters and
# initials ("C. Rupee") no longer count as closed sentences, closing hashtags end a post; the
# first 10% of repeated 3-grams cost nothing; a restatement that adds its answer is no echo;
# formulas, titles and verse-like lines are not open prose; "1.Once" is list item 1.
# 7: a list's last item may close with any sentence mark; prose needs a function word, and
# option letters and "label: value" lines are items; an unsigned letter may end on its close
# ("Sincerely,"); indented blocks (code) end bare; a capital "A" naming a letter, a one-word
# answer and an upper-case keyword are no cut ends; a 3-gram's second use is no repetition
# (a chorus), and the instruction said over again is an echo (filters.echo.repeated_part), as
# is other prompt text followed by the instruction restated (filters.echo.restated_at_end); a
# number of its own counts twice toward a restatement's answer; a web address may end on "/";
# an inline numbered list ("1. Uno 2. Chess 3. Go") and an attributed quotation ('"..." -
# Unknown') end bare, a list closed by ";" on "."; an option's letter is no word ("B) Solar");
# truncation also by an HTML element left open and a last line holding only an option letter
# ("B)") or a comment mark ("#"); the start of the input cut short is an echo
# (filters.echo.input_prefix).
# 8: lexical diversity and repetition are measured without list counters, so a list repeating
# one item ("1. Apple 2. Apple ...") is a loop (it scored 0.92: the counters broke its 3-grams).
# 9: letters and roman numerals that count (a, b, c; i, ii, iii) are list counters too
# ("a) Apple b) Apple ..." scored 0.92 in v8); a bare number ending a multi-line output is list
# residue only where the line before starts with the number before it (a column of numbers,
# "2\n3\n5\n7", and "The product is:\n42" scored 0.18 in v8).
# 10: a placeholder answer ("<noinput>", "[Your answer here]", "N/A", "TODO":
# filters.placeholders) has no content and scores 0; an answer of symbols alone (an emoji) has
# content, measured by its symbols (it scored 0); the input whole under a heading ("Summary:
# <the input>") is an echo (filters.echo.input_under_heading); any script's sentence marks close
# a line or a sentence ("।", "؟", and "。" with no space after it), and a line of 10+ characters
# of a script written without spaces holding a clause mark ("，") is prose (a cut Chinese answer
# scored 1.0); a phonemic transcription ends on its slash ("/kæt/" scored 0.09); repetition the
# instruction asks for ("... five times", "twice") is no loop up to the copies asked for.
SCORER_VERSION = "10"
WEIGHTS = {
    "length": 0.15,
    "lexical_diversity": 0.15,
    "repetition": 0.2,
    "echo": 0.2,
    "residue": 0.15,
    "truncation": 0.15,
}
_MAX_GOOD_WORDS = 600  # outputs up to this length are not penalised
_ZERO_AT_WORDS = 3000
_TTR_WINDOW = 100  # type-token ratio on a fixed window so long texts are not punished
# An output with this many words of its own (not in the instruction) that does not start with
# the instruction's first word restates the question and answers it: no overlap penalty (scorer
# v6; the penalty scored 12% of dev_alpaca's real answers under 0.7, "The sum of 9 and 4 is 13."
# 0.62). One word is not enough: "What fun math question for children?" adds only "what".
_OWN_WORDS = 2
# Real answers repeat some 3-grams: list items in one template ("What is your favorite ...?"),
# a chorus, "spiritual, devout, pious" per religion. Up to this share is free (scorer v6: from 0,
# it cost dev answers 0.02 of mean score, and the weakest-component product passed it on); a
# loop repeats most of its 3-grams, and half of them still scores 0, as before.
_FREE_REPEATS = 0.1
_ZERO_REPEATS = 0.5
# A 3-gram's second use is free too (scorer v7): a song sings its chorus twice, parallel lines
# share a frame ("the average cost of ... for"), and a loop says its phrase 4 to 60 times. Tried
# 1 (v6), 2 and 3 on the dev splits: 2 moved dev_alpaca2's real answers under 0.5 from 39 to 29
# for degenerate AUC -0.0008 (dev) to +0.0004; 3 gained one answer and lost 0.002 more.
_FREE_COPIES = 2
# A list item's counter ("1.", "2)", "(3)", "b.", "iv)") at a line's start or inline after a
# space (scorer v8: numbers; v9: letters and roman numerals up to 39, see _without_counters).
_COUNTER = re.compile(
    r"(?:^|(?<=\s))\(?(\d{1,3}|[a-z]|(?=[ivx])x{0,3}(?:ix|iv|v?i{0,3}))[.)](?=\s|$)",
    re.MULTILINE | re.IGNORECASE,
)
_ROMAN = {"i": 1, "v": 5, "x": 10}
# A symbol (an emoji with its modifiers, a star, a heart) as one grapheme cluster: the content
# of an answer without words (scorer v10: "👍" to "Reply with an emoji" had no tokens and
# scored 0).
_SYMBOL = regex.compile(r"(?=\p{So})\X")


def _roman(text: str) -> int:
    """The value of a roman numeral of i, v and x (``"xiv"`` -> 14)."""
    values = [_ROMAN[ch] for ch in text.casefold()]
    return sum(-v if v < w else v for v, w in zip(values, [*values[1:], 0], strict=True))


def _without_counters(output: str) -> str:
    """``output`` with its list counters blanked: every number (scorer v8), and a letter or
    roman numeral where it starts a run (a, i) or counts on from the one before of its kind
    (b after a, iii after ii; scorer v9). So "a) Apple b) Apple ..." is measured as the loop
    it is (0.92 in v8), while initials ("E. B.") and one option said over ("C. Rupee" x5),
    which count nothing, keep their letters and their loops stay visible."""
    last = {"letter": 0, "roman": 0}

    def blank(match: re.Match[str]) -> str:
        counter = match.group(1).casefold()
        if counter.isdigit():
            return " "
        kinds = [("letter", ord(counter) - 96)] if len(counter) == 1 else []
        if set(counter) <= set(_ROMAN):
            kinds.insert(0, ("roman", _roman(counter)))
        for kind, number in kinds:
            if number in (1, last[kind] + 1):
                last[kind] = number
                return " "
        return match.group(0)

    return _COUNTER.sub(blank, output)


def _symbols(text: str) -> list[str]:
    """The symbols of ``text`` (emoji, ``★``), each a grapheme cluster with its modifiers."""
    return _SYMBOL.findall(text)


def _length_component(n_tokens: int) -> float:
    if n_tokens == 0:
        return 0.0
    if n_tokens <= _MAX_GOOD_WORDS:
        return 1.0
    excess = (n_tokens - _MAX_GOOD_WORDS) / (_ZERO_AT_WORDS - _MAX_GOOD_WORDS)
    return max(0.0, 1.0 - excess)


def _diversity_component(tokens: list[str], copies: int = 1) -> tuple[float, float]:
    """(component, type-token ratio over the first window of tokens).

    ``copies``: the copies the instruction asks for (:func:`requested_copies`); the ratio is
    scaled by it, as a text said ``copies`` times over has that share of the types.
    """
    window = tokens[:_TTR_WINDOW]
    if not window:
        return 0.0, 0.0
    ttr = len(set(window)) / len(window)
    # Natural English prose sits around 0.5-0.8 on 100 words; below 0.3 is a loop.
    return min(1.0, ttr * copies / 0.5), ttr


def _repetition_component(tokens: list[str], copies: int = 1) -> tuple[float, float]:
    """(component, share of word 3-grams that repeat one seen :data:`_FREE_COPIES` times before,
    or ``copies`` times when the instruction asks for more: :func:`requested_copies`).

    The component is 1 up to :data:`_FREE_REPEATS` of such 3-grams and falls linearly to 0 at
    :data:`_ZERO_REPEATS`.
    """
    grams = list(zip(tokens, tokens[1:], tokens[2:], strict=False))
    if not grams:
        return 1.0, 0.0
    counts = Counter(grams)
    free = max(_FREE_COPIES, copies)
    repeated = sum(max(0, n - free) for n in counts.values())
    ratio = repeated / len(grams)
    excess = (ratio - _FREE_REPEATS) / (_ZERO_REPEATS - _FREE_REPEATS)
    return max(0.0, min(1.0, 1.0 - excess)), ratio


def _echo_component(
    instruction: str, inp: str, output: str, instruction_tokens: list[str], out: list[str]
) -> tuple[float, float]:
    """(component, ROUGE-L of the output against the instruction).

    An output that repeats its prompt (:func:`filters.echo.repeated_part`), restates its
    instruction after other prompt text (:func:`filters.echo.restated_at_end`) or is the start
    of its input cut short (:func:`filters.echo.input_prefix`) scores 0. Beyond
    that only overlap with the instruction counts: rewriting tasks (fix the grammar, shorten
    this) legitimately copy most of their input, so overlap with the input is no evidence; and
    only for outputs that start with the instruction's first token or add fewer than
    :data:`_OWN_WORDS` words of their own (scorer v6): the others restate and answer.
    """
    overlap = rouge_l_f(instruction_tokens, out)
    if repeated_part(output, instruction=instruction, input_text=inp) is not None:
        return 0.0, overlap
    if restated_at_end(output, instruction=instruction, input_text=inp) is not None:
        return 0.0, overlap
    if input_prefix(output, input_text=inp) is not None:
        return 0.0, overlap
    if input_under_heading(output, input_text=inp) is not None:
        return 0.0, overlap
    # A restatement starts from the question's subject and adds the answer ("The pitch of a
    # string ... is A3."); an echo starts from the instruction's first word (the start rule of
    # filters.echo.near_copy_of_instruction) or adds at most a word ("What fun ... ?").
    # A number of its own is the answer a restatement adds ("The output of the given program is
    # 13."; scorer v7): it counts as two words.
    own = set(out) - set(instruction_tokens)
    own_words = len(own) + sum(any(ch.isdigit() for ch in token) for token in own)
    starts_alike = bool(out and instruction_tokens) and out[0] == instruction_tokens[0]
    if own_words >= _OWN_WORDS and not starts_alike:
        return 1.0, overlap
    # Some echo is normal (restating the question); beyond 0.5 the output adds little.
    return max(0.0, min(1.0, (1.0 - overlap) / 0.5)), overlap


def score_heuristic_quality(
    instruction: str, input: str, output: str, *, finish_reason: str | None = None
) -> Score:
    """Score an example from 0 (useless) to 1 with cheap text statistics.

    Args:
        instruction: The task's instruction.
        input: The instance input (may be empty).
        output: The instance output.
        finish_reason: The engine's finish reason for this output when it is the whole
            completion (``"length"``: cut at the token limit, scored as truncated); None when
            unknown or when the output is one of several instances parsed from a completion
            (only the last of those can be cut, and ``generators.parsing`` drops it).

    Returns:
        Score "heuristic_quality" whose details hold each component, its raw statistic or
        evidence, and the weights; an output with no words once field labels are removed
        (``""``, ``"..."``, ``"Output:"``) scores 0.
    """
    out_tokens = rouge_tokenize(output)
    # A placeholder ("<noinput>", "N/A") says nothing; an answer of symbols alone ("👍") does.
    held = placeholder(output, instruction=instruction)
    content = [] if held else rouge_tokenize(FIELD_LABEL.sub(" ", output)) or _symbols(output)
    # List counters make every item's 3-grams differ ("1. Apple 2. Apple ..." repeated none),
    # so a loop of one item is measured without them; a text of counters only keeps them.
    words = rouge_tokenize(_without_counters(output)) or out_tokens or _symbols(output)
    copies = requested_copies(instruction)
    diversity, ttr = _diversity_component(words, copies)
    repetition, repeated = _repetition_component(words, copies)
    echo, rouge = _echo_component(
        instruction, input, output, rouge_tokenize(instruction), out_tokens
    )
    residue, residue_evidence = residue_factor(output)
    finished, truncation_evidence = truncation_factor(output)
    short, short_evidence = count_shortfall(instruction, output)
    if short < finished:
        finished, truncation_evidence = short, short_evidence
    if finish_reason == "length" and finished > 0.1:
        finished, truncation_evidence = 0.1, "finish reason 'length': cut at the token limit"
    components = {
        "length": _length_component(len(content)),
        "lexical_diversity": diversity,
        "repetition": repetition,
        "echo": echo,
        "residue": residue,
        "truncation": finished,
    }
    # A weighted mean alone lets one fatal flaw (a loop, an echo, residue) hide behind good
    # components, so the weakest component scales the result: a flaw ranks below any answer
    # without one, and the mean orders answers with the same flaw.
    mean = sum(WEIGHTS[k] * v for k, v in components.items())
    value = 0.0 if not content else mean * min(components.values())
    details = {
        "components": components,
        "output_tokens": len(out_tokens),
        "type_token_ratio": ttr,
        "repeated_trigram_ratio": repeated,
        "max_rouge_l_to_instruction": rouge,
        "residue": residue_evidence,
        "truncation": truncation_evidence,
        "placeholder": held,
        "requested_copies": copies,
        "weights": WEIGHTS,
    }
    return Score(scorer=SCORER_NAME, version=SCORER_VERSION, value=round(value, 6), details=details)
