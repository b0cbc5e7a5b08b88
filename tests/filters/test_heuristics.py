"""Every heuristic rule, switched on and off, with adversarial spellings."""

from __future__ import annotations

from typing import Any

import pytest

from filters.heuristics import (
    DEFAULT,
    INSTANCE_RULES,
    INSTRUCTION_RULES,
    MEDIA_KEYWORDS,
    PAPER_KEYWORDS,
    RULE_VERSIONS,
    RULES_VERSION,
    HeuristicConfig,
    check_instances,
    check_instruction,
)
from filters.list_numbers import leading_list_number

GOOD = "Give three tips for staying healthy."


def rule_of(text: str, config: HeuristicConfig = DEFAULT) -> str | None:
    verdict = check_instruction(text, config)
    return None if verdict.accepted else verdict.rule


def test_accepted_verdict_shape() -> None:
    verdict = check_instruction(GOOD)
    assert verdict.accepted and verdict.rule == "all" and verdict.reason == ""
    assert verdict.rule_version == RULES_VERSION


@pytest.mark.parametrize(
    "text,rule",
    [
        ("", "empty_instruction"),
        ("   \u200b\u200d  ", "empty_instruction"),
        ("Summarize this text", "instruction_length"),  # 3 words: needs more than 3
        ("Summarize this text now", None),
        (" ".join(["word"] * 150), None),
        (" ".join(["word"] * 151), "instruction_length"),
        ("Describe the image below in detail.", "unsuitable_keyword"),
        ("Describe these PICTURES in detail please.", "unsuitable_keyword"),
        ("Explain how to go to the airport quickly.", "unsuitable_keyword"),
        ("Plot the values of this function over time.", "unsuitable_keyword"),
        ("Write a poem about mapping software engineers.", None),  # 'mapping' is not 'map'
        ("Summarize the profile of this actor please.", None),  # 'file' inside a word
        ("Write a program that sorts a list of numbers.", "blocked_prefix"),
        ("write a  program that sorts a list of numbers.", "blocked_prefix"),
        ("Please write a program that sorts numbers.", None),  # only at the start
        ('"Translate this sentence into French please."', "starts_with_punctuation"),
        ("- Translate this sentence into French.", "starts_with_punctuation"),
        ("Écrivez un poème sur la mer, s'il vous plaît.", "starts_with_non_ascii"),
        ("Напишите стихотворение о море для детей.", "starts_with_non_ascii"),
        ("写一首关于大海的诗 请 写 吧", "starts_with_non_ascii"),
        ("Escribe un poema sobre el mar para niños.", None),  # non-English, ASCII start
    ],
)
def test_instruction_rules(text: str, rule: str | None) -> None:
    assert rule_of(text) == rule


@pytest.mark.parametrize(
    "text",
    [
        "Describe the іmаge below in detail.",  # Cyrillic і and а
        "Describe the im\u200bage below in detail.",  # zero-width space inside
        "Describe the ｉｍａｇｅ below in detail.",  # fullwidth
        "Describe the IMAGE below in detail.",
        "Describe the Ιmage below in detail.",  # Greek capital iota
    ],
)
def test_keyword_rule_sees_through_lookalikes(text: str) -> None:
    verdict = check_instruction(text)
    assert verdict.rule == "unsuitable_keyword"
    assert "image" in verdict.reason


def test_zero_width_prefix_does_not_hide_punctuation_or_prefix() -> None:
    assert rule_of("\u200b\u200b- Translate this sentence now.") == "starts_with_punctuation"
    assert rule_of("\ufeffWrite a program that adds numbers.") == "blocked_prefix"
    assert rule_of("\u200bОпишите море в трех словах.") == "starts_with_non_ascii"
    # A Cyrillic look-alike first letter is still non-ASCII: the paper's rule is literal.
    assert rule_of("Оutline the plan for a new startup.") == "starts_with_non_ascii"


def test_very_long_text_is_fast_and_rejected() -> None:
    assert rule_of("word " * 200_000) == "instruction_length"


def test_first_failing_rule_wins_and_rules_are_switchable() -> None:
    text = "Draw the picture of a cat"  # length ok (5 words), keyword fails
    assert rule_of(text) == "unsuitable_keyword"
    no_kw = HeuristicConfig(enabled_rules=frozenset(INSTRUCTION_RULES) - {"unsuitable_keyword"})
    assert rule_of(text, no_kw) is None
    assert rule_of("Draw", no_kw) == "instruction_length"
    nothing = HeuristicConfig(enabled_rules=frozenset())
    for text in ["", "Draw", "- x", "É"]:
        assert rule_of(text, nothing) is None


def test_config_thresholds_and_keywords() -> None:
    loose = HeuristicConfig(min_words=0, max_words=5)
    assert rule_of("Summarize", loose) is None
    assert rule_of("one two three four five six", loose) == "instruction_length"
    media = HeuristicConfig(keywords=PAPER_KEYWORDS + MEDIA_KEYWORDS)
    assert rule_of("Compose some music for a rainy day.") is None
    assert rule_of("Compose some music for a rainy day.", media) == "unsuitable_keyword"
    assert rule_of("Solve this for me today please", HeuristicConfig(keywords=())) is None


def test_config_validation() -> None:
    # pydantic reports the library's ConfigError as a ValidationError; both are ValueErrors.
    with pytest.raises(ValueError, match="unknown heuristic rules"):
        HeuristicConfig(enabled_rules=frozenset({"no_such_rule"}))
    with pytest.raises(ValueError, match="bad word bounds"):
        HeuristicConfig(min_words=10, max_words=5)
    with pytest.raises(ValueError, match="min_words"):
        HeuristicConfig(min_words=-1)
    assert DEFAULT == HeuristicConfig() != HeuristicConfig(max_words=100)


def test_every_rule_is_versioned() -> None:
    assert set(RULE_VERSIONS) == set(INSTRUCTION_RULES) | set(INSTANCE_RULES)
    verdict = check_instruction("Draw")
    assert verdict.rule_version == RULE_VERSIONS["instruction_length"]
    assert verdict.reason


def test_instance_rules() -> None:
    verdicts = check_instances(
        [
            ("", "Positive"),
            ("Great movie!", "Output:  Great   movie!"),  # output repeats input (normalised)
            ("", "  \u200b "),
            ("", "positive"),  # duplicate of the first after normalisation
            ("", "Maybe"),
            ("x" * 6000, "Negative"),
            ("Fine", "Negative"),
        ],
        is_classification=True,
        labels=["Positive", "Negative"],
    )
    assert [v.rule if not v.accepted else None for v in verdicts] == [
        None,
        "output_equals_input",
        "empty_output",
        "duplicate_instance",
        "label_not_in_labels",
        "instance_too_long",
        None,
    ]
    assert all(v.reason for v in verdicts if not v.accepted)
    assert all(v.rule_version == RULE_VERSIONS[v.rule] for v in verdicts if not v.accepted)


def test_label_rule_only_for_classification_with_labels() -> None:
    assert check_instances([("", "Maybe")], is_classification=False, labels=["Yes"])[0].accepted
    assert check_instances([("", "Maybe")], is_classification=True)[0].accepted


def test_instance_rules_switchable_and_long_output() -> None:
    cfg = HeuristicConfig(enabled_rules=frozenset(INSTANCE_RULES) - {"empty_output"})
    assert check_instances([("a", "")], is_classification=False, config=cfg)[0].accepted
    long_out = check_instances([("", "y" * 20000)], is_classification=False)[0]
    assert long_out.rule == "instance_too_long"
    assert check_instances([], is_classification=False) == []


@pytest.mark.parametrize(
    "text",
    [
        "2. Rewrite the sentence in the passive voice.",  # the demo's residue
        "2) Rewrite the sentence in the passive voice.",
        "(2) Rewrite the sentence in the passive voice.",
        "#2 Rewrite the sentence in the passive voice.",
        "# 12. Rewrite the sentence in the passive voice.",
        "Task 2: Rewrite the sentence in the passive voice.",
        "Instruction 3: Rewrite the sentence in the passive voice.",
        "instruction #14. Rewrite the sentence in the passive voice.",
        "Question 7) Why is the sky blue during the day?",
        "15 . Sort these numbers from the smallest one.",
        "3.Rewrite the sentence in the passive voice.",
        "b) Rewrite the sentence in the passive voice.",
        "\u200b2. Rewrite the sentence in the passive voice.",  # hidden by a zero-width space
        "２. Перепишите это предложение в страдательном залоге.",  # fullwidth digit, Cyrillic
        "4. Écrivez une phrase à la voix passive.",
        # v2: a numbered label of any word, in any script, and every list-number form.
        "Sentence 2: The cat chased the mouse across the garden.",  # the demo's residue
        "Sentence 2. The cat chased the mouse across the garden.",
        "Step 2: Rewrite the sentence in the passive voice.",
        "Example #3 - Rewrite the sentence in the passive voice.",
        "Example #3: Rewrite the sentence in the passive voice.",
        "Task No. 4: Rewrite the sentence in the passive voice.",
        "Sample task 12: Rewrite the sentence in the passive voice.",
        "Part IV: Rewrite the sentence in the passive voice.",
        "Q2: Why is the sky blue during the day?",
        "Q 2: Why is the sky blue during the day?",
        "[2] Rewrite the sentence in the passive voice.",
        "2 - Rewrite the sentence in the passive voice.",
        "2 – Rewrite the sentence in the passive voice.",
        "2: Rewrite the sentence in the passive voice.",
        "II. Rewrite the sentence in the passive voice.",
        "iv) Rewrite the sentence in the passive voice.",
        "２．把这句话改写成被动语态。",  # fullwidth digit and full stop
        "２、把这句话改写成被动语态。",
        "【2】把这句话改写成被动语态。",
        "问题2：为什么天空是蓝色的？",
        "問題３：空はなぜ青いのですか。",
        "第3题：为什么天空是蓝色的？",
        "第二步：把这句话改写成被动语态。",
        "질문 2: 하늘은 왜 파란가요?",
        "Frage 3: Warum ist der Himmel blau?",
        "Aufgabe 3. Schreibe den Satz im Passiv.",
        "Задание 5: Перепишите предложение в страдательном залоге.",
        "سؤال 2: لماذا السماء زرقاء؟",
        "Pregunta 4 - ¿Por qué el cielo es azul?",
    ],
)
def test_instruction_starting_with_a_list_number_is_rejected(text: str) -> None:
    verdict = check_instruction(text)
    assert verdict.rule == "starts_with_list_number"
    assert verdict.rule_version == RULE_VERSIONS["starts_with_list_number"] == "3"
    assert "list number" in verdict.reason


@pytest.mark.parametrize(
    "text",
    [
        "2.5 liters of water: how many cups is that?",
        "3.x versions of Python differ how from 2.7?",
        "10 ways to reduce stress at work, please list them.",
        "3D printing: explain how it works to a child.",
        "1990s music: name five famous bands of the decade.",
        "Tasks 2 and 3 are hard; explain why step by step.",
        "Give 2) examples? No: give three examples of verbs.",  # a number not at the start
        "Is 7 a prime number or not? Explain briefly.",
        # Counts, years, times and arithmetic at the start are content, not list numbers.
        "3 friends split a bill of $45 equally; how much does each pay?",
        "2024 was a leap year: explain what that means for February.",
        "5 ways to reduce stress at work: list and explain them.",
        "1:1 ratios: explain what they mean with an example.",
        "3 - 2 = ? Explain your answer to a child.",
        "What is 12 - 5? Show your working.",
        "Web 2.0 changed the internet: explain how.",
        "Windows 10 vs. Windows 11: compare their features.",
        "COVID-19: explain how vaccines work.",
        "Multiply by 3: 4, 5 and 6. Give the three products.",
        "Divide each by 2 - 10, 20 and 30. Show the results.",
        # A title or initials that end in a number or a Roman numeral.
        "Describe Beethoven's Symphony No. 9.",
        "Describe the species X.",
        "I. M. Pei designed the Louvre pyramid; describe his style.",
        # Numbered labels that name the task's own items (the next number comes later).
        "Sentence 1: The cat sat. Sentence 2: The dog ran. Are these two sentences paraphrases?",
        "Text 1: I love it. Text 2: I hate it. Which one is positive?",
        "Part II: the Renaissance. Part III: the Baroque. Compare the two parts of the course.",
    ],
)
def test_numbers_that_are_not_list_markers_pass(text: str) -> None:
    assert rule_of(text) is None


def test_list_number_rule_is_switchable() -> None:
    off = HeuristicConfig(enabled_rules=frozenset(INSTRUCTION_RULES) - {"starts_with_list_number"})
    assert rule_of("2. Rewrite the sentence in the passive voice.", off) is None
    assert rule_of("(2) Rewrite the sentence in the passive voice.", off) == (
        "starts_with_punctuation"
    )


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("Sentence 2: The cat chased the mouse.", "Sentence 2:"),
        ("Example #3 - Rewrite it.", "Example #3 -"),
        ("２．把这句话改写成被动语态。", "2."),
        ("问题2：为什么天空是蓝色的？", "问题2:"),
        ("Sentence 1: A. Sentence 3: B. Which is longer?", "Sentence 1:"),  # 2 never comes
        ("句子1：我喜欢猫。句子2：我喜欢狗。这两个句子意思相同吗？", None),  # the task's items
        ("Frage 1: Warum? Frage 2: Wieso? Beantworte beide Fragen.", None),
        # Chinese numerals, bracketed letters and Roman numerals, circled numbers.
        ("二、把这句话改写得更礼貌一些。", "二、"),
        ("十一. 翻译成英文。", "十一."),
        ("(b) Rewrite the sentence in the passive voice.", "(b)"),
        ("(iv) Name a prime number.", "(iv)"),
        ("② 把这句话改写成被动语态。", "(2)"),
        ("❸Translate the sentence into French.", "(3)"),
        ("㉑ Name a river.", "(21)"),
        ("十分钟内写一首诗。", None),  # "ten minutes", not an item
        ("(a and b) Compare the two numbers.", None),
    ],
)
def test_the_marker_found_and_named_in_the_reason(text: str, marker: str | None) -> None:
    assert leading_list_number(text) == marker
    if marker is not None:
        assert check_instruction(text).reason == f"starts with list number {marker!r}"


def test_list_number_rule_rejects_no_seed_or_user_oriented_instruction(
    seed_tasks: list[dict[str, Any]], user_oriented: list[dict[str, Any]]
) -> None:
    # bench/echo_rules.py: none of Stanford Alpaca's 52,002 instructions either.
    texts = [t["instruction"] for t in seed_tasks + user_oriented]
    assert len(texts) == 175 + 252
    assert [t for t in texts if leading_list_number(t)] == []
