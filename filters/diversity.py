"""Diversity of a set of instructions: lexical, verb-noun, embedding spread and label balance.

Functions only (no I/O, no model loading): the run report calls them on stored rows.

* distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
  Conversation Models"): distinct n-grams over all n-grams, on the ROUGE-L tokens of
  :func:`filters.rouge.rouge_tokenize` (any script).
* Root verb / direct object (Self-Instruct, Wang et al. 2023, section 3.2 and figure 2: the
  verb closest to the root and its first direct noun object). The paper used the Berkeley
  Neural Parser; no spaCy English pipeline on the package index could be checked against the
  official release, so :func:`root_verb_object` is a documented heuristic for imperative
  instructions (see there), version :data:`VERB_NOUN_VERSION`.
* Embedding spread: mean pairwise cosine distance and the number of clusters at a fixed
  cosine radius, on unit vectors from :mod:`filters.embeddings`.
* Balance of labels (task type, classification or not): shares and normalised entropy.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from lemminflect import getAllLemmas

from filters.errors import InvalidInputError
from filters.rouge import rouge_tokenize

# 2: the object is the head of the noun phrase after the verb (its last word), not its first
# word; a preposition, subordinator or wh-word right after the verb means no direct object;
# phrasal particles are skipped; only English (ASCII) verbs are read.
# 3: the verb must be an English verb in its base form (lemminflect's lexicon), so openings
# such as "One", "Your", "I'm", "Hello", code or Latin-script words of other languages give no
# pair; one adverb before the verb is skipped ("Briefly explain"); a participle or
# preposition lead-in clause ("Using the facts given, write ...") is read past like "Given".
# 4: the text is NFKC-normalised (full-width letters, ligatures) and list markers, markdown and
# quotes before the first word are dropped ("1. Write", "\"Write"); typographic and opening
# single quotes end a clause like straight double quotes; request frames stack ("Can you
# please"), a frame alone before a comma is read past ("Please, write") and a modal frame is
# one ("You should write"); coordinated verbs share the object ("Compare and contrast X");
# the head must be a noun, so an adjective, participle or adverb after it is dropped
# ("animals found in" -> "animals", "the list alphabetically" -> "list") and a subject
# pronoun or a contraction ends the phrase ("a time you felt"); a clause with as many
# non-English words as English ones gives no pair ("Sag mir die Wahrheit"); a full stop in an
# abbreviation ("U.S.") ends no clause and a token starting with a digit ("2nd") is no word;
# "that" opening a clause, or a verb after an object pronoun ("Let me know"), means no direct
# object; linear time on runs of skipped words.
VERB_NOUN_VERSION = "heuristic-4"
TOP_VERBS = 20  # Self-Instruct figure 2 shows the top 20 root verbs

# Openings that are not the task's verb: a request frame is skipped ("Please write ...").
_FRAMES = (
    ("please",),
    ("can", "you"),
    ("could", "you"),
    ("would", "you"),
    ("i", "want", "you", "to"),
    ("i", "would", "like", "you", "to"),
    ("you", "need", "to"),
    ("try", "to"),
    ("now",),
)
# Modal verbs of a frame "you should ..." (the verb after them is the root verb).
_MODALS = ("should", "must", "will", "can", "could", "would", "may", "might", "shall")
# First words that make a question or a statement, not an imperative: no root verb is read.
# fmt: off
_NOT_IMPERATIVE = frozenset((
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was",
    "were", "do", "does", "did", "can", "could", "would", "should", "will", "shall", "may",
    "might", "have", "has", "had", "i", "you", "we", "it", "this", "that", "there", "my", "our",
    "in", "if", "for", "as", "to", "the", "a", "an",
))
# Words before the object's head that are not it: articles, quantifiers, pronouns, numbers,
# stock adjectives. Skipped before the noun phrase; never taken as its head.
_SKIP = frozenset((
    "a", "an", "the", "this", "that", "these", "those", "some", "any", "each", "every", "all",
    "few", "several", "many", "more", "most", "me", "us", "him", "her", "them", "it", "my",
    "your", "our", "their", "its", "one", "ones", "two", "three", "four", "five", "six", "seven",
    "eight", "nine", "ten", "new", "short", "brief", "simple", "good", "following", "given",
    "another", "other", "such", "no", "both", "either", "neither", "own", "certain", "various",
    "different", "same", "specific", "particular", "above", "below", "whole", "entire", "only",
    "least", "much", "less", "own", "yourself", "myself", "themselves", "someone", "something",
))
# Words that start a verb's object: after a noun phrase's head, the word before them is a verb.
_OBJECT_STARTS = frozenset(
    ("a", "an", "the", "it", "them", "me", "us", "him", "her", "its", "their", "his", "my", "your")
)
# Words that start a clause's subject after "that" (a complementizer, not a determiner).
_CLAUSE_SUBJECTS = _OBJECT_STARTS | {"i", "you", "we", "they", "he", "she", "this", "there"}
_OBJECT_PRONOUNS = frozenset(("me", "us", "him", "her", "them", "it"))
# Particles of phrasal verbs ("come up with", "write down", "find out"): not the object.
_PARTICLES = frozenset(("up", "down", "out", "off", "back", "over", "away", "together"))
# Words that end the noun phrase, or, right after the verb, show there is no direct object
# (a prepositional phrase, a clause or a question follows: "Explain why ...", "Tell me about").
_NOT_OBJECT = frozenset((
    "about", "above", "across", "after", "against", "along", "among", "around", "as", "at",
    "before", "behind", "below", "beneath", "beside", "between", "beyond", "by", "during",
    "except", "for", "from", "in", "inside", "into", "like", "near", "of", "on", "onto", "per",
    "since", "through", "throughout", "till", "to", "toward", "towards", "under", "until",
    "upon", "with", "within", "without", "via", "and", "or", "but", "nor", "so", "yet",
    "because", "although", "though", "while", "whereas", "unless", "if", "whether", "than",
    "then", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "that",
    "is", "are", "was", "were", "be", "been", "being", "will", "would", "can", "could",
    "should", "may", "might", "must", "do", "does", "did", "has", "have", "had", "not",
    "using", "based", "according", "whatever", "however", "there", "here",
    "i", "you", "we", "they", "he", "she",
))
# fmt: on
# Openings of a lead-in clause that describes the input before the task's verb: a clause
# starting with one of them (or with a participle, "Considering ...") is read past, as "Given".
_LEAD_INS = frozenset(
    (
        "given",
        "using",
        "based",
        "according",
        "from",
        "with",
        "for",
        "in",
        "on",
        "during",
        "after",
        "before",
        "as",
        "if",
        "when",
        "assuming",
        "considering",
        "starting",
    )
)
# Function words: never a root verb (some are verbs in the lexicon: "while away", "near"), and
# one with a clitic ("that's", "you're") starts a clause.
_FUNCTION_WORDS = _NOT_IMPERATIVE | _NOT_OBJECT | _SKIP
# Words the language test counts as English besides the lexicon's.
_KNOWN_ENGLISH = _FUNCTION_WORDS | _PARTICLES | _LEAD_INS
# The noun phrase's head is read within this many words after its first one (compounds such
# as "weekly meal plan"; with no punctuation a run-on would otherwise reach the next clause).
_MAX_PHRASE = 4
# Words of letters, hyphenated or with an apostrophe kept whole ("pre-run", "one-sentence").
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
# Where an instruction's clauses end: the verb-noun pair is read in one clause. Quotes of any
# style end it (straight, typographic, guillemets; a single quote only when it opens, so
# "John's" and "students' essays" stay whole).
# A full stop inside an abbreviation ("U.S.", "e.g.") or a number ("1.5") does not end one.
_CLAUSE_END = re.compile(
    r"[,;:!?()\[\]{}\"\n\u201c\u201d\u201e\u00ab\u00bb\u2018]|(?<!\w)'|\s-\s"
    r"|(?<!\.[^\W\d_])\.(?!\w)"
)
# Before the first word: list markers ("1.", "2)"), markdown ("**", "- ", "> "), quotes,
# brackets and emoji, which a parser would not read as part of the sentence.
_LEADING = re.compile(r"^(?:[\W_]+|\d{1,3}[.)](?!\w))+")


def ngrams(text: str, n: int) -> Iterator[tuple[str, ...]]:
    """The n-grams of one text's ROUGE tokens, in order (none when it has fewer than n).

    Raises:
        InvalidInputError: ``n`` below 1.
    """
    if n < 1:
        raise InvalidInputError(f"n must be at least 1, got {n}")
    tokens = rouge_tokenize(text)
    return (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct-n: distinct n-grams divided by all n-grams, pooled over ``texts`` (n-grams never
    span two texts).

    Args:
        texts: The instructions.
        n: n-gram length, at least 1.

    Returns:
        A ratio in [0, 1]; 0.0 when the texts hold no n-gram at all.

    Raises:
        InvalidInputError: ``n`` below 1.
    """
    grams: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        grams.update(ngrams(text, n))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def root_verb_object(instruction: str) -> tuple[str, str] | None:
    """The instruction's root verb and direct object noun, read as an English imperative.

    Heuristic (version :data:`VERB_NOUN_VERSION`), standing in for the paper's constituency
    parse: NFKC-normalise, drop list markers, markdown and quotes before the first word, and cut
    the instruction into clauses at punctuation (not an abbreviation's full stops) and quotes;
    when it starts with a lead-in ("given", "in this task", "using", "based on", a participle)
    or with a clause that is only a request frame ("Please, ..."), read the first later clause
    that parses (the earlier ones describe the input), else the first clause only. In that
    clause (lower-cased words): skip the request frames ("please", "can you", ...) and a modal
    frame ("you should", "you will need to"); a question or statement opening (what, is, I, the
    ...) has no root verb. The verb is the next word (after one adverb in -ly, if any) and must
    be an English verb in its base form (:func:`is_base_verb`: other languages, nouns, pronouns,
    code and inflected forms give no pair), in a clause with more English words than not. A
    coordinated verb after it shares its object ("Compare and contrast ..."); phrasal particles
    after it are skipped ("come up with", "find out"). The object is the head of the noun phrase
    that follows: articles, quantifiers, pronouns, numbers and stock adjectives are skipped,
    then up to :data:`_MAX_PHRASE` words are read until a preposition, conjunction, clause word,
    subject pronoun or contraction, adjectives, participles and adverbs at its end are dropped
    (they modify the head: "animals found in", "the list alphabetically"), and the last word
    left is the head ("a weekly meal plan for" -> "plan"). A preposition, subordinator or
    wh-word where the object should start, "that" opening a clause, or a verb after an object
    pronoun means the verb has no direct object ("Explain why ...", "Tell me about ...", "Let me
    know ..."): ``None``, as the paper counts only verbs with a direct noun object. Tokens
    starting with a digit are numbers, not words.

    Args:
        instruction: One instruction.

    Returns:
        ``(verb, noun)``, or ``None`` when no imperative verb with a direct object is found.
    """
    text = _LEADING.sub("", unicodedata.normalize("NFKC", instruction))
    clauses = _CLAUSE_END.split(text)
    first = _words(clauses[0].lower())
    # "Given X, do Y" / "Using X, do Y" / "In this task, you are given X, do Y": the verb is
    # in a later clause; so it is after a clause that is only a request frame ("Please, ...").
    lead_in = bool(first) and _lead_in(first[0])
    later = len(clauses) > 1 and (lead_in or _after_frames(first) == len(first))
    for clause in clauses[1:] if later else clauses[:1]:
        pair = _imperative_pair(_words(clause))
        if pair is not None:
            return pair
    return None


def _words(clause: str) -> list[str]:
    """The clause's words; a token that starts with a digit is a number, not a word ("2nd",
    "3D", "3.2e"), one with a digit later is a name ("COVID-19", "MP3")."""
    return [w for w in _WORD.findall(clause) if not w[0].isdigit()]


def is_base_verb(word: str) -> bool:
    """Whether ``word`` (lower case) is an English verb in its base form, the form of an
    imperative ("write", "proofread"; not "writes", "written", "one", "your", "escribe"), by
    lemminflect's English lexicon (no download; its lemma tables ship in the wheel)."""
    return word.isascii() and word in getAllLemmas(word, upos="VERB").get("VERB", ())


def _lead_in(word: str) -> bool:
    return word in _LEAD_INS or (word.endswith("ing") and not is_base_verb(word))


def _is_verb(word: str) -> bool:
    return word not in _FUNCTION_WORDS and is_base_verb(word)


def _after_frames(words: list[str]) -> int:
    """Index of the first word after the request frames ("Can you please ..." has two) and a
    modal frame ("You should write ...", "You will need to write ...", "We have to write")."""
    i, matched = 0, True
    while matched:
        matched = False
        for frame in _FRAMES:
            if tuple(words[i : i + len(frame)]) == frame:
                i, matched = i + len(frame), True
                break
    if words[i : i + 1] in (["you"], ["we"]):
        j = i + 1 + (i + 1 < len(words) and words[i + 1] in _MODALS)
        if words[j : j + 2] in (["need", "to"], ["have", "to"]):
            j += 2
        i = j if j > i + 1 else i
    return i


def _is_modifier(word: str) -> bool:
    """A word that modifies a noun phrase's head but is never one: an adjective, adverb or
    participle with no noun reading ("suitable", "alphabetically", "found", "related")."""
    lemmas = getAllLemmas(word)
    if "NOUN" in lemmas or "PROPN" in lemmas:
        return False
    # "found", "related", "containing"; not a verb's -s form ("harms" is a plural here).
    participle = not word.endswith("s") and any(w != word for w in lemmas.get("VERB", ()))
    return "ADJ" in lemmas or "ADV" in lemmas or participle or (not lemmas and word.endswith("ly"))


def _is_bare_verb(word: str) -> bool:
    """A verb in its base form with no noun reading ("know", "write"; not "rhyme")."""
    return is_base_verb(word) and "NOUN" not in getAllLemmas(word)


def _is_contraction(word: str) -> bool:
    """A function word with a clitic ("that's", "it's", "you're"): a clause starts there."""
    base = re.split("['\u2019]", word)[0]
    return base != word and base in _FUNCTION_WORDS


def _is_english(word: str) -> bool:
    if word in _KNOWN_ENGLISH or getAllLemmas(word):
        return True
    parts = word.split("-")  # a compound of English words ("medium-level", "one-sentence")
    return len(parts) > 1 and all(map(_is_english, parts))


def _mostly_english(words: list[str]) -> bool:
    """More English words than not (acronyms such as SQL and initials not counted), so a
    Latin-script clause in another language whose first word is also an English verb gives no
    pair."""
    is_all_caps = all(w.isupper() for w in words)
    counted = english = 0
    for w in words:
        known = _is_english(w.lower())
        if known or (len(w) > 1 and (is_all_caps or not w.isupper())):
            counted += 1
            english += known
    # Two words are too few to tell ("Define sustainability", an English word not in the lexicon).
    return 2 * english > counted or counted <= 2


def _imperative_pair(clause_words: list[str]) -> tuple[str, str] | None:
    words = [w.lower() for w in clause_words]
    i = _after_frames(words)
    # One adverb before the verb ("Briefly explain ...", "Automatically generate ...").
    if len(words) - i > 2 and words[i].endswith("ly") and not is_base_verb(words[i]):
        i += 1
    verb = words[i] if i < len(words) else ""
    if len(words) - i < 2 or not _is_verb(verb):
        return None
    if not _mostly_english(clause_words[i:]):
        return None
    j = i + 1
    # Coordinated verbs share the object ("Compare and contrast X", "Identify and fix X").
    if words[j : j + 1] in (["and"], ["or"]) and j + 1 < len(words) and _is_verb(words[j + 1]):
        j += 2
    if j < len(words) and words[j] in _PARTICLES:
        j += 1
        if j < len(words) and words[j] in ("with", "of", "on"):  # come up with, think of
            j += 1
    # "that" opening a clause, not pointing at a noun ("Explain that the sky is blue").
    if words[j : j + 1] == ["that"] and j + 1 < len(words) and words[j + 1] in _CLAUSE_SUBJECTS:
        return None
    while j < len(words) and words[j] in _SKIP:
        j += 1
    # An object pronoun then a verb is a clause, not a noun phrase ("Let me know ...", "Help
    # us write ..."): the verb has no direct noun object.
    if 0 < j < len(words) and words[j - 1] in _OBJECT_PRONOUNS and _is_bare_verb(words[j]):
        return None
    phrase: list[str] = []
    for k in range(j, min(j + _MAX_PHRASE, len(words))):
        word = words[k]
        if word in _NOT_OBJECT or (phrase and word in _SKIP) or _is_contraction(word):
            break
        # A word followed by a pronoun or an article, after the head, is a verb running on
        # with no punctuation ("Write a poem make it rhyme").
        if phrase and k + 1 < len(words) and words[k + 1] in _OBJECT_STARTS:
            break
        phrase.append(word)
    # The head is a noun: an adjective, participle or adverb after it is a post-modifier
    # ("animals found in", "a joke suitable for", "the list alphabetically").
    while phrase and _is_modifier(phrase[-1]):
        phrase.pop()
    return (verb, phrase[-1]) if phrase else None


@dataclass(frozen=True)
class VerbNounStats:
    """The Self-Instruct verb-noun analysis of a set of instructions.

    Attributes:
        instructions: How many were analysed.
        parsed: How many gave a (verb, noun) pair.
        distinct_verbs: Number of distinct root verbs.
        distinct_pairs: Number of distinct (verb, noun) pairs.
        top_verbs: The :data:`TOP_VERBS` commonest verbs with their counts, commonest first.
        top_verb_share: Share of parsed instructions whose verb is one of ``top_verbs``.
        version: The parser's version (:data:`VERB_NOUN_VERSION`).
    """

    instructions: int
    parsed: int
    distinct_verbs: int
    distinct_pairs: int
    top_verbs: list[tuple[str, int]]
    top_verb_share: float
    version: str = VERB_NOUN_VERSION


def verb_noun_stats(instructions: Sequence[str], *, top: int = TOP_VERBS) -> VerbNounStats:
    """Root verbs and verb-noun pairs of ``instructions`` (see :func:`root_verb_object`)."""
    pairs = [p for p in map(root_verb_object, instructions) if p is not None]
    verbs = Counter(verb for verb, _ in pairs)
    top_verbs = verbs.most_common(top)
    covered = sum(count for _, count in top_verbs)
    return VerbNounStats(
        instructions=len(instructions),
        parsed=len(pairs),
        distinct_verbs=len(verbs),
        distinct_pairs=len(set(pairs)),
        top_verbs=top_verbs,
        top_verb_share=covered / len(pairs) if pairs else 0.0,
    )


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise InvalidInputError(f"vectors must be 2-D (n, dim), got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InvalidInputError("a zero vector has no direction")
    unit: np.ndarray = vectors / norms
    return unit


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float:
    """Mean of ``1 - cos(a, b)`` over all unordered pairs of distinct rows.

    Computed in O(n * dim) from the sum of the unit vectors: the sum of ``cos`` over ordered
    pairs i != j is ``|sum|^2 - n``.

    Args:
        vectors: ``(n, dim)`` array (normalised here).

    Returns:
        The mean distance in [0, 2]; 0.0 for fewer than two rows.

    Raises:
        InvalidInputError: Not a 2-D array, or a zero row.
    """
    if len(vectors) < 2:
        return 0.0
    unit = _unit_rows(vectors)
    n = len(unit)
    total = unit.sum(axis=0)
    mean_cos = (float(total @ total) - n) / (n * (n - 1))
    return 1.0 - mean_cos


def cluster_count(vectors: np.ndarray, *, radius: float) -> int:
    """Clusters at a fixed cosine radius: greedy leader clustering in row order.

    Each row joins the first leader within cosine distance ``radius`` (``1 - cos <= radius``)
    or becomes a new leader; the count of leaders is returned. Deterministic for a given order
    (the run report passes rows in task id order).

    Args:
        vectors: ``(n, dim)`` array (normalised here).
        radius: Cosine distance in [0, 2].

    Returns:
        Number of clusters; 0 for no rows.

    Raises:
        InvalidInputError: Radius outside [0, 2], not a 2-D array, or a zero row.
    """
    if not 0.0 <= radius <= 2.0:
        raise InvalidInputError(f"radius must be in [0, 2], got {radius}")
    if len(vectors) == 0:
        return 0
    unit = _unit_rows(vectors)
    leaders = np.empty_like(unit)
    count = 0
    for row in unit:
        if count == 0 or float(np.max(leaders[:count] @ row)) < 1.0 - radius - 1e-12:
            leaders[count] = row
            count += 1
    return count


@dataclass(frozen=True)
class LabelBalance:
    """How evenly a set of items spreads over labels (task types, classification or not).

    Attributes:
        counts: Items per label, commonest first.
        shares: Share of items per label, same order.
        normalized_entropy: Shannon entropy of the shares over log(number of labels): 1.0
            when every label has the same count, 0.0 for a single label (or no items).
    """

    counts: dict[Hashable, int]
    shares: dict[Hashable, float]
    normalized_entropy: float


def label_balance(labels: Sequence[Hashable]) -> LabelBalance:
    """Counts, shares and normalised entropy of ``labels`` (e.g. ``is_classification``)."""
    counts = dict(Counter(labels).most_common())
    total = len(labels)
    shares = {k: v / total for k, v in counts.items()}
    entropy = -sum(p * math.log(p) for p in shares.values())
    normalized = entropy / math.log(len(counts)) if len(counts) > 1 else 0.0
    return LabelBalance(counts, shares, normalized)
