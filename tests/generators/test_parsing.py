"""Parsers: every completion gives instructions/instances or a failure with a reason."""

from __future__ import annotations

import contextlib
import time
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The embedded model's demo export: a second answer run on inside one example.
        (
            "Example 1\nInput: Have you ever lost a pet?\nOutput: No, I have never lost a pet.\n"
            "Output: Yes, I have lost a pet.",
            [("Have you ever lost a pet?", "No, I have never lost a pet.")],
        ),
        # Numbered labels, no input, three answers.
        (
            "Output 1: 30°C = 86°F\nOutput 2: 0°C = 32°F\nOutput 3: 100°C = 212°F",
            [("", "30°C = 86°F")],
        ),
        # Per example, in the second of two examples, after a multi-line first answer.
        (
            "Example 1\nInput: a\nOutput: line one\nline two\nOutput:   again\n"
            "Example 2\nInput: b\nOutput: B\n Output : B again",
            [("a", "line one\nline two"), ("b", "B")],
        ),
        # Mid-line "Output:" is text, not a second answer.
        (
            "Example 1\nInput: x\nOutput: The field named Output: holds the result.",
            [("x", "The field named Output: holds the result.")],
        ),
    ],
)
def test_input_first_keeps_the_first_of_run_on_outputs(
    text: str, expected: list[tuple[str, str]]
) -> None:
    parsed = parse_instances_input_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == expected


def test_input_first_without_input_is_output_only() -> None:
    parsed = parse_instances_input_first(done("Output: Plank, squats."), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [("", "Plank, squats.")]


def test_input_first_keeps_at_most_max_instances_and_drops_the_cut_one() -> None:
    text = "".join(f"Example {k}\nInput: {k}\nOutput: {k * 2}\n" for k in range(1, 5))
    cut = done(text + "Example 5\nInput: 5\nOut", "length")
    parsed = parse_instances_input_first(cut, max_instances=2)
    assert [i.output for i in parsed.instances] == ["2", "4"]
    # Nothing is dropped silently: the two complete examples past the limit are recorded too.
    assert [f.reason for f in parsed.failures] == ["truncated", "over_limit", "over_limit"]


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


def test_decimal_at_a_line_start_is_not_a_list_number() -> None:
    text = (
        " Convert 37.5 degrees Celsius to Fahrenheit and show the formula:\n37.5 C\n"
        "9. List three prime numbers."
    )
    parsed = parse_instructions(done(text))
    assert parsed.instructions == [
        "Convert 37.5 degrees Celsius to Fahrenheit and show the formula: 37.5 C",
        "List three prime numbers.",
    ]
    assert parsed.failures == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A decimal opening the completion, a line, or a later item.
        (" 3.14 is pi: round it to one decimal.\n10. Name a color.",
         ["3.14 is pi: round it to one decimal.", "Name a color."]),
        (" Add the weights:\n2.5 kg\n10.75 kg\n10. Name a color.",
         ["Add the weights: 2.5 kg 10.75 kg", "Name a color."]),
        (" Sort the versions:\n  1.2.3\n1.10)\n11. Name a color.",
         ["Sort the versions: 1.2.3 1.10)", "Name a color."]),
        # Other scripts and a four-digit year at a line start.
        (" Переведите: 36,6 градуса\n12.5 °C\n10. 次の数を足してください：\n1.5\n2.25",
         ["Переведите: 36,6 градуса 12.5 °C", "次の数を足してください： 1.5 2.25"]),
        (" When was the Berlin wall built?\n1961. Answer in one line.\n10. Name a color.",
         ["When was the Berlin wall built? 1961. Answer in one line.", "Name a color."]),
        # Real markers still split, with a space or at the end of their line.
        (" First.\n10 . Second.\n11) Third.\n12.\nFourth.",
         ["First.", "Second.", "Third.", "Fourth."]),
    ],
)  # fmt: skip
def test_list_markers_need_a_space_after_them(text: str, expected: list[str]) -> None:
    assert parse_instructions(done(text)).instructions == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "Output:" and "Input:" mid-sentence are text.
        ("Example 1\nInput: What does the Output: field hold?\nOutput: The result.",
         [("What does the Output: field hold?", "The result.")]),
        ("Example 1\nInput: 3\nOutput: Type Input: 3 into the box.",
         [("3", "Type Input: 3 into the box.")]),
        ("Output: 翻译 Output: 字段 means the result.",
         [("", "翻译 Output: 字段 means the result.")]),
        # "Example N" inside prose, or opening a sentence without a colon, is text.
        ("Example 1\nSentence: See Example 2 in the appendix.\nOutput: Appendix.",
         [("Sentence: See Example 2 in the appendix.", "Appendix.")]),
        ("Output: A proof.\nExample 2 shows the converse.\nExample 2\nInput: x\nOutput: y",
         [("", "A proof.\nExample 2 shows the converse."), ("x", "y")]),
        # A bare "Example" line splits; "Example:" opening prose does not.
        ("Example\nInput: a\nOutput: b\nExample:\nInput: c\nOutput: Example: see above.",
         [("a", "b"), ("c", "Example: see above.")]),
        ("Output: The rule.\nExample: cats are mammals, so they nurse their young.",
         [("", "The rule.\nExample: cats are mammals, so they nurse their young.")]),
        # Indented labels and "Example N:" with the example on the same line do split.
        ("Example 1: Input: a\n  Output: b\n  Example 2.\n  Input: c\n  Output: d",
         [("a", "b"), ("c", "d")]),
    ],
)  # fmt: skip
def test_input_first_labels_count_only_at_line_starts(
    text: str, expected: list[tuple[str, str]]
) -> None:
    parsed = parse_instances_input_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == expected
    assert parsed.failures == []


def test_class_label_mid_line_is_text() -> None:
    text = (
        "Class label: Positive\nSentence: The Class label: field was right.\n"
        "  Class label: Negative\nSentence: Wrong Class label: here."
    )
    parsed = parse_instances_output_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [
        ("Sentence: The Class label: field was right.", "Positive"),
        ("Sentence: Wrong Class label: here.", "Negative"),
    ]


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_instances_input_first, "Example 1\nInput: 3, 1, 2\nOutput: 1, 2,"),
        (parse_instances_input_first, "Output: The first step is to"),
        (parse_instances_input_first, "Example 1\nInput: Пример\nOutput: Перев"),
        (parse_instances_output_first, "Class label: Positive\nSentence: I lo"),
        (parse_instances_output_first, "Class label: Neg"),
    ],
)
def test_only_instance_cut_by_length_is_dropped_with_its_reason(
    parse: Callable[..., object], text: str
) -> None:
    with pytest.raises(ParseError) as info:
        parse(done(text, "length"), max_instances=5)
    assert info.value.reason == "truncated"
    assert info.value.excerpt.strip() and info.value.excerpt in text


def test_cut_completion_keeps_its_complete_examples_only() -> None:
    text = "Class label: Positive\nSentence: Great.\nClass label: Negative\nSentence: Ba"
    parsed = parse_instances_output_first(done(text, "length"), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [("Sentence: Great.", "Positive")]
    assert [f.reason for f in parsed.failures] == ["truncated"]


@pytest.mark.parametrize(
    "text",
    ["Sure! The sea is wide and blue.", "Input: 3, 1, 2\nThe sorted list is 1, 2, 3.", "1, 2, 3"],
)
def test_input_first_without_any_marker_gives_no_instance(text: str) -> None:
    # The paper: no "Example" and no "Output:" means no instance (not the whole text as output).
    assert reason_of(lambda: parse_instances_input_first(done(text), max_instances=5)) == (
        "no_marker"
    )


def test_chatter_before_the_first_example_is_recorded_not_kept() -> None:
    text = "Sure, here are two examples:\nExample 1\nInput: a\nOutput: b\nExample 2\nOutput: c"
    parsed = parse_instances_input_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [("a", "b"), ("", "c")]
    assert [(f.reason, f.excerpt) for f in parsed.failures] == [
        ("preamble", "Sure, here are two examples:")
    ]
    # An unnumbered first example (it has its Output:) still counts.
    parsed = parse_instances_input_first(
        done("Input: 3\nOutput: 6\nExample 2\nInput: 4\nOutput: 8"), max_instances=5
    )
    assert [(i.input, i.output) for i in parsed.instances] == [("3", "6"), ("4", "8")]


def test_output_first_chatter_before_the_first_label_is_recorded() -> None:
    parsed = parse_instances_output_first(
        done("Here you go.\nClass label: Yes\nQuestion: Is it?"), max_instances=5
    )
    assert [(i.input, i.output) for i in parsed.instances] == [("Question: Is it?", "Yes")]
    assert [f.reason for f in parsed.failures] == ["preamble"]


def test_no_instances_names_the_reasons_of_its_items() -> None:
    with pytest.raises(ParseError) as info:
        parse_instances_input_first(done("Example 1\nInput: a\nOutput:\n"), max_instances=5)
    assert info.value.reason == "no_instances"
    assert info.value.excerpt.startswith("[empty_output]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Every line break str.splitlines knows ends a label's line, not only "\n".
        ("Example 1\r\nInput: a\r\nOutput: b\r\nExample 2\r\nInput: c\r\nOutput: d\r\n",
         [("a", "b"), ("c", "d")]),
        ("Example 1\rInput: a\rOutput: b\rExample 2\rInput: c\rOutput: d",
         [("a", "b"), ("c", "d")]),
        ("Input: a\u2028Output: b\u2029Input: c", [("a", "b")]),
        ("Input: a\x85Output: b\x85Output 2: c", [("a", "b")]),
        # The answer keeps its own lines, whichever break the model wrote.
        ("Input: a\r\nOutput: line one\rline two", [("a", "line one\nline two")]),
        # Indented with no-break or ideographic spaces; spaced with tabs.
        ("\u00a0Input: a\n\u00a0Output: b", [("a", "b")]),
        ("Example 1\n\u3000Input：今天很冷。\n\u3000Output：It is cold today.\n"
         "\u3000Output：Today is cold.", [("今天很冷。", "It is cold today.")]),
        # A full-width colon ends a label as ":" does, in every label.
        ("Example 1：Input：2+2\nOutput：4\nExample 2：\nInput 2：3+3\nOutput 2：6",
         [("2+2", "4"), ("3+3", "6")]),
        ("Input: 这家餐厅的汤太咸了。\nOutput：The soup is too salty.\nInput：今天下雨。",
         [("这家餐厅的汤太咸了。", "The soup is too salty.")]),
        # Mid-line, a full-width "Output：" is text as ":" is.
        ("Input: x\nOutput: 字段 Output：表示结果。", [("x", "字段 Output：表示结果。")]),
    ],
)  # fmt: skip
def test_labels_end_at_any_line_break_space_or_colon_form(
    text: str, expected: list[tuple[str, str]]
) -> None:
    parsed = parse_instances_input_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == expected
    assert parsed.failures == []


def test_output_first_labels_with_a_full_width_colon_or_a_lone_carriage_return() -> None:
    text = "Class label：正面\r句子：我很喜欢。\rClass label: Negative\r\nSentence: Bad."
    parsed = parse_instances_output_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [
        ("句子：我很喜欢。", "正面"),
        ("Sentence: Bad.", "Negative"),
    ]


def test_list_numbers_split_at_any_line_break() -> None:
    text = " First.\r10. Second.\r\n11.\u00a0Third.\u202812.\rFourth."
    assert parse_instructions(done(text)).instructions == ["First.", "Second.", "Third.", "Fourth."]


def test_lower_case_output_line_is_text_not_a_label() -> None:
    # As in the authors' patterns, labels are case-sensitive: "output:" is a YAML or code key.
    text = "Example 1\nInput: a webpack config\nOutput: entry: ./a.js\noutput:\n  path: dist"
    parsed = parse_instances_input_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == [
        ("a webpack config", "entry: ./a.js\noutput:\n  path: dist")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Input: 2+2\noutput: 4",
        # Markdown around the label: the authors' split leaves "** 4" as the answer; refused.
        "Input: 2+2\n**Output:** 4",
        "### Input:\n2+2\n### Output:\n4",
    ],
)
def test_label_forms_the_paper_does_not_write_give_no_instance(text: str) -> None:
    assert reason_of(lambda: parse_instances_input_first(done(text), max_instances=5)) == (
        "no_marker"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Output" + " " * 200_000 + "x",
        "Input" + "\u3000" * 200_000 + "x",
        "Example" + " " * 200_000 + "x",
        "Example 1" + " " * 200_000 + "x\nOutput: y",
        ("\n" + " " * 50 + "Output 1234567 ") * 4000,
    ],
)
def test_long_runs_of_spaces_inside_a_label_parse_in_linear_time(text: str) -> None:
    # Adjacent optional runs ("Output[ \t]*\d*[ \t]*:") backtracked quadratically: 200k spaces
    # took ~76 s of CPU; linear, it is well under 0.1 s.
    started = time.process_time()
    for parse in (parse_instances_input_first, parse_instances_output_first):
        with contextlib.suppress(ParseError):
            parse(done(text), max_instances=5)
    assert time.process_time() - started < 2.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The embedded model's run-on: the input-first format's answers after the input.
        ("Class label: (d)\nSentence: I am going to the party tomorrow.\nOutput: (a) Yes\n"
         "Output: (b) No\nClass label: (a)\nSentence: See you.",
         [("Sentence: I am going to the party tomorrow.", "(d)"), ("Sentence: See you.", "(a)")]),
        ("Class label: Spam\nEmail: Win now!\nExample 2\nEmail: Hi mum.\nOutput: Not spam",
         [("Email: Win now!", "Spam")]),
        ("Class label：正面\n句子：很好。\n\u3000Output：负面", [("句子：很好。", "正面")]),
        # "Input:" is a field label an output-first input may use; mid-line "Output:" is text.
        ("Class label: Yes\nInput: Is the Output: field set?",
         [("Input: Is the Output: field set?", "Yes")]),
    ],
)  # fmt: skip
def test_output_first_input_ends_at_the_input_first_labels(
    text: str, expected: list[tuple[str, str]]
) -> None:
    parsed = parse_instances_output_first(done(text), max_instances=5)
    assert [(i.input, i.output) for i in parsed.instances] == expected
    assert parsed.failures == []
