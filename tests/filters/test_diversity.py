"""Diversity metrics on constructed inputs with answers worked out by hand."""

from __future__ import annotations

import time

import numpy as np
import pytest

from filters.diversity import (
    cluster_count,
    distinct_n,
    label_balance,
    mean_pairwise_cosine_distance,
    ngrams,
    root_verb_object,
    verb_noun_stats,
)
from filters.errors import InvalidInputError


@pytest.mark.parametrize(
    ("texts", "n", "expected"),
    [
        (["a b a b"], 1, 2 / 4),  # unigrams a, b, a, b
        (["a b a b"], 2, 2 / 3),  # bigrams ab, ba, ab
        (["Write a poem.", "Write a poem."], 1, 3 / 6),
        (["Write a poem.", "Write a song."], 2, 3 / 4),  # write-a twice, a-poem, a-song
        (["猫が好き", "猫が嫌い"], 1, 6 / 8),  # Japanese by character: 猫 が 好 き 嫌 い
        (["", "one"], 2, 0.0),  # no bigram anywhere
        (["the cat the cat"], 2, 2 / 3),  # the cat / cat the / the cat
        (["a b", "c d"], 2, 1.0),  # "b c" spans two texts: not an n-gram
        (["Пиши код, пиши код"], 1, 2 / 4),  # Cyrillic words, case-folded
        (["猫猫犬"], 2, 1.0),
        ([], 1, 0.0),
        (["a b c"], 3, 1.0),
    ],
)
def test_distinct_n_known_answers(texts: list[str], n: int, expected: float) -> None:
    assert distinct_n(texts, n) == pytest.approx(expected)


def test_distinct_n_rejects_n_below_one() -> None:
    with pytest.raises(InvalidInputError):
        distinct_n(["a"], 0)
    with pytest.raises(InvalidInputError):
        list(ngrams("a b", 0))


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        ("Write a poem about the sea.", ("write", "poem")),
        ("Please give me three tips for sleeping well.", ("give", "tips")),
        ("Can you suggest some games for a party?", ("suggest", "games")),
        ("Given a list of numbers, find the smallest number.", ("find", "number")),
        (
            "In this task, you are given a sentence, classify its sentiment.",
            ("classify", "sentiment"),
        ),
        ("Generate a list of New Year's resolutions.", ("generate", "list")),
        ("What is the capital of France?", None),
        ("Is this review positive?", None),
        ("Write.", None),
        # The object is the noun phrase's head, never a determiner, adjective or particle.
        ("Suggest another name for the cat.", ("suggest", "name")),
        ("List both sides of the argument.", ("list", "sides")),
        ("Name several other countries in Africa.", ("name", "countries")),
        ("Create your own recipe for bread.", ("create", "recipe")),
        ("Give such an example.", ("give", "example")),
        ("Make no assumptions about the reader.", ("make", "assumptions")),
        ("Create a weekly meal plan for a family of four.", ("create", "plan")),
        ("Write a detailed Python function that sorts a list.", ("write", "function")),
        ("Suggest a quick pre-run warmup routine.", ("suggest", "routine")),
        # Phrasal verbs: the particle is not the object.
        ("Come up with a list of ideas for a party.", ("come", "list")),
        ("Write down a poem about rain.", ("write", "poem")),
        ("Find out the capital of Peru.", ("find", "capital")),
        # No direct object: a clause, a question or a prepositional phrase follows the verb.
        ("Explain why the sky is blue.", None),
        ("Determine if the number is prime.", None),
        ("Check whether the sentence is grammatical.", None),
        ("Tell me about the moon.", None),
        ("Describe how to bake bread.", None),
        ("Rewrite it so that it sounds formal.", None),
        # The pair is read in the first clause: punctuation other than commas ends it too.
        ("Write a poem. Make it rhyme.", ("write", "poem")),
        ("Write a poem; make it rhyme", ("write", "poem")),
        ("Write a poem make it rhyme", ("write", "poem")),  # run-on: "make it" is a verb
        # English only: other languages and scripts are not parsed (no pair, not a wrong one).
        ("写一首关于秋天的诗", None),
        ("Напиши стихотворение о море.", None),
        ("Écris un poème sur la mer.", None),
        ("بنویس یک شعر", None),
        # Latin-script words of other languages are not English verbs either.
        ("Escribe un poema sobre el mar.", None),
        ("Schreibe ein Gedicht über das Meer.", None),
        ("Traduci questa frase in inglese.", None),
        ("Des phrases simples pour les enfants.", None),
        ("Cualquerela historia con un final feliz.", None),
        # The verb is an English verb in its base form, never a pronoun, number, greeting,
        # contraction, code or an inflected form (a weak teacher's openings).
        ("One of the best ways to learn a language.", None),
        ("Your task is to write a poem.", None),
        ("I'm looking for a recipe for bread.", None),
        ("Hello there friend, how are you?", None),
        ("const x = 1; console.log(x)", None),
        ("Writes a poem about the sea.", None),
        ("Generated text for the homepage.", None),
        ("Let's write a poem together.", None),
        # Function words the lexicon also lists as verbs ("while away", "near", "better").
        ("As part of the plan, while the criteria stay fixed.", None),
        ("Near the station, there is a park.", None),
        # One adverb before the verb; a lead-in clause before it is read past, like "Given".
        ("Briefly explain the theory of relativity.", ("explain", "theory")),
        ("Automatically generate a summary of the text.", ("generate", "summary")),
        ("Using the facts given, write a question-answer pair.", ("write", "pair")),
        ("Based on the review, predict the rating.", ("predict", "rating")),
        ("Considering the budget, suggest a cheap hotel.", ("suggest", "hotel")),
        ("As a teacher, design a quiz for the class.", ("design", "quiz")),
        # Verbs that are also nouns, and verbs ending in -ing, are still verbs.
        ("Email the report to the team.", ("email", "report")),
        ("Bring three snacks to the party.", ("bring", "snacks")),
        ("Proofread the essay below.", ("proofread", "essay")),
    ],
)
def test_root_verb_object(instruction: str, expected: tuple[str, str] | None) -> None:
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize(
    "instruction",
    [
        "1. Write a poem about the sea.",  # a numbered list item
        "2) Write a poem about the sea.",
        '"Write a poem about the sea."',  # a quoted instruction
        "\u201cWrite a poem about the sea.\u201d",
        "(Write a poem about the sea.)",
        "[Write a poem about the sea]",
        "**Write** a poem about the sea.",  # markdown
        "> Write a poem about the sea.",
        "- Write a poem about the sea.",
        "\U0001f30a Write a poem about the sea.",
    ],
)
def test_markers_and_quotes_before_the_first_word_are_read_past(instruction: str) -> None:
    assert root_verb_object(instruction) == ("write", "poem")


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        # Full-width letters and ligatures are the same words (NFKC).
        ("\uff37\uff52\uff49\uff54\uff45 \uff41 \uff50\uff4f\uff45\uff4d\uff0e", ("write", "poem")),
        ("\ufb01nd the \ufb01le.", ("find", "file")),
        ("Summarize the \uff41\uff52\uff54\uff49\uff43\uff4c\uff45.", ("summarize", "article")),
    ],
)
def test_compatibility_forms_read_as_their_letters(
    instruction: str, expected: tuple[str, str]
) -> None:
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize(
    "instruction",
    [
        'Define the term "entropy" in physics.',
        "Define the term \u201centropy\u201d in physics.",
        "Define the term \u2018entropy\u2019 in physics.",
        "Define the term 'entropy' in physics.",
        "Define the term \u00abentropy\u00bb in physics.",
        "Define the term \u201eentropy\u201c in physics.",
    ],
)
def test_every_quote_style_ends_the_noun_phrase(instruction: str) -> None:
    """A quoted term after the head is not the head, whatever the quote marks."""
    assert root_verb_object(instruction) == ("define", "term")


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        ("Grade the students' essays.", ("grade", "essays")),  # a closing quote: possessive
        ("Write John\u2019s biography.", ("write", "biography")),
        ("Write John's biography.", ("write", "biography")),
    ],
)
def test_apostrophes_inside_or_after_a_word_are_not_quotes(
    instruction: str, expected: tuple[str, str]
) -> None:
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize(
    "instruction",
    [
        "Can you please write a poem?",
        "Could you please write a poem?",
        "Please can you write a poem?",
        "Please, write a poem.",
        "Now, please write a poem.",
        "Please please write a poem.",
        # A modal frame: the verb after it is the root verb (real users' instructions).
        "You should write a poem.",
        "You will need to write a poem.",
        "We need to write a poem.",
        "You must write a poem.",
        "You have to write a poem.",
        "Given a topic, you should write a poem.",
    ],
)
def test_request_frames_stack_and_may_stand_alone_before_a_comma(instruction: str) -> None:
    assert root_verb_object(instruction) == ("write", "poem")


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        ("You will be given a sentence.", None),  # a passive: "be" is no task verb
        ("You are given a list of numbers.", None),
        ("You should be polite.", None),
    ],
)
def test_a_modal_frame_before_no_task_verb_gives_no_pair(
    instruction: str, expected: tuple[str, str] | None
) -> None:
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        ("Compare and contrast cats and dogs.", ("compare", "cats")),
        ("Identify and fix bugs in the code.", ("identify", "bugs")),
        ("Read and summarize the article.", ("read", "article")),
        ("Find or replace the word.", ("find", "word")),
        ("Write and a poem.", None),  # "and" then no verb: no coordination
    ],
)
def test_coordinated_verbs_share_the_object(
    instruction: str, expected: tuple[str, str] | None
) -> None:
    """The first verb is the root (the one nearest the parse's root) and takes the object."""
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        # A participle, adjective or adverb after the head modifies it (Alpaca instructions).
        ("Name five animals found in the rainforest.", ("name", "animals")),
        ("List three words related to the word apple.", ("list", "words")),
        ("Write a funny joke suitable for children.", ("write", "joke")),
        ("Sort the following words alphabetically.", ("sort", "words")),
        ("Write a tweet summarizing this article.", ("write", "tweet")),
        ("Cite a poem written by William Wordsworth.", ("cite", "poem")),
        ("Turn the lights off.", ("turn", "lights")),
        ("Identify the potential harms of AI.", ("identify", "harms")),  # a plural, not a verb
        # A subject pronoun or a contraction starts a relative clause after the head.
        ("Describe a time you felt excited.", ("describe", "time")),
        ("Suggest a book I should read.", ("suggest", "book")),
        ("Make a smoothie recipe that's healthy.", ("make", "recipe")),
        # No noun at all: no pair rather than an adjective or a pronoun as the object.
        ("Tell me something interesting about pandas.", None),
        ("Find the odd one out.", None),
        ("Imagine you are a pirate.", None),
        ("Pretend you are a cat.", None),
    ],
)
def test_the_object_is_a_noun(instruction: str, expected: tuple[str, str] | None) -> None:
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        # Other languages whose first word is also an English verb (sag, dare, come, fare, die).
        ("Sag mir die Wahrheit.", None),
        ("Dare un esempio di frase.", None),
        ("Come stai oggi amico mio?", None),
        ("Fare una torta al cioccolato.", None),
        ("Die Katze schl\u00e4ft auf dem Sofa.", None),
        # English with words the lexicon lacks still parses: acronyms, neologisms.
        ("Write a SQL query for the table.", ("write", "query")),
        ("Create an API endpoint.", ("create", "endpoint")),
        ("Define sustainability.", ("define", "sustainability")),
        ("Create a timeline of the war.", ("create", "timeline")),
    ],
)
def test_a_clause_in_another_language_gives_no_pair(
    instruction: str, expected: tuple[str, str] | None
) -> None:
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        # A full stop inside an abbreviation does not end the clause.
        ("Describe the U.S. economy.", ("describe", "economy")),
        ("Summarize the Ph.D. thesis.", ("summarize", "thesis")),
        ("Summarize the books of J.R.R. Tolkien.", ("summarize", "books")),
        ("Write a poem. Make it rhyme.", ("write", "poem")),
        # A token starting with a digit is a number, never the head; a name keeps its digits.
        ("Name the 2nd.", None),
        ("Delete the 2nd, 4th, and 5th element.", None),
        ("Name the 3rd planet from the sun.", ("name", "planet")),
        ("Describe COVID-19.", ("describe", "covid-19")),
    ],
)
def test_abbreviations_and_numbers_are_not_words(
    instruction: str, expected: tuple[str, str] | None
) -> None:
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        # "that" opening a clause, and an object pronoun then a verb: a clause follows the
        # verb, not a direct noun object.
        ("Suppose that an employer asks for a raise.", None),
        ("Explain that the sky is blue.", None),
        ("Let me know your thoughts.", None),
        ("Help me write a poem.", None),
        ("Let us write a poem.", None),
        ("Help them understand the rules.", None),
        # "that" pointing at a noun, and a pronoun then a noun, are objects.
        ("Translate that sentence.", ("translate", "sentence")),
        ("Give me examples.", ("give", "examples")),
        ("Tell us a story.", ("tell", "story")),
    ],
)
def test_a_clause_after_the_verb_is_no_direct_object(
    instruction: str, expected: tuple[str, str] | None
) -> None:
    assert root_verb_object(instruction) == expected


@pytest.mark.parametrize("filler", ["the ", "all ", "me ", "a very "])
def test_long_runs_of_skipped_words_take_linear_time(filler: str) -> None:
    """A weak teacher's repetition loop: 100,000 skipped words, in well under a second
    (a quadratic skip took 22 s on "the")."""
    # As the ratio of 10x the words to 1x (linear: ~10; the quadratic skip: ~100), so that a
    # slow or loaded machine does not fail it (6 s at load 3 on a 2-core AVX2 CPU); and an
    # absolute bound far under the quadratic 22 s.
    took = []
    for words in (10_000, 100_000):
        start = time.perf_counter()
        root_verb_object("Write " + filler * words + "poem.")
        took.append(time.perf_counter() - start)
    assert took[1] < 30 * max(took[0], 0.01) and took[1] < 15.0


def test_verb_noun_stats_counts_pairs_and_top_share() -> None:
    texts = [
        "Write a poem about cats.",
        "Write a poem about dogs.",  # same pair again
        "Write a story.",
        "Give three tips.",
        "What is love?",  # no verb
    ]
    stats = verb_noun_stats(texts, top=1)
    assert (stats.instructions, stats.parsed) == (5, 4)
    assert (stats.distinct_verbs, stats.distinct_pairs) == (2, 3)
    assert stats.top_verbs == [("write", 3)]
    assert stats.top_verb_share == pytest.approx(3 / 4)
    assert verb_noun_stats([]).top_verb_share == 0.0


def test_mean_pairwise_cosine_distance_known_answers() -> None:
    e1, e2 = [1.0, 0.0], [0.0, 1.0]
    assert mean_pairwise_cosine_distance(np.array([e1, e1, e1])) == pytest.approx(0.0)
    assert mean_pairwise_cosine_distance(np.array([e1, e2])) == pytest.approx(1.0)
    assert mean_pairwise_cosine_distance(np.array([e1, [-1.0, 0.0]])) == pytest.approx(2.0)
    # pairs: (e1,e2) 1, (e1,2*e1) 0, (e2,2*e1) 1 -> 2/3; rows are normalised first
    assert mean_pairwise_cosine_distance(np.array([e1, e2, [2.0, 0.0]])) == pytest.approx(2 / 3)
    assert mean_pairwise_cosine_distance(np.array([e1])) == 0.0


def test_mean_pairwise_distance_equals_the_quadratic_definition() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((40, 16))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    expected = float(np.mean(1 - cos[np.triu_indices(40, k=1)]))
    assert mean_pairwise_cosine_distance(vectors) == pytest.approx(expected)


def test_cluster_count_at_a_radius() -> None:
    angles = np.radians([0, 10, 20, 90, 95, 180])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    # 1 - cos(25 degrees) = 0.094: 0/10/20 join 0's leader, 90/95 one cluster, 180 its own
    assert cluster_count(vectors, radius=0.094) == 3
    assert cluster_count(vectors, radius=0.0) == 6
    assert cluster_count(vectors, radius=2.0) == 1
    assert cluster_count(np.zeros((0, 2)), radius=0.1) == 0
    with pytest.raises(InvalidInputError):
        cluster_count(vectors, radius=-0.1)
    with pytest.raises(InvalidInputError):
        cluster_count(np.zeros((2, 2)), radius=0.1)


def test_label_balance() -> None:
    even = label_balance([True, False, True, False])
    assert even.counts == {True: 2, False: 2} and even.normalized_entropy == pytest.approx(1.0)
    skewed = label_balance(["gen", "gen", "gen", "cls"])
    assert skewed.shares == {"gen": 0.75, "cls": 0.25}
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25)) / np.log(2)
    assert skewed.normalized_entropy == pytest.approx(h)
    assert label_balance(["only"]).normalized_entropy == 0.0
