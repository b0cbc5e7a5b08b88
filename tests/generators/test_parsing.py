"""Parsers: every completion gives instructions/instances or a failure with a reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from generators.errors import ParseError
from generators.parsing import (
    parse_instances_input_first,
    parse_instances_output_first,
    parse_instructions,
    parse_is_classification,
)
from generators.types import Completion


def done(text: str, finish: str = "stop") -> Completion:
    return Completion(text, finish, 10, 10, 0.01)


def reason_of(call: Callable[[], object]) -> str:
    with pytest.raises(ParseError) as info:
        call()
    return info.value.reason


def test_numbered_continuation_splits_into_instructions() -> None:
    text = " write a haiku about rain.\n10. Sort the list of numbers.\n11 . Translate to French:"
    parsed = parse_instructions(done(text))
    assert parsed.instructions == [
        "Write a haiku about rain.",
        "Sort the list of numbers.",
        "Translate to French:",
    ]
    assert parsed.failures == []


def test_chat_style_answer_numbered_from_one_also_parses() -> None:
    parsed = parse_instructions(done("1. First task.\n2) Second task.\n"))
    assert parsed.instructions == ["First task.", "Second task."]


def test_no_numbering_is_one_instruction() -> None:
    # The prompt ends on "9.", so an unnumbered answer is the 9th item, whitespace collapsed.
    parsed = parse_instructions(done(" Explain why the sky\nis blue."))
    assert parsed.instructions == ["Explain why the sky is blue."]


def test_empty_completion_is_a_failure() -> None:
    assert reason_of(lambda: parse_instructions(done(""))) == "empty"
    assert reason_of(lambda: parse_instructions(done(" \n\t "))) == "empty"


def test_length_cut_completion_is_refused_whole_by_default() -> None:
    text = " Task one.\n10. Task two.\n11. Task thr"
    assert reason_of(lambda: parse_instructions(done(text, "length"))) == "truncated"


def test_length_cut_completion_can_keep_its_complete_items() -> None:
    parsed = parse_instructions(
        done(" Task one.\n10. Task two.\n11. Task thr", "length"), keep_truncated=True
    )
    assert parsed.instructions == ["Task one.", "Task two."]
    assert [f.reason for f in parsed.failures] == ["truncated"]
    assert parsed.failures[0].excerpt == "Task thr"


def test_backend_error_completion_carries_its_retry_log() -> None:
    failed = Completion("", "error", 0, 0, 1.0, 2, ["attempt 1: HTTP 503", "attempt 2: HTTP 503"])
    with pytest.raises(ParseError) as info:
        parse_instructions(failed)
    assert info.value.reason == "backend_error"
    assert "HTTP 503" in info.value.excerpt


def test_unicode_junk_is_refused_item_by_item() -> None:
    text = " \x00\x07\ufffd\u200b ### \U0001f600\n10. Keep this one.\n11. \ud7ff\x1b[0m ..."
    parsed = parse_instructions(done(text))
    assert parsed.instructions == ["Keep this one."]
    assert {f.reason for f in parsed.failures} == {"no_text"}


def test_only_junk_is_a_failure_naming_the_item_reasons() -> None:
    with pytest.raises(ParseError) as info:
        parse_instructions(done("\x00\x01 ### !!!\n10. ???"))
    assert info.value.reason == "no_instructions"
    assert "no_text" in info.value.excerpt


def test_non_latin_instructions_are_kept() -> None:
    parsed = parse_instructions(done(" Écris un poème.\n10. 日本語に翻訳してください。"))
    assert parsed.instructions == ["Écris un poème.", "日本語に翻訳してください。"]


def test_hundred_kilobyte_completion_is_bounded() -> None:
    huge = " " + "word " * 20_000 + "\n10. A normal instruction."
    assert len(huge) > 100_000
    parsed = parse_instructions(done(huge), max_item_chars=1000)
    assert parsed.instructions == ["A normal instruction."]
    assert [f.reason for f in parsed.failures] == ["item_too_long"]
    assert len(parsed.failures[0].excerpt) <= 200


def test_hundred_kilobyte_numbered_completion_parses_quickly() -> None:
    huge = "".join(f"\n{i % 900 + 10}. Instruction number {i}." for i in range(4000))
    assert len(huge) > 100_000
    parsed = parse_instructions(done(" First." + huge))
    assert len(parsed.instructions) == 4001


@pytest.mark.parametrize(
    ("text", "expected"),
    [(" Yes", True), (" no", False), ("YES.", True), (" No, it is not", False), ("\n yes", True)],
)
def test_classification_answer(text: str, expected: bool) -> None:
    assert parse_is_classification(done(text)) is expected


def test_classification_answer_cut_by_length_still_counts() -> None:
    assert parse_is_classification(done(" Yes it", "length")) is True


@pytest.mark.parametrize(("text", "reason"), [("", "empty"), (" Maybe", "not_yes_no")])
def test_classification_answer_failures(text: str, reason: str) -> None:
    assert reason_of(lambda: parse_is_classification(done(text))) == reason


def test_input_first_examples() -> None:
    text = "Example 1\nInput: 3, 1, 2\nOutput: 1, 2, 3\nExample 2\nList: [5, 4]\nOutput: [4, 5]\n\n"
    parsed = parse_instances_input_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [
        ("3, 1, 2", "1, 2, 3"),
        ("List: [5, 4]", "[4, 5]"),
    ]


def test_input_first_without_input_is_output_only() -> None:
    parsed = parse_instances_input_first(done("Output: Plank, squats."), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [("", "Plank, squats.")]


def test_input_first_keeps_at_most_max_instances_and_drops_the_cut_one() -> None:
    text = "".join(f"Example {k}\nInput: {k}\nOutput: {k * 2}\n" for k in range(1, 5))
    cut = done(text + "Example 5\nInput: 5\nOut", "length")
    parsed = parse_instances_input_first(cut, max_instances=2)
    assert [i.output for i in parsed.instances] == ["2", "4"]
    assert [f.reason for f in parsed.failures] == ["truncated"]


def test_input_first_example_without_output_is_recorded() -> None:
    text = "Example 1\nInput: a\nOutput: b\nExample 2\nInput: c\nOutput:\n"
    parsed = parse_instances_input_first(done(text), max_instances=5)
    assert len(parsed.instances) == 1
    assert [f.reason for f in parsed.failures] == ["empty_output"]


def test_output_first_labels_then_inputs() -> None:
    text = (
        "Class label: Positive\nSentence: I love it.\nClass label: Negative\nSentence: I hate it.\n"
    )
    parsed = parse_instances_output_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [
        ("Sentence: I love it.", "Positive"),
        ("Sentence: I hate it.", "Negative"),
    ]


@pytest.mark.parametrize("text", ["", "no labels here at all", "Class label:\n\n"])
def test_instances_failures(text: str) -> None:
    reason = reason_of(lambda: parse_instances_output_first(done(text), max_instances=5))
    assert reason in {"empty", "no_instances"}


def test_huge_instance_is_refused() -> None:
    text = "Example 1\nInput: " + "x" * 100_000 + "\nOutput: y\nExample 2\nInput: a\nOutput: b"
    parsed = parse_instances_input_first(done(text), max_instances=5, max_chars=5000)
    assert [i.output for i in parsed.instances] == ["b"]
    assert [f.reason for f in parsed.failures] == ["instance_too_long"]
