"""Heuristic quality score of one (instruction, input, output) example.

Four components in [0, 1], kept in the score's details so a low score explains itself:
length (an output that is empty or runaway long), lexical diversity (type-token ratio of
the output), repetition (share of repeated word 3-grams, the signature of degenerate
generation) and overlap (an output that merely echoes the instruction or the input).
"""

from __future__ import annotations

from filters.rouge import rouge_l_f, rouge_tokenize
from filters.types import Score

SCORER_NAME = "heuristic_quality"
# 1: on rouge-score's [a-z0-9]+ tokens (text in other scripts had none and scored 0).
# 2: on filters.rouge tokens version 2 (words, or characters of Chinese, Japanese, Thai...).
SCORER_VERSION = "2"
WEIGHTS = {"length": 0.2, "lexical_diversity": 0.2, "repetition": 0.35, "overlap": 0.25}
_MAX_GOOD_WORDS = 600  # outputs up to this length are not penalised
_ZERO_AT_WORDS = 3000
_TTR_WINDOW = 100  # type-token ratio on a fixed window so long texts are not punished


def _length_component(n_tokens: int) -> float:
    if n_tokens == 0:
        return 0.0
    if n_tokens <= _MAX_GOOD_WORDS:
        return 1.0
    excess = (n_tokens - _MAX_GOOD_WORDS) / (_ZERO_AT_WORDS - _MAX_GOOD_WORDS)
    return max(0.0, 1.0 - excess)


def _diversity_component(tokens: list[str]) -> tuple[float, float]:
    """(component, type-token ratio over the first window of tokens)."""
    window = tokens[:_TTR_WINDOW]
    if not window:
        return 0.0, 0.0
    ttr = len(set(window)) / len(window)
    # Natural English prose sits around 0.5-0.8 on 100 words; below 0.3 is a loop.
    return min(1.0, ttr / 0.5), ttr


def _repetition_component(tokens: list[str]) -> tuple[float, float]:
    """(component, share of word 3-grams that repeat an earlier one)."""
    grams = list(zip(tokens, tokens[1:], tokens[2:], strict=False))
    if not grams:
        return 1.0, 0.0
    repeated = len(grams) - len(set(grams))
    ratio = repeated / len(grams)
    return max(0.0, 1.0 - 2.0 * ratio), ratio


def _overlap_component(
    instruction: list[str], inp: list[str], out: list[str]
) -> tuple[float, float]:
    """(component, highest ROUGE-L of the output against instruction or input)."""
    overlap = max(rouge_l_f(instruction, out), rouge_l_f(inp, out))
    # Some echo is normal (restating the question); beyond 0.5 the output adds little.
    return max(0.0, min(1.0, (1.0 - overlap) / 0.5)), overlap


def score_heuristic_quality(instruction: str, input: str, output: str) -> Score:
    """Score an example from 0 (useless) to 1 with cheap text statistics.

    Args:
        instruction: The task's instruction.
        input: The instance input (may be empty).
        output: The instance output.

    Returns:
        Score "heuristic_quality" whose details hold each component, its raw statistic
        and the weights; an empty output scores 0.
    """
    out_tokens = rouge_tokenize(output)
    length = _length_component(len(out_tokens))
    diversity, ttr = _diversity_component(out_tokens)
    repetition, repeated = _repetition_component(out_tokens)
    overlap, rouge = _overlap_component(
        rouge_tokenize(instruction), rouge_tokenize(input), out_tokens
    )
    components = {
        "length": length,
        "lexical_diversity": diversity,
        "repetition": repetition,
        "overlap": overlap,
    }
    # A weighted mean alone lets one fatal flaw (a loop, an echo) hide behind good
    # components, so the weakest component also scales the result down by up to half.
    mean = sum(WEIGHTS[k] * v for k, v in components.items())
    value = 0.0 if not out_tokens else mean * (0.5 + 0.5 * min(components.values()))
    details = {
        "components": components,
        "output_tokens": len(out_tokens),
        "type_token_ratio": ttr,
        "repeated_trigram_ratio": repeated,
        "max_rouge_l_to_prompt": rouge,
        "weights": WEIGHTS,
    }
    return Score(scorer=SCORER_NAME, version=SCORER_VERSION, value=round(value, 6), details=details)
