"""The heuristic quality scorer ranks each kind of junk below real answers (issue 18).

Each kind has siblings: other positions, scripts, markers and sizes, so a test proves the
kind is caught, not one string. The measured ranking is bench/quality.py.
"""

from __future__ import annotations

import pytest

from filters.completion_defects import BARE_END_FLOOR, residue_factor, truncation_factor
from filters.quality import score_heuristic_quality
from filters.requested_counts import count_shortfall, listed_items, requested_count

INSTR = "Give three tips for staying healthy."
ANSWER = "Eat a balanced diet. Exercise for thirty minutes a day. Sleep eight hours a night."


def value(output: str, inp: str = "", instruction: str = INSTR) -> float:
    score = score_heuristic_quality(instruction, inp, output).value
    assert score is not None
    return score


@pytest.mark.parametrize(
    "instruction,inp,output",
    [
        (INSTR, "", ANSWER),
        (INSTR, "", "1. Eat vegetables.\n2. Walk daily.\n3. Sleep well."),
        (INSTR, "", "- Eat vegetables\n- Walk daily\n- Sleep well"),  # list items end bare
        ("Is the review positive or negative?", "I loved it.", "Positive"),
        ("Solve for x.", "2x + 1 = 7", "x = 3"),
        ("Fix the grammar.", "She go to school every days.", "She goes to school every day."),
        ("Write a function that adds two numbers.", "", "def add(a, b):\n    return a + b"),
        ("Make a table of two fruits.", "", "Fruit | Colour\nApple | Red\nBanana | Yellow"),
        ("Translate to Japanese.", "Good morning.", "おはようございます。"),
        ("List two sorting algorithms.", "", "1. Quicksort\n2. Merge sort\n\n1. Heap sort"),
        # Labels that are not the prompt's own head real answers (scorer v4).
        ("Write a question and its answer.", "", "Question: Who wrote it?\nAnswer: Shakespeare."),
        ("Explain the idiom.", "black sheep", "An outcast.\nExample: He is the black sheep."),
        ("Write a letter.", "", "Dear Ann,\nThank you for the books.\n\nSincerely,\nEbony Moore"),
        ("Solve.", "3x = 9", "3x = 9\nx = 9 / 3\nx = 3"),
        ("Name a capital and its country.", "", "Paris (France), on the Seine [river]."),
        ("List four fruits.", "", "- Apple: red\n- Banana: yellow\n- Plum: purple\n- Kiwi: green"),
        ("Write a code block.", "", "```python\nprint('hi')\n```"),
        # Bare endings on words that end sentences, list items and lines (scorer v5).
        ("Name three foods.", "", "Bread, cheese and olives"),
        ("List three chores.", "", "- Wash the dishes\n- Do the laundry\n- Feed the cat"),
        ("Who painted it?", "", "Leonardo da Vinci"),
        ("Name the author.", "", "Haruki Murakami"),
    ],
)
def test_real_answers_score_high(instruction: str, inp: str, output: str) -> None:
    assert value(output, inp, instruction) > 0.9


@pytest.mark.parametrize(
    "output",
    [
        INSTR,
        f"Output: {INSTR}",
        INSTR.lower().rstrip("."),
        f"Answer:\n{INSTR}",
    ],
)
def test_echoed_instruction_scores_below_real(output: str) -> None:
    assert value(output) < 0.5 < value(ANSWER)


@pytest.mark.parametrize(
    "output",
    [
        f"{ANSWER}\n\n5. Write a poem about the sea.",
        f"{ANSWER}\n12) Summarise the article.",
        f"{ANSWER}\n4.",
        f"{ANSWER}\nTask 7: Write a haiku.",
        f"{ANSWER}\n\nInstruction: Name three rivers.",
        "3. Name three rivers in Europe.",
        "1. Eat well.\n2. Walk.\n3. Sleep.\n\n9. Describe your favourite city.",
    ],
)
def test_list_number_residue_scores_below_real(output: str) -> None:
    assert residue_factor(output)[0] < 1.0
    assert value(output) < 0.7 < value(ANSWER)


@pytest.mark.parametrize(
    "output",
    [
        "Eat a balanced diet. Exercise for thirty minutes a day. Sleep eight",
        "Eat a balanced diet, exercise daily and",
        "Eat a balanced diet, exercise daily, sleep eight hours,",
        "Eat a balanced diet with plenty of the",
        "1. Eat vegetables.\n2. Walk daily.\n3. Sleep eight hours on",
        "Comer bien. Dormir ocho horas. Caminar todos los dias por la",
        "First, preheat the oven (",
        "- Eat vegetables\n- Walk daily\n-",
        "Fruit | Colour\nApple | Red\n|",
        # Siblings for scorer v4: operator and arrow ends, unclosed brackets and fences, a
        # list or table whose last entry breaks the others' shape.
        "The speed is 36 km/h = 36 x 1000 / 3600 m/s = 10 m/s.\nThe length of the train =",
        "Naruto -> Naruto\nNippon -> Japan\nMasashi ->",
        "A black sheep is an outcast. They take pride in being",  # one line, last sentence open
        "Eat a balanced diet (vegetables, fruit",
        "```python\ndef add(a, b):\n    return a + b",
        "def read(path):\n    '''Read a .jsonl file",
        "- Airfare: $400\n- Lodging: $800\n- Car rental: $200\n- Food: $400\n- Activ",
        "1. Eat vegetables.\n2. Walk daily.\n3. Sleep well.\n4. Drink water.\n5. Stretch",
        "Country | Continent | People\nChina | Asia | 1.4 billion\nIndia | Asia | 1.4 bn\nUS | No",
        # Siblings for scorer v5: cut inside a word, on a word sentences never end with, or on
        # one they seldom end with, in prose, lists and other languages' neighbours.
        "- Plan a menu\n- Prepare decorations\n- Prepare pa",
        "When my girlfriend is angry, I ne",
        "We develop a new topological complexity measure for deep neu",
        "1. Meditate\n2. Laugh more\n3. Connect with others\n4. Get",
        "Most people feel better after they get",
        "Yes, the given",
        "In a shallow bowl, combine the butter and the sauce, then we",
        "The social stereotype of lawyers is that they are intelligent",
    ],
)
def test_truncated_outputs_score_below_real(output: str) -> None:
    assert truncation_factor(output)[0] < 1.0
    assert value(output) < value(ANSWER)


@pytest.mark.parametrize(
    "output",
    [
        "stay healthy " * 30,
        ANSWER + "\n" + "\n".join(["Sleep eight hours a night."] * 8),
        "eat " * 50,
        "水を飲む。" * 30,
    ],
)
def test_degenerate_outputs_score_below_real(output: str) -> None:
    assert value(output) < 0.5 < value(ANSWER)


@pytest.mark.parametrize("output", ["Output:", "Answer:\n", "Response 2:", '""', "-", "..."])
def test_bare_labels_and_punctuation_score_zero(output: str) -> None:
    assert value(output) == 0.0


def test_finish_reason_length_scores_as_truncated() -> None:
    """An output the engine cut at its token limit ranks low even when its text reads closed."""
    cut = score_heuristic_quality(INSTR, "", ANSWER, finish_reason="length")
    assert cut.value is not None and cut.value < 0.2
    assert "finish reason" in cut.details["truncation"]
    for reason in ("stop", None):
        kept = score_heuristic_quality(INSTR, "", ANSWER, finish_reason=reason).value
        assert kept == value(ANSWER)


# Scorer v6: a list stops short of the count its instruction names.
@pytest.mark.parametrize(
    "instruction,output",
    [
        ("Generate a list of five books.", "1. Dune\n2. Emma\n3. The Cruel"),
        ("List 10 interesting facts about cats.", "1. Cats sleep a lot.\n2. Cats purr."),
        ("Name three international companies.", "- Honda"),
        ("Brainstorm 4 ideas to save water.", "1. Shorter showers 2. Fix leaks 3. Reuse water"),
        ("Write down twelve months of the year.", "* January\n* February\n* March"),
    ],
)
def test_list_short_of_requested_count_is_cut(instruction: str, output: str) -> None:
    factor, evidence = count_shortfall(instruction, output)
    assert factor < 1.0 and "asks for" in evidence
    assert value(output, instruction=instruction) < 0.5


@pytest.mark.parametrize(
    "instruction,output",
    [
        ("Generate a list of five books.", "1. A\n2. B\n3. C\n4. D\n5. E"),
        ("List 4 pros and 4 cons.", "1. a\n2. b\n3. c\n4. d\n\n1. e\n2. f\n3. g\n4. h"),
        ("Name three plants.", "Hibiscus, orchids and caladiums."),  # no list: not counted
        ("List two advantages of GPT-3 models.", "1. Fluent\n2. Fast"),  # "3 models": no count
        ("Summarise in 5 sentences or fewer.", "- It rained.\n- We stayed in."),
        ("Name 3 rivers.", "1. Nile\n2. Amazon\n3. Danube\n4. Rhine"),  # more is not short
        ("Describe the sea.", "- Blue\n- Deep"),  # no count named
    ],
)
def test_list_meeting_or_lacking_a_count_is_not_short(instruction: str, output: str) -> None:
    assert count_shortfall(instruction, output) == (1.0, "")


@pytest.mark.parametrize(
    "instruction,count",
    [
        ("Generate a list of five books.", 5),
        ("Create a list of 10 fun activities.", 10),
        ("Suggest 3 plant-based alternate ingredients.", 3),
        ("List 4 advantages and 2 disadvantages.", 2),
        ("Calculate the mass of 4.5 moles of carbon dioxide.", None),
        ("How much is $15 dollars?", None),
        ("Write 100 words about dogs.", None),
        ("Tell me a joke.", None),
    ],
)
def test_requested_count(instruction: str, count: int | None) -> None:
    assert requested_count(instruction) == count


@pytest.mark.parametrize(
    "output,items",
    [
        ("1. a\n2. b\n3. c", 3),
        ("1. Werewolf 2. Who Am I?  3. Charades", 3),
        ("- a\n- b", 2),
        ("• a\n• b\n• c\n• d", 4),
        ("It costs 2.5 dollars. 3. is a number.", 0),
        ("Plain prose.", 0),
    ],
)
def test_listed_items(output: str, items: int) -> None:
    assert listed_items(output) == items


# Scorer v6: endings that are finished though no sentence closes them, and their cut siblings.
@pytest.mark.parametrize(
    "instruction,output",
    [
        ("Select the best option given the choices.", "C. Rupee"),
        (
            "Write a quiz question.",
            "What does a CPU do?\nA. Runs programs\nB. Stores files\nC. Cools the case\nD. Prints",
        ),
        ("Who wrote it?", "By J. R. R. Tolkien"),
        ("Write a tweet about self-care.", "Take a walk and breathe. #SelfCare #Weekend"),
        ("Compose a tweet about GPT-3.", "GPT-3 writes natural-sounding text. #GPT3 #AI"),
        ("Write a quote.", 'He said "stay curious" and left.'),
        ("Describe the pizza.", 'A 12" pizza with basil'),
    ],
)
def test_finished_without_closing_sentence_scores_high(instruction: str, output: str) -> None:
    assert value(output, instruction=instruction) > 0.9


@pytest.mark.parametrize(
    "output",
    [
        '"Germany Passes Law Banning',
        'The headline read "Storms Hit the Coast and',
        "Take a walk and breathe. Then sit down and",
        "The word “subsequent” means following, as in “after",
    ],
)
def test_open_quote_or_sentence_before_the_end_is_cut(output: str) -> None:
    assert truncation_factor(output)[0] < 0.5


@pytest.mark.parametrize(
    "output",
    [
        "- Visit the Eiffel Tower\n- Walk along the Seine\n- Explore the",
        "- Visit the Eiffel Tower\n- Walk along the Seine\n- Explore the Louvre",
        "He has a dream",
        "Allison is excited to meet",
        "1. Google\n2. Microsoft\n3. Defence contractors",
    ],
)
def test_bare_end_ranks_below_a_closed_one_but_above_a_gate(output: str) -> None:
    """A bare end on a word seldom ending sentences costs a little, never a gate's 0.5."""
    factor, _ = truncation_factor(output)
    closed = truncation_factor(output.rstrip() + ".")[0]
    assert factor < closed == 1.0
    if not output.endswith("the"):  # a function word is still cut outright
        assert factor >= BARE_END_FLOOR
        assert value(output) > 0.8


@pytest.mark.parametrize("output", ["Leonardo da Vinci.", "Haruki Murakami", "Paris, France"])
def test_labels_and_closed_ends_keep_full_factor(output: str) -> None:
    assert truncation_factor(output)[0] == 1.0


@pytest.mark.parametrize(
    "instruction,output",
    [
        (
            "Create a survey about eating habits.",
            "1. What is your favorite food?\n2. What is your favorite restaurant?\n"
            "3. How often do you cook at home?\n4. Do you have any food allergies?",
        ),
        (
            "Write the adjectives that represent the given religions.",
            "Christianity: spiritual, devout, pious.\nIslam: spiritual, devout, pious.\n"
            "Hinduism: tolerant, colourful, devout.\nBuddhism: calm, mindful, kind.",
        ),
    ],
)
def test_templated_real_answers_are_not_loops(instruction: str, output: str) -> None:
    """A few repeated 3-grams (scorer v6: up to 10%) cost nothing; loops still score low."""
    assert value(output, instruction=instruction) > 0.9
    assert value("\n".join([output] * 4), instruction=instruction) < 0.5


@pytest.mark.parametrize(
    "instruction,output",
    [
        ("Solve the equation system.", "x = 3, y = 2"),
        ("Construct an equation using 11, 21 and 84.", "11 * 21 + 84 = 233"),
        ("Convert to standard form.", "4x - y + 2 = 0"),
        ("Create a new sequence out of the given numbers.", "0.2, 3, 5, 6, 2.6, 8.2, 11.8"),
        ("Balance the reaction.", "C6H12O6 → 2 C2H5OH + 2 CO2"),
    ],
)
def test_unpunctuated_formulas_are_not_open_prose(instruction: str, output: str) -> None:
    """Scorer v6: the long-last-line rule reads prose only (most words hold a letter)."""
    assert truncation_factor(output) == (1.0, "")
    assert value(output, instruction=instruction) > 0.9


@pytest.mark.parametrize(
    "output",
    [
        "85 degrees Fahrenheit is equal to 29.44",
        "The total comes to 12 dollars and 40",
        "She scored 3 goals in 2 matches and",
    ],
)
def test_prose_ending_on_a_number_stays_open(output: str) -> None:
    assert truncation_factor(output)[0] < 1.0


@pytest.mark.parametrize(
    "output",
    [
        "1.Once upon a midnight\n2. weak and weary\n3. pondered, weak.",
        "1)First item\n2) Second item\n3) Third item.",
    ],
)
def test_list_number_without_space_counts_in_turn(output: str) -> None:
    """Scorer v6: "1.Once" is item 1, so "2." is in turn, not residue."""
    assert residue_factor(output) == (1.0, "")


@pytest.mark.parametrize(
    "output", ["1.5 cups of flour\n3. Stir well.", "Mix.\n1.2 litres\n4. Bake."]
)
def test_decimal_at_line_start_is_no_list_number(output: str) -> None:
    assert residue_factor(output)[0] < 1.0  # "3." / "4." out of turn: no item 1 before them


@pytest.mark.parametrize(
    "output",
    [
        "The Health Hazards of Urban Air Pollution",
        "A Journey of Belonging: The Story of an Immigrant Family",
        "December 2020: Virus Cases Reach an All-Time High",
        "Prompt Waywardness: The Curious Case of Discretized Interpretation of Continuous Prompts",
    ],
)
def test_titles_end_bare_without_the_long_line_penalty(output: str) -> None:
    """Scorer v6: a title-case line is no open sentence (at most the mild bare-end cost)."""
    assert truncation_factor(output)[0] >= BARE_END_FLOOR
    assert value(output, instruction="Write a title for the text.") > 0.85


@pytest.mark.parametrize(
    "output",
    [
        "The data visualization shows a steady increase in online",
        "We spent a lot of time collecting the data",
        "Invitation to be a panelist for the workshop on",
        "The Curious Case of the Missing Cat and",
    ],
)
def test_sentence_case_or_dangling_lines_stay_open(output: str) -> None:
    assert truncation_factor(output)[0] < 0.75


VERSE = "There are people dying\nIf you care enough for the living\nHeal the world we live in\n"


@pytest.mark.parametrize(
    "output",
    [
        VERSE + "Make a better place for you and for me",
        "Monday\nMain: Fish Sticks\nSide: Tater Tots\nDessert: Ice Cream and fresh fruit salad",
    ],
)
def test_last_line_in_the_texts_own_bare_style_is_not_open(output: str) -> None:
    """Scorer v6: after 3+ lines mostly ending bare, a bare last line is the text's style."""
    assert truncation_factor(output)[0] > 0.85


@pytest.mark.parametrize(
    "output",
    [
        VERSE + "Make a better place for you and for the",
        VERSE + "Make a better place for you and we",
        "It rained.\nWe stayed in.\nThe cat slept.\nThen we went out to walk along the river and",
        "It rained.\nWe stayed in.\nThe cat slept.\nThen we went out to walk along the quiet river",
    ],
)
def test_cut_verse_or_cut_prose_stays_low(output: str) -> None:
    assert truncation_factor(output)[0] < 0.75


@pytest.mark.parametrize(
    "instruction,output",
    [
        ("Determine the sum of the two numbers: 9 and 4.", "The sum of 9 and 4 is 13."),
        (
            "Find the pitch of a string with a frequency of 256 Hz.",
            "The pitch of a string with a frequency of 256 Hz is A3.",
        ),
        (
            "What is the name of the French national anthem?",
            'The name of the French national anthem is "La Marseillaise".',
        ),
        (
            "Name three plants that grow in humid climates.",
            "Three plants that grow in humid climates are orchids, ferns and figs.",
        ),
        ("Determine if Monopoly is a zero-sum game.", "No, Monopoly is not a zero-sum game."),
    ],
)
def test_restatement_that_answers_is_no_echo(instruction: str, output: str) -> None:
    """Scorer v6: an answer that restates its question from its subject and adds the answer."""
    assert value(output, instruction=instruction) > 0.9


@pytest.mark.parametrize(
    "instruction,output",
    [
        ("Write a short poem about the sea.", "What short poem about the sea?"),  # one own word
        ("Can you give me a good recipe for pancakes?", "Can you give me a recipe for pancakes?"),
        (
            "Describe the water cycle in simple terms.",
            "Describe the water cycle in simple terms, please, now.",
        ),
        (
            "List the planets of the solar system.",
            "List the planets of the solar system in order of size",
        ),
    ],
)
def test_near_echo_of_the_instruction_stays_low(instruction: str, output: str) -> None:
    """Near-copies that start with the instruction's first word or add one word stay penalised."""
    assert value(output, instruction=instruction) < 0.7


# Scorer v7: real answers that dev_alpaca2 (Alpaca rows in the held-out set's shape) scored low.
STEPS = "1. Heat the pan.\n2. Add the oil.\n3. Fry the onion.\n4. Season well."


@pytest.mark.parametrize(
    "output",
    [
        STEPS + "\n5. Serve and enjoy!",
        STEPS + "\n5. Is it done?",
        STEPS + "\n5. Serve hot. Enjoy!",
        "- Rinse the rice.\n- Boil water.\n- Add the rice.\n- Simmer.\n- Serve at once!",
    ],
)
def test_any_sentence_mark_closes_the_last_list_item(output: str) -> None:
    assert truncation_factor(output) == (1.0, "")


@pytest.mark.parametrize(
    "output",
    [STEPS + "\n5. Serve with", STEPS + "\n5. Serve hot and", STEPS + "\n5. Serve with rice"],
)
def test_last_list_item_left_open_still_breaks_the_shape(output: str) -> None:
    assert truncation_factor(output)[0] <= 0.3


@pytest.mark.parametrize(
    "instruction,inp,output",
    [
        ("Sort the words.", "red orange green blue", "blue green orange red yellow indigo"),
        ("Order the steps.", "", "Set up board, gather pieces, roll dice, move pieces"),
        ("Categorize the peak.", "MOUNT EVEREST", "Mount Everest, 8,848 m - Himalayas"),
        ("Which is personification?", "", "A. The Sun danced in the sky"),
        ("Classify both.", "", "Positive: That was an amazing show\nNegative: I will never go"),
        ("Define the word.", "", "apprehension (noun): fear or anxiety about what may happen"),
    ],
)
def test_runs_of_terms_options_and_labelled_lines_end_bare(
    instruction: str, inp: str, output: str
) -> None:
    assert truncation_factor(output)[0] >= 0.9
    assert value(output, inp, instruction) > 0.85


@pytest.mark.parametrize(
    "output",
    [
        "The committee met on Monday and agreed to postpone the vote until the",  # dangling
        "We spent the whole afternoon walking along the beach with our dog",
        "She said that the results were better than anyone had expected them",
    ],
)
def test_cut_prose_with_function_words_stays_open(output: str) -> None:
    assert truncation_factor(output)[0] <= 0.7


LETTER = "Dear Ms. Lee,\n\nThank you for the interview. I look forward to hearing from you.\n\n"


@pytest.mark.parametrize(
    "close", ["Sincerely,", "With heartfelt gratitude,", "Best regards,", "Yours truly,"]
)
def test_unsigned_letter_ending_on_its_close_is_finished(close: str) -> None:
    assert truncation_factor(LETTER + close) == (1.0, "")


@pytest.mark.parametrize(
    "output",
    [
        "Dear Ms. Lee,",  # a greeting heads a letter: cut after it
        "Dear Ms. Lee,\n\nThank you,",  # no closed line before
        LETTER + "Thank you for taking the time to read all of this and,",  # a long line
        LETTER + "however,",  # lower case: a clause
    ],
)
def test_greetings_and_cut_clauses_ending_on_a_comma_stay_cut(output: str) -> None:
    assert truncation_factor(output)[0] == 0.1


@pytest.mark.parametrize(
    "output",
    [
        "def add(v1, v2):\n    result = []\n    for a, b in zip(v1, v2):\n"
        "        result.append(a + b)\n    return result",
        "Steps.\n  - Mix it.\n  - Bake it.\n  - Cool it on a rack",
        "function f(arr, n)\n  idx := 0\n  while arr[idx] < n\n    idx := idx + 1\n  return idx",
    ],
)
def test_indented_block_ends_bare(output: str) -> None:
    assert truncation_factor(output)[0] >= 0.9


@pytest.mark.parametrize(
    "output",
    [
        "First we mix it. Then we bake it.\n  Then we let it cool on the rack and",
        "Mix it well. Bake it for an hour. Then let it cool down for a while on the",
        "def f(x):\n    y = 2\n    z = 3\n    return max(y, z, the",
        "def f(x):\n    y = 2\n    z = 3\n    return max(y, z",
    ],
)
def test_cut_text_with_or_without_indentation_stays_cut(output: str) -> None:
    assert truncation_factor(output)[0] <= 0.3


@pytest.mark.parametrize(
    "instruction,inp,output",
    [
        ("Arrange the notes in ascending order.", "D, C, F, A", "C, D, F, A"),
        ("Transpose to D Major.", "C, E, G", "D, F#, A"),
        ("Find the second shortest word.", "He has a small car.", "a"),
        ("Is iron animal, plant or mineral?", "Iron", "mineral"),
    ],
)
def test_letter_names_and_one_word_answers_are_not_cut(
    instruction: str, inp: str, output: str
) -> None:
    assert truncation_factor(output)[0] >= 0.9


@pytest.mark.parametrize(
    "output",
    ["SELECT * FROM reviews ORDER BY timestamp DESC", "Data moves over TCP", "Deploy it on AWS"],
)
def test_upper_case_keywords_are_not_cut_words(output: str) -> None:
    assert "inside a word" not in truncation_factor(output)[1]


@pytest.mark.parametrize(
    "output",
    [
        "Water the plants every morning and give them a",  # the article, not a letter
        "Prepare the sauce and then add the pa",  # a cut inside a lower-case word
        "The book was written by a",
    ],
)
def test_articles_and_cut_words_still_end_cut(output: str) -> None:
    assert truncation_factor(output)[0] == 0.1


CHORUS = "Chorus:\nOh, summer love is all we need\nLike a fire burning endlessly\n"


@pytest.mark.parametrize(
    "output",
    [
        "Verse 1:\nWe met beside the sea one night\nThe stars above were shining bright\n\n"
        + CHORUS
        + "\nVerse 2:\nYou took my hand and we were free\nThe waves were singing just for me\n\n"
        + CHORUS,
        "Atheism: secular, doubting.\nChristianity: spiritual, devout, pious.\n"
        "Islam: spiritual, devout, pious.\nSikhism: brave, devout, humble.",
        "The average cost of tuition for public colleges in 2019 was $10,440.\n"
        "The average cost of tuition for private colleges in 2019 was $36,880.",
    ],
)
def test_a_chorus_or_a_shared_frame_said_twice_is_no_loop(output: str) -> None:
    assert score_heuristic_quality("Write it.", "", output).details["components"][
        "repetition"
    ] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "output",
    [
        CHORUS * 4,
        "I love you so much " * 8,
        "The end of the day. " * 5,
        ANSWER + "\n" + "\n".join(["Sleep eight hours a night."] * 5),
    ],
)
def test_a_phrase_said_four_times_or_more_stays_a_loop(output: str) -> None:
    assert value(output) < 0.5 < value(ANSWER)


@pytest.mark.parametrize("times", [2, 3])
def test_the_instruction_said_over_again_is_an_echo(times: int) -> None:
    assert value(" ".join([INSTR] * times)) == 0.0


PARA = "France and Spain share a border, and Portugal lies to the west of Spain."
COUNTRIES = "Identify the countries mentioned in the paragraph."


@pytest.mark.parametrize(
    "output",
    [
        f"{PARA}\n\nIdentify the countries mentioned in this paragraph.",
        "France and Spain share a border, and Portugal lies to the west. Identify all "
        "countries mentioned in the paragraph.",
        f"{PARA} Please identify the countries mentioned in the paragraph above.",
    ],
)
def test_input_then_the_instruction_restated_is_an_echo(output: str) -> None:
    assert value(output, PARA, COUNTRIES) < 0.2 < value("France, Spain, Portugal", PARA, COUNTRIES)


@pytest.mark.parametrize(
    "instruction,inp,output",
    [
        (
            COUNTRIES,
            PARA,
            "The countries mentioned in the paragraph are France, Spain and Portugal.",
        ),
        (
            COUNTRIES,
            PARA,
            "France, Spain and Portugal are the countries mentioned in the paragraph.",
        ),
        (
            "Suggest a way to reward employees for their hard work.",
            "",
            "Offering internal promotions or a job reassignment is a great way to reward them "
            "for their hard work.",
        ),
        ("Find the pitch of a string with a frequency of 256 Hz.", "", "It is A3."),
    ],
)
def test_answer_that_ends_on_its_question_is_no_echo(
    instruction: str, inp: str, output: str
) -> None:
    assert score_heuristic_quality(instruction, inp, output).details["components"]["echo"] > 0.9


@pytest.mark.parametrize(
    "instruction,output",
    [
        ("What is the output of the given program?", "The output of the given program is 13."),
        ("What is the maximum number of steps?", "The maximum number of steps is 93."),
        ("How many legs does a spider have?", "A spider has 8 legs."),
    ],
)
def test_restatement_that_adds_a_number_answers(instruction: str, output: str) -> None:
    assert value(output, "", instruction) > 0.9


@pytest.mark.parametrize(
    "instruction,output",
    [
        ("What is the output of the given program?", "The output of the given program is"),
        ("What is the output of the given program?", "What is the output of the program? 13"),
        ("Name 3 primary colours.", "Name 3 primary colours"),
    ],
)
def test_restatement_without_an_answer_or_from_the_first_word_stays_low(
    instruction: str, output: str
) -> None:
    assert value(output, "", instruction) < 0.7


@pytest.mark.parametrize(
    "output",
    [
        "1. https://www.example.org/2021/mar/19/story\n2. https://example.com/blog/full/",
        "See www.example.com/docs/",
        "Source: http://example.net/a/b/",
    ],
)
def test_a_web_address_ends_where_it_ends(output: str) -> None:
    assert truncation_factor(output) == (1.0, "")


@pytest.mark.parametrize(
    "output", ["See the page at https://example.com/ and the", "Path: /usr/local/", "a/b/"]
)
def test_a_slash_outside_a_web_address_stays_open(output: str) -> None:
    assert truncation_factor(output)[0] == 0.1


@pytest.mark.parametrize(
    "output",
    [
        "<html>\n  <body>\n    <div>\n      <p>Hi</p>",
        "<form>\n  <label>Name</label>\n  <input type='text'>",
        '<ul class="menu">\n  <li><a href="/">Home</a></li>\n  <li>About',
        "<head>\n  <title>My page</title>",
    ],
)
def test_html_element_left_open_is_cut(output: str) -> None:
    assert truncation_factor(output)[0] <= 0.3


@pytest.mark.parametrize(
    "output",
    [
        "<html>\n  <body>\n    <p>Hi<br>there\n    <img src='a.png'>\n  </body>\n</html>",
        "<ul>\n  <li>Home\n  <li>About\n</ul>",
        "Replace the names with <anonymized>: <anonymized> met <anonymized> in Paris.</p>",
        "public boolean has(List<String> list, String s) {\n  return list.contains(s);\n}",
        "#include <string>\nint main() { return 0; }",
    ],
)
def test_closed_html_and_angle_brackets_that_are_no_html_are_finished(output: str) -> None:
    assert "HTML" not in truncation_factor(output)[1]


@pytest.mark.parametrize(
    "output",
    [
        "Which state did Kennedy represent?\nA) Massachusetts\nB)",
        "What is 2 x 4?\nA.",
        "x = 5\ny = 10\n# Add them\nsum = x + y\n#",
        "Intro text.\n\n##",
        "int x = 1;\n//",
    ],
)
def test_a_line_holding_only_an_option_letter_or_comment_mark_is_cut(output: str) -> None:
    assert truncation_factor(output)[0] == 0.1


@pytest.mark.parametrize("output", ["B)", "Answer:\nB) Solar", "Notes on C#", "Play D, F#, A"])
def test_option_answers_and_sharps_are_no_bare_marker(output: str) -> None:
    assert "bare list marker" not in truncation_factor(output)[1]


STORY = (
    "Maria left Lisbon in the spring, crossed Spain by train, and reached Paris in time for "
    "the opening of the exhibition."
)


@pytest.mark.parametrize(
    "output",
    [
        "Maria left Lisbon in the spring, crossed Spain by train, and reached Paris in time",
        "Input: Maria left Lisbon in the spring, crossed Spain by train, and reached Paris in "
        "time for the",
        "1. Maria left Lisbon in the spring, crossed Spain by train, and reached Paris in time "
        "for the opening",
    ],
)
def test_start_of_the_input_cut_short_is_an_echo(output: str) -> None:
    instruction = "Identify the cities mentioned in the story."
    assert value(output, STORY, instruction) == 0.0 < value("Lisbon, Paris", STORY, instruction)


@pytest.mark.parametrize(
    "inp,output",
    [
        (STORY, "Maria left Lisbon in the spring."),  # a clause kept: 0.3 of the input
        ("A. The Sun danced in the sky\nB. The forest was tall", "A. The Sun danced in the sky"),
        (STORY, STORY + " She stayed a week."),  # the whole input and more: a continuation
    ],
)
def test_a_kept_clause_a_picked_option_or_a_continuation_is_no_echo(inp: str, output: str) -> None:
    instruction = "Answer about the text."
    assert score_heuristic_quality(instruction, inp, output).details["components"]["echo"] == 1.0


@pytest.mark.parametrize(
    "output",
    [
        "1. Werewolf 2. Who Am I? 3. Charades 4. Kubb",
        "Games: 1) Uno. 2) Chess 3) Go",
        "Try these. 1. Walk daily 2. Eat well 3. Sleep eight hours",
    ],
)
def test_inline_numbered_list_ends_bare(output: str) -> None:
    assert truncation_factor(output)[0] >= 0.9


@pytest.mark.parametrize(
    "output",
    [
        "Who am I? I am the one who knocks and then leaves",  # no list
        "1. Werewolf 2. Who Am I? And then we played until the",  # only 2 items, dangling end
        "I like 1. Uno. I also like 2. Chess. But mostly 5. Go outside and",
    ],
)
def test_prose_with_fewer_than_three_inline_numbers_stays_open(output: str) -> None:
    assert truncation_factor(output)[0] <= 0.3


@pytest.mark.parametrize(
    "output",
    [
        '"A real friend walks in when the rest of the world walks out" - Walter Winchell',
        "“Once you choose hope, anything is possible.” — Christopher Reeve",
        '"A true friend knows your weaknesses but shows you your strengths." - Unknown',
    ],
)
def test_attributed_quotation_is_finished(output: str) -> None:
    assert truncation_factor(output) == (1.0, "")


@pytest.mark.parametrize(
    "output",
    [
        '"A real friend walks in when the rest of the world walks out" - and then she left the',
        '"Hope" - the thing with feathers that perches in the',
        '"A real friend walks in when the rest of the world" - Walter Winchell said to his son',
    ],
)
def test_a_dash_after_a_quote_that_runs_on_stays_open(output: str) -> None:
    assert truncation_factor(output)[0] <= 0.7


STEPS_SEMI = (
    "Steps:\n1. Plan the design;\n2. Draw the wireframe;\n3. Choose the style;\n4. Test it;"
)


@pytest.mark.parametrize("tail", ["5. Launch the website.", "5. Launch it!", "5. Launch it;"])
def test_list_closed_by_semicolons_may_end_on_a_full_stop(tail: str) -> None:
    assert truncation_factor(f"{STEPS_SEMI}\n{tail}") == (1.0, "")


@pytest.mark.parametrize("tail", ["5. Launch the", "5. Launch it,", "5. Launch the site"])
def test_list_closed_by_semicolons_left_open_is_cut(tail: str) -> None:
    assert truncation_factor(f"{STEPS_SEMI}\n{tail}")[0] <= 0.3


@pytest.mark.parametrize("output", ["B) Solar", "C. Rupee", "3) Kubb", "b) Solar"])
def test_an_option_and_its_label_is_a_short_answer(output: str) -> None:
    assert truncation_factor(output)[0] >= 0.9


@pytest.mark.parametrize("output", ["B) Solar panels can get", "3) Kubb is a game we"])
def test_an_option_that_runs_on_is_judged_by_its_words(output: str) -> None:
    assert truncation_factor(output)[0] == 0.1


@pytest.mark.parametrize("output", ["0 " * 40, "1 2 " * 30, "12 | 12 | 12 | 12 | " * 10])
def test_a_loop_of_numbers_stays_low(output: str) -> None:
    assert value(output, "", "Make the grid.") < 0.3


@pytest.mark.parametrize(
    "output",
    [
        "\n".join(f"{n}. Apple" for n in range(1, 9)),  # one item, numbered lines
        " ".join(f"{n}. Apple" for n in range(1, 9)),  # inline
        "\n".join(f"{n}) Red apple" for n in range(1, 7)),  # ")" counters, two words
        "\n".join(f"({n}) Red apple" for n in range(1, 7)),  # "(n)" counters
        "\n".join(f"{n}. Eat a balanced diet." for n in range(1, 12)),  # closed sentences
        "\n".join(f"{n}. 苹果很好吃" for n in range(1, 9)),  # another script
        "Here are the tips:\n" + "\n".join(f"{n}. Sleep well" for n in range(1, 10)),
        # Letter and roman counters break the 3-grams alike (0.92 under v8: digits only).
        "\n".join(f"{chr(96 + n)}) Apple" for n in range(1, 9)),  # letters
        "\n".join(f"{chr(64 + n)}. Apple" for n in range(1, 9)),  # capital letters
        "\n".join(f"({chr(96 + n)}) Red apple" for n in range(1, 7)),  # "(a)" counters
        " ".join(f"{chr(96 + n)}) Apple" for n in range(1, 9)),  # inline letters
        "\n".join(f"{r}. Apple" for r in ("i", "ii", "iii", "iv", "v", "vi", "vii")),  # roman
        "\n".join(f"{r}) Apple" for r in ("I", "II", "III", "IV", "V", "VI")),  # capitals
    ],
)
def test_a_list_repeating_one_item_is_a_loop(output: str) -> None:
    """Counters make each numbered item's 3-grams differ; without them the loop shows (v8)."""
    assert value(output) < 0.3 < value(ANSWER)


@pytest.mark.parametrize(
    "output",
    [
        "1. Apple\n2. Banana\n3. Cherry\n4. Mango",
        "1) Eat vegetables. 2) Walk daily. 3) Sleep well.",
        "1. 2. 3.",  # counters only: measured with them
        "4",
        "Step 1. Mix the flour and water.\nStep 2. Knead for 10 minutes.\nStep 3. Bake at 200 C.",
        "a) Take the bus to work.\nb) Ride a bicycle along the river.\nc) Walk through the park.",
        "i. Preheat the oven.\nii. Grease the tin.\niii. Pour in the batter.",
        "A: Hi, how are you?\nB: Fine, thanks. And you?\nA: Great, see you at the mix.",
        "Step 1: Mix the flour.\nStep 2: Knead the dough.\nStep 3: Bake it for an hour.",
        "I. Introduction\nA. Definition\nB. Effects\nII. Causes\nA. Fossil fuels\nB. Land use",
    ],
)
def test_lists_of_distinct_items_are_not_loops(output: str) -> None:
    assert value(output, instruction="List some things.") > 0.7


@pytest.mark.parametrize(
    ("instruction", "output"),
    [
        ("List the numbers from 1 to 12, one per line.", "\n".join(str(n) for n in range(1, 13))),
        ("Give the first six prime numbers, one per line.", "2\n3\n5\n7\n11\n13"),
        ("What is 6 times 7? Show the result on its own line.", "The product is:\n42"),
        ("Add 19 and 23.", "19 + 23 =\n42"),
        ("Count down from 5.", "5\n4\n3\n2\n1"),
    ],
)
def test_a_number_on_its_last_line_that_is_no_list_counter_is_no_residue(
    instruction: str, output: str
) -> None:
    """A number closing a column of numbers or a lead-in is an answer: under v8 any bare
    number on the last line of a multi-line output was a list counter left behind (0.18)."""
    assert residue_factor(output) == (1.0, "")
    assert value(output, instruction=instruction) > 0.7


@pytest.mark.parametrize(
    "output",
    [
        "1. Eat well.\n2. Walk.\n3",  # the next counter, without its mark
        "1) Eat well.\n2) Walk.\n3",
        f"{ANSWER}\n4.",
        f"{ANSWER}\n12)",
        "| | release date\n1 | American Utopia | 10/09/2020\n2",  # a table's next row number
        "9 Eat well.\n10",
    ],
)
def test_a_list_counter_left_on_the_last_line_is_residue(output: str) -> None:
    assert residue_factor(output)[0] < 1.0


@pytest.mark.parametrize(
    "output",
    [
        "Charlotte's Web by E. B. White.\n" + "Charlotte's Web by E. B.\n" * 8,  # initials
        "\n".join(["V. Conclusion"] * 8),  # one numeral said over
        "\n".join(["C. Rupee"] * 6),  # one option said over
    ],
)
def test_letters_that_count_nothing_stay_in_a_loop(output: str) -> None:
    """v9 blanks letters and roman numerals only where they count on (a, b, c): initials and
    an option said over are the loop's own words (blanking them hid loops on the bench)."""
    assert value(output) < 0.5
