"""Scorer v10's kinds: junk v9 scored high and real answers v9 scored low (issue 18).

Placeholders, cut answers in scripts with other sentence marks, the input copied under a
heading; and, the other way, requested repetition, symbol-only answers and phonemic
transcriptions. Each kind with siblings (scripts, slots, positions, counts).
"""

from __future__ import annotations

import pytest

from filters.completion_defects import BARE_END_FLOOR, truncation_factor
from filters.echo import input_under_heading
from filters.placeholders import placeholder
from filters.quality import score_heuristic_quality
from filters.requested_counts import requested_copies


def value(instruction: str, output: str, inp: str = "") -> float:
    score = score_heuristic_quality(instruction, inp, output).value
    assert score is not None
    return score


# Placeholders: the whole answer is a template slot or a stand-in.
@pytest.mark.parametrize(
    "output",
    [
        "<noinput>",
        "<nooutput>",
        "<No output>",
        "[Your answer here]",
        "[Insert Bar Chart]",
        "(Gantt Chart included)",
        "{answer}",
        "{{ output }}",
        "${response}",
        "Output: <output>",
        "Answer: [your answer]",
        '"<noinput>"',
        "N/A",
        "n/a.",
        "TODO",
        "TBD",
        "FIXME",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
        "Insert answer here",
        "<输出>",
        "[这里填写答案]",
    ],
)
def test_placeholder_answers_score_zero(output: str) -> None:
    instruction = "Write a haiku about rain."
    assert placeholder(output, instruction=instruction) is not None
    assert value(instruction, output) == 0.0


@pytest.mark.parametrize(
    "instruction,output",
    [
        ("Which option is correct?", "(a)"),
        ("Classify the review.", "[Positive]"),
        ("Which HTML tag makes text bold?", "<b>"),
        ("Name the HTML element for a table.", "<table>"),
        ("Give a list of three numbers.", "[1, 2, 3]"),
        ("Give a point on the line.", "(2, 3)"),
        ("Name a fruit.", "Banana"),
        ("Write a haiku about rain.", "Soft rain on the roof <3"),
        ("Fill in the template.", "Dear [Name], thank you for the gift."),
    ],
)
def test_answers_with_brackets_are_no_placeholders(instruction: str, output: str) -> None:
    assert placeholder(output, instruction=instruction) is None
    assert value(instruction, output) > 0.5


# Sentence marks of other scripts: a cut answer ends open where the others close.
@pytest.mark.parametrize(
    "output",
    [
        # Chinese: a sentence closed by "。" with no space after it, then a cut one.
        "长城是中国古代的军事防御工程。它东起山海关，西至嘉峪关，全长两万多",
        # Chinese and Japanese, one sentence cut after its clauses.
        "长城是中国古代的军事防御工程，东起山海关，西至嘉峪关，全长两万多公里",
        "水をたくさん飲み、早く寝て、毎日散歩しま",
        "水をたくさん飲みましょう。早く寝て、毎日散",
        # Hindi lines closed by the danda, the last one cut.
        "रोज़ पानी पिएं।\nरोज़ सुबह टहलें।\nसमय पर सोने की कोशिश",
        # Arabic after its question mark, Urdu after its full stop, Armenian, Myanmar.
        "كيف حالك؟ أنا بخير وأتمنى أن تكون",
        "میں ٹھیک ہوں۔ آج موسم بہت اچھا ہے اور ہم",
        "Բարեւ։ Ես այսօր գնում եմ",
        "ကျွန်တော် နေကောင်းပါတယ်။ ဒီနေ့ ရာသီဥတု",
    ],
)
def test_cut_answer_in_another_script_ranks_below_its_whole(output: str) -> None:
    instruction = "Answer in your own language."
    assert value(instruction, output) < 0.75
    assert value(instruction, output) < value(instruction, output + "。")


@pytest.mark.parametrize(
    "output",
    [
        "长城是中国古代的军事防御工程。它东起山海关，西至嘉峪关。",
        "多喝水，早睡早起，每天散步半小时。",
        "北京",
        "おはようございます",
        "रोज़ पानी पिएं।\nरोज़ सुबह टहलें।\nसमय पर सोएं।",
        "كيف حالك؟ أنا بخير.",
        "ฉันชอบกินข้าว ฉันชอบไปทะเล",  # Thai marks no sentence end: not judged
    ],
)
def test_finished_answer_in_another_script_scores_high(output: str) -> None:
    assert value("Answer in your own language.", output) > 0.9


# The input copied whole under a heading.
TEXT = "The quick brown fox jumps over the lazy dog. It was a sunny day and all were happy."


@pytest.mark.parametrize(
    "output",
    [
        f"Summary: {TEXT}",
        f"Summary:\n\n{TEXT}",
        f"## Summary\n{TEXT}",
        f"**Summary**\n{TEXT}",
        f"Corrected sentence: {TEXT}",
        f"摘要：{TEXT}",
        f"Résumé : {TEXT}",
    ],
)
def test_input_under_a_heading_is_an_echo(output: str) -> None:
    assert input_under_heading(output, input_text=TEXT) is not None
    assert value("Summarize the text.", output, TEXT) == 0.0


@pytest.mark.parametrize(
    "output",
    [
        "Summary: A fox jumps over a dog on a sunny day.",  # its own words
        f"There are 23 vowels in: {TEXT}",  # the heading holds the answer
        f"Summary of a long story in many words here: {TEXT}",  # no heading: 9 words
        f"{TEXT}\n\nSummary: a fox and a dog.",
    ],
)
def test_answer_with_a_heading_or_its_own_words_is_no_input_echo(output: str) -> None:
    assert input_under_heading(output, input_text=TEXT) is None


# Repetition the instruction asks for is no loop.
@pytest.mark.parametrize(
    "instruction,output",
    [
        ("Repeat 'hello' twice.", "hello hello"),
        ("Repeat 'hello' five times.", "hello hello hello hello hello"),
        ("Say 'no' 3 times.", "no no no"),
        ("Write 'I will not talk in class' five times.", "I will not talk in class. " * 5),
        ("Write the pattern ABAB three times.", "ABAB ABAB ABAB"),
        ("Print the word yes ten times, one per line.", "\n".join(["yes"] * 10)),
        ("把“你好”重复三遍。", "你好你好你好"),
    ],
)
def test_requested_repetition_is_no_loop(instruction: str, output: str) -> None:
    score = score_heuristic_quality(instruction, "", output)
    components = score.details["components"]
    assert components["lexical_diversity"] == components["repetition"] == 1.0
    assert score.value is not None and score.value > 0.85  # a bare end may cost a little


@pytest.mark.parametrize(
    "instruction,copies",
    [
        ("Repeat 'hello' twice.", 2),
        ("Say it thrice.", 3),
        ("Write 'yes' 12 times.", 12),
        ("Write it ten times.", 10),
        ("把“你好”重复三遍。", 3),
        ("把“好”写十二遍。", 12),
        ("Say it eleven times.", 11),
        ("Multiply 3 times 5.", 1),
        ("How many times does 'a' appear?", 1),
        ("Describe a cat.", 1),
    ],
)
def test_requested_copies(instruction: str, copies: int) -> None:
    assert requested_copies(instruction) == copies


def test_a_loop_past_the_copies_asked_for_stays_low() -> None:
    assert value("Repeat 'hello' twice.", "hello " * 40) < 0.5
    assert value("Describe a cat.", "cat cat cat cat cat") < 0.5


# Symbols alone are an answer; a loop of them is not.
@pytest.mark.parametrize("output", ["👍", "👍🏽", "🇫🇷", "★", "😀🎉", "♥"])
def test_symbol_answer_scores_high(output: str) -> None:
    assert value("Reply with an emoji.", output) > 0.9


def test_symbol_loop_scores_low() -> None:
    assert value("Reply with an emoji.", "👍" * 30) < 0.5


# A phonemic transcription closes on its slash.
@pytest.mark.parametrize(
    "output",
    ["/kæt/", "/ˈwɔːtər/", "cat: /kæt/", "The IPA transcription of cat is /kæt/", "(/kæt/)"],
)
def test_phonemic_transcription_scores_high(output: str) -> None:
    assert value("Give the IPA transcription of cat.", output) > 0.9


@pytest.mark.parametrize("output", ["You can use cats and/", "Pick cat or dog /"])
def test_a_bare_slash_is_still_open(output: str) -> None:
    assert value("Name a pet.", output) < 0.5


# A table cut in its last row, and a record's fields that end bare (truncation).
@pytest.mark.parametrize(
    "output",
    [
        "Fruit | Vegetables\nBananas |",
        "Name | Age | City\nAnn | 31 | Oslo\nBob | 25 |",
        "Task | Start | End\n---- | ----- | ---\nCreate a website |",
        "Carbs | 8 g\nProtein | 0.7 g\nFat | 0.4 g\nVitamin C",
        "Land | Capital\nFrankreich | Paris\nDeutschland | Berlin\nItalien",
    ],
)
def test_table_cut_in_its_last_row_is_cut(output: str) -> None:
    assert truncation_factor(output)[0] <= 0.3
    assert value("Make a table.", output) < 0.5


@pytest.mark.parametrize(
    "output",
    [
        "| Name | Age |\n|------|-----|\n| Ann | 31 |\n| Bob | 25 |",  # rows closed by "|"
        "Name | Age\nAnn | 31\nBob | 25",
        "Name | Age\nAnn | 31\nBob | 25\n\nSource: census",  # a note after a blank line
        "Tom Hanks: Lead\nEmma Stone: Lead\nKevin Costner: Supporting",
        "Environment:\nOS: Windows 10\nProgram: Program Name",
        "Apfel: rot\nBanane: gelb\nKiwi: grün",
    ],
)
def test_finished_table_or_field_list_scores_high(output: str) -> None:
    assert truncation_factor(output)[0] >= BARE_END_FLOOR  # a bare end may cost a little
    assert value("Make a table.", output) > 0.85


@pytest.mark.parametrize(
    "output",
    [
        # Dialogue lines say sentences: a cut one is still cut.
        "Parent: That isn't acceptable.\nChild: Why not?\nParent: Because your actions do not",
        "Alice: Hey, how was the concert?\n\nBob: It was great! I especially enjoyed",
        "Text 1: The rose petals were floating in the breeze.\nText 2: The petals",
    ],
)
def test_dialogue_cut_mid_line_is_no_field_list(output: str) -> None:
    assert truncation_factor(output)[0] < 0.5


# Code cut at a block header before its ':' and markup cut before any element closes.
@pytest.mark.parametrize(
    "output",
    [
        "count = 0\nfor num in [5, 9, 10]:\n    if num % 3 == 0",
        "def factorial(num):\n  result = 1\n  for i",
        "def f(xs):\n    for x in xs:\n        while x > 0",
        "class A:\n    def run(self)",
        "<html>\n   <div>",
        '<div class="card">\n  <ul>\n    <li>One',
    ],
)
def test_code_or_markup_cut_before_it_closes_is_cut(output: str) -> None:
    assert truncation_factor(output)[0] <= 0.3


@pytest.mark.parametrize(
    "output",
    [
        "def f(x):\n    if x > 0:\n        return x\n    return 0",
        "for n in range(3):\n    print(n)",
        "if x > 0 then it works",  # prose, not code
        "<b>",
        "<table>",
        "<div>\n  <p>Hello</p>\n</div>",
    ],
)
def test_finished_code_or_a_single_tag_is_not_cut(output: str) -> None:
    assert truncation_factor(output)[0] >= BARE_END_FLOOR
