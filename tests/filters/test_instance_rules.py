"""The paper's instance checks (prepare_for_finetuning.py) and outputs that echo the prompt."""

from __future__ import annotations

from typing import Any

import pytest

from filters.heuristics import (
    INSTANCE_RULES,
    INSTRUCTION_RULES,
    RULE_VERSIONS,
    HeuristicConfig,
    check_instances,
    check_instruction,
)

# The rules this module's issue added (or changed, for output_equals_input).
NEW_RULES = {
    "starts_with_list_number",
    "output_equals_input",
    "output_repeats_instruction",
    "output_near_copies_instruction",
    "ends_with_colon",
    "conflicting_outputs",
}
REWRITE = "Rewrite the sentence in the passive voice."
CAT = "The cat chased the mouse."


def rules(
    pairs: list[tuple[str, str]],
    *,
    instruction: str | None = REWRITE,
    is_classification: bool = False,
    config: HeuristicConfig | None = None,
) -> list[str | None]:
    verdicts = check_instances(
        pairs,
        is_classification=is_classification,
        instruction=instruction,
        config=config or HeuristicConfig(),
    )
    for v in verdicts:
        if not v.accepted:
            assert v.reason and v.rule_version == RULE_VERSIONS[v.rule]
    return [None if v.accepted else v.rule for v in verdicts]


@pytest.mark.parametrize(
    ("pair", "rule"),
    [
        # The instruction again, however it is cased, punctuated or spaced.
        (("", "Rewrite the sentence in the passive voice."), "output_repeats_instruction"),
        (("", "rewrite the sentence in the passive voice"), "output_repeats_instruction"),
        (("", "  REWRITE the sentence,\n in the passive voice!! "), "output_repeats_instruction"),
        (("", "Output: Rewrite the sentence in the passive voice."), "output_repeats_instruction"),
        # Said over again, twice or more (scorer v7's echo; bench/junk.py's doubled echo).
        (("", "Rewrite the sentence in the passive voice. Rewrite the sentence in the passive "
          "voice."), "output_repeats_instruction"),
        (("", "rewrite the sentence in the passive voice\n" * 3), "output_repeats_instruction"),
        # The instruction followed by nothing new: just the input after it (or before it).
        (
            (CAT, "Rewrite the sentence in the passive voice: the cat chased the mouse"),
            "output_repeats_instruction",
        ),
        (
            (CAT, "The cat chased the mouse.\nRewrite the sentence in the passive voice."),
            "output_repeats_instruction",
        ),
        # The input again, under a label or re-spaced.
        ((CAT, "The cat chased the mouse."), "output_equals_input"),
        ((CAT, "Input: The cat  chased\nthe mouse."), "output_equals_input"),
        (("Input: Die Katze jagte die Maus.", "Die Katze jagte die Maus."), "output_equals_input"),
        (("猫がネズミを追いかけた。", "Output: 猫がネズミを追いかけた。"), "output_equals_input"),
    ],
)  # fmt: skip
def test_output_that_merely_repeats_the_prompt_is_rejected(
    pair: tuple[str, str], rule: str
) -> None:
    assert rules([pair]) == [rule]


def test_echo_of_a_non_latin_instruction_is_rejected() -> None:
    instruction = "把这段话改写得更礼貌一些，但保持原意。"
    assert rules([("", "把这段话改写得更礼貌一些 但保持原意")], instruction=instruction) == [
        "output_repeats_instruction"
    ]


@pytest.mark.parametrize(
    "pair",
    [
        ("The cat chased the mouse.", "The mouse was chased by the cat."),
        # Real answers that quote the input, in part or whole, with something new.
        ("The cat chased the mouse.", "In the passive voice, 'the cat chased the mouse' becomes "
         "'the mouse was chased by the cat'."),
        ("The cat chased the mouse.", "The cat chased the mouse. -> The mouse was chased."),
        # The instruction followed by a real answer.
        ("The cat chased the mouse.", "Rewrite the sentence in the passive voice: "
         "The mouse was chased by the cat."),
        # Only case or punctuation changed: on Alpaca these answer case/punctuation tasks.
        ("i love dogs", "I LOVE DOGS"),
        ("Mitchell told me he was late", 'Mitchell told me, "He was late."'),
        # Symbols are content: an emoji or an operator makes a different answer.
        ("Cute cat\nplayful", "🐱 Cute cat\n😛 playful"),
        ("a - (b + c)", "a b c + -"),
        ("", "The mouse was chased."),
        # The instruction twice with something between or after: no mere repetition.
        ("", "Rewrite the sentence in the passive voice. Rewrite the sentence in the passive "
         "voice: the mouse was chased."),
    ],
)  # fmt: skip
def test_real_answers_are_not_echoes(pair: tuple[str, str]) -> None:
    assert rules([pair]) == [None]


SENTENCE = "Sentence 2: The quick brown fox jumps over the lazy dog near the river bank."


@pytest.mark.parametrize(
    ("instruction", "output"),
    [
        # The demo's kind: the numbered label renumbered, a word or two changed (F 0.64-0.87).
        (SENTENCE, "Sentence 1: The quick brown fox jumped over the lazy dog by the river bank."),
        (SENTENCE, "Sentence 3: The quick red fox jumps over a lazy dog near the river."),
        (SENTENCE, "The quick brown fox jumps over the lazy cat near the river bank."),
        (SENTENCE, "Output: Sentence 1 - The quick brown fox leaps over the lazy dog near a bank."),
        # An ordinary instruction re-typed with edits, or cut and continued.
        (
            "Write a short poem about the ocean at night and the stars above it.",
            "Write a short poem about the ocean at night with the moon above it.",
        ),
        (
            "Design a game where the player has to guess a secret number.",
            "Design a game where the player has to guess a secret number between 1-",
        ),  # Stanford Alpaca's own near-copy
        (
            "2. Explain why the sky looks blue during the day.",
            "Explain why the sky looks so blue during a sunny day.",
        ),
        # Other scripts: characters of Chinese and Japanese, words of Russian.
        ("把这段话改写得更礼貌一些，但保持原意。",
         "把这段话改写得更加礼貌一些，但保持原来的意思。"),
        ("問題2：空がなぜ青いのか説明してください。",
         "問題1：空がなぜ青いのかを説明してください。"),
        (
            "Задание 2: Объясните, почему небо голубое днём.",
            "Задание 1: Объясните, почему небо голубое ночью.",
        ),
    ],
)  # fmt: skip
def test_near_copy_of_the_instruction_is_rejected(instruction: str, output: str) -> None:
    verdict = check_instances([("", output)], is_classification=False, instruction=instruction)[0]
    assert verdict.rule == "output_near_copies_instruction"
    assert verdict.rule_version == RULE_VERSIONS["output_near_copies_instruction"] == "1"
    assert "near-copy of the instruction" in verdict.reason


@pytest.mark.parametrize(
    ("instruction", "pair"),
    [
        # Answers that restate their question start from its subject, not its first word.
        ("Find the median of the set of numbers {4, 10, 8, 11, 1}.", ("",
         "The median of the set of numbers {4, 10, 8, 11, 1} is 8.")),
        ("Name a famous artist who painted in the Impressionist style.", ("",
         "Claude Monet is a famous artist who painted in the Impressionist style.")),
        ("Which planet is closest to the sun?", ("", "The planet closest to the sun is Mercury.")),
        ("Is the sentence grammatically correct?", ("The cat sat.",
         "Yes, the sentence is grammatically correct.")),
        # Short instructions are not compared; selections keep less than 0.8 of the question.
        ("6 + 3 = ?", ("", "6 + 3 = 9.")),
        ("True or False: Sheep are mammals", ("", "True. Sheep are mammals.")),
        ('Print the following statement: "I want to learn to code".', ("",
         'print("I want to learn to code")')),
        # Rewrites of the input share most words with it, and the frame with the instruction.
        (REWRITE, (CAT, "Rewrite the sentence in the passive voice: "
                        "The mouse was chased by the cat.")),
        ("Correct the grammar of the sentence.", ("He go to school every days.",
                                                  "He goes to school every day.")),
        ("Rewrite the text and correct the spelling errors.", (
            "It solves problems comon and uniqe to every team.",
            "It solves problems common and unique to every team.")),
        # A numbered label that is part of the task, answered.
        ("Sentence 1: The cat sat. Sentence 2: The cat sat down. Are these paraphrases?",
         ("", "Sentence 1 and sentence 2 are paraphrases: yes.")),
        ("Write a haiku about autumn leaves falling in the park.", ("",
         "Crimson leaves descend / whispering across the park / autumn's soft goodbye")),
    ],
)  # fmt: skip
def test_answers_that_share_words_with_the_prompt_are_not_near_copies(
    instruction: str, pair: tuple[str, str]
) -> None:
    assert rules([pair], instruction=instruction) == [None]


def test_near_copy_rule_is_switchable_and_needs_the_instruction() -> None:
    pair = ("", "Sentence 1: The quick brown fox jumped over the lazy dog by the river bank.")
    off = HeuristicConfig(
        enabled_rules=frozenset(INSTANCE_RULES) - {"output_near_copies_instruction"}
    )
    assert rules([pair], instruction=SENTENCE, config=off) == [None]
    assert rules([pair], instruction=None) == [None]
    assert rules([pair], instruction=SENTENCE) == ["output_near_copies_instruction"]


def test_without_the_instruction_only_input_echoes_are_seen() -> None:
    assert rules([("", REWRITE)], instruction=None) == [None]
    assert rules([("Same.", "Same.")], instruction=None) == ["output_equals_input"]


@pytest.mark.parametrize(
    ("pair", "rule"),
    [
        (("", "Here are the steps to follow:"), "ends_with_colon"),
        (("Sentence: It rained.", "The answer is :"), "ends_with_colon"),
        (("Sentence:", "It rained."), "ends_with_colon"),  # an input that is only a label
        (("Paragraph :\n", "A summary."), "ends_with_colon"),
        (("Текст:", "Краткое содержание."), "ends_with_colon"),
        # Full-width colons (Chinese, Japanese) cut a generation off as ":" does.
        (("", "步骤如下："), "ends_with_colon"),
        (("句子：", "今天下雨了。"), "ends_with_colon"),
        (("文章 ：\n", "要約です。"), "ends_with_colon"),
        (("", "手順は次のとおりです﹕ "), "ends_with_colon"),
        (("句子：今天下雨了。", "天气不好。"), None),
        (("Sentence: It rained.\nQuestion: why?", "Clouds."), None),
        (("Instability : Turmoil:: Change :", "Revolution"), None),  # seed_task_15's analogy
        (("Atheism:\nChristianity:\nIslam:", "Atheism: none."), None),  # seed_task_36's form
    ],
)
def test_paper_colon_rule(pair: tuple[str, str], rule: str | None) -> None:
    assert rules([pair], instruction=None) == [rule]


def test_same_input_with_different_outputs_drops_the_whole_task() -> None:
    pairs = [("2 + 2", "4"), ("3 + 3", "6"), ("2  +  2", "5"), ("", "A"), ("", "B")]
    verdicts = check_instances(pairs, is_classification=False, instruction="Add the numbers.")
    assert [v.rule for v in verdicts] == ["conflicting_outputs"] * 5
    assert "'2 + 2'" in verdicts[0].reason
    assert verdicts[0].rule_version == "1"


def test_conflicting_labels_of_a_classification_task_drop_it() -> None:
    pairs = [("I loved it.", "Positive"), ("I loved it.", "Negative"), ("It was bad.", "Negative")]
    assert rules(pairs, is_classification=True) == ["conflicting_outputs"] * 3


def test_conflict_check_ignores_empty_inputs_and_rejected_instances() -> None:
    # Empty inputs may have many outputs (the paper skips them); an already rejected
    # instance keeps its own reason and does not make a conflict.
    assert rules([("", "A tip."), ("", "Another tip.")]) == [None, None]
    pairs = [("2 + 2", "4"), ("2 + 2", "Here it is:"), ("2 + 2", "4")]
    assert rules(pairs) == [None, "ends_with_colon", "duplicate_instance"]
    # Same input and same output up to case: a copy, not a conflict.
    assert rules([("Great!", "Positive"), ("great!", "positive")]) == [None, "duplicate_instance"]


def test_new_instance_rules_are_switchable() -> None:
    off = HeuristicConfig(enabled_rules=frozenset(INSTANCE_RULES) - NEW_RULES)
    pairs = [("x", "x"), ("", REWRITE), ("", "See:"), ("2 + 2", "4"), ("2 + 2", "5")]
    assert rules(pairs, config=off) == [None] * 5
    assert rules(pairs) == [
        "output_equals_input",
        "output_repeats_instruction",
        "ends_with_colon",
        "conflicting_outputs",
        "conflicting_outputs",
    ]


def test_every_seed_task_passes_the_new_rules(seed_tasks: list[dict[str, Any]]) -> None:
    assert len(seed_tasks) == 175
    rejected = []
    for task in seed_tasks:
        verdict = check_instruction(task["instruction"])
        if verdict.rule in NEW_RULES & set(INSTRUCTION_RULES):
            rejected.append((task["id"], verdict.rule))
        pairs = [(i["input"], i["output"]) for i in task["instances"]]
        verdicts = check_instances(
            pairs, is_classification=task["is_classification"], instruction=task["instruction"]
        )
        rejected += [(task["id"], v.rule) for v in verdicts if v.rule in NEW_RULES]
    assert rejected == []


def test_every_user_oriented_task_passes_the_new_rules(
    user_oriented: list[dict[str, Any]],
) -> None:
    rejected = []
    for task in user_oriented:
        if check_instruction(task["instruction"]).rule in NEW_RULES:
            rejected.append(task["id"])
        pairs = [(i["input"], i["output"]) for i in task["instances"]]
        verdicts = check_instances(pairs, is_classification=False, instruction=task["instruction"])
        rejected += [task["id"] for v in verdicts if v.rule in NEW_RULES]
    assert rejected == []
