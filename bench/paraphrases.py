"""Offline paraphrases of real instructions, for a near-duplicate stream that is not 1-3 word edits.

A paraphrase here is what a model writing "the same task again" tends to produce: synonyms for
the instruction verbs and nouns, a request frame added or dropped ("Can you", "Please"),
clauses reordered, a qualifier inserted ("in detail", "for a beginner"), numbers and articles
changed. Each operation is rule-based and seeded, so the stream is the same on every run; no
model or network is needed. Several operations per paraphrase push ROUGE-L against the source
into (0.7, 0.8] while unigram overlap drops faster than it does for word drops or swaps.
"""

from __future__ import annotations

import random
import re

# Word -> alternatives; keys are lowercase, matched on whole words (case restored on output).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "describe": ("explain", "outline", "portray", "depict"),
    "explain": ("describe", "clarify", "tell me about"),
    "write": ("compose", "create", "draft", "produce"),
    "create": ("make", "generate", "design", "build"),
    "generate": ("create", "produce", "come up with"),
    "give": ("provide", "offer", "share", "suggest"),
    "list": ("name", "enumerate", "give"),
    "identify": ("find", "determine", "point out"),
    "find": ("identify", "locate", "work out"),
    "make": ("create", "prepare", "put together"),
    "suggest": ("recommend", "propose", "give"),
    "provide": ("give", "supply", "offer"),
    "summarize": ("sum up", "condense", "give a summary of"),
    "classify": ("categorize", "label", "sort"),
    "rewrite": ("rephrase", "reword", "restate"),
    "compare": ("contrast", "weigh"),
    "short": ("brief", "concise", "quick"),
    "brief": ("short", "concise"),
    "good": ("great", "useful", "nice"),
    "story": ("tale", "narrative"),
    "sentence": ("phrase", "line", "statement"),
    "text": ("passage", "paragraph", "document"),
    "article": ("piece", "essay", "post"),
    "following": ("given", "below", "next"),
    "tips": ("pieces of advice", "suggestions", "hints"),
    "ways": ("methods", "approaches", "strategies"),
    "examples": ("instances", "samples"),
    "important": ("key", "crucial", "essential"),
    "different": ("various", "distinct"),
    "typical": ("usual", "normal", "ordinary"),
    "day": ("daily routine", "day in the life"),
    "food": ("meals", "dishes"),
    "prepare": ("cook", "make"),
    "people": ("folks", "individuals"),
    "using": ("with", "by means of"),
    "about": ("on", "regarding", "concerning"),
    "main": ("primary", "chief", "central"),
    "help": ("assist", "aid"),
    "improve": ("enhance", "boost", "better"),
    "benefits": ("advantages", "upsides"),
    "best": ("top", "finest"),
    "new": ("fresh", "novel"),
    "list of": ("set of", "few"),
    "three": ("3", "a few"),
    "five": ("5", "several"),
    "two": ("2", "a couple of"),
}
PREFIXES = ("Can you ", "Please ", "I would like you to ", "Could you ", "Try to ", "Now, ")
QUALIFIERS = (
    "in detail",
    "for a beginner",
    "in your own words",
    "briefly",
    "step by step",
    "in simple terms",
    "with an example",
    "in a few sentences",
)
ARTICLES = {"a": "the", "an": "the", "the": "a", "this": "the", "your": "the", "my": "your"}
_WORD_RE = re.compile(r"[A-Za-z0-9']+|[^A-Za-z0-9'\s]+")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


def _match_case(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def substitute(text: str, rng: random.Random) -> str:
    """Replace one word that has synonyms by a random synonym (whole words, case kept)."""
    words = text.split(" ")
    slots = [i for i, w in enumerate(words) if w.strip(".,!?:;").lower() in SYNONYMS]
    if not slots:
        return text
    i = rng.choice(slots)
    core = words[i].strip(".,!?:;")
    tail = words[i][len(core) :] if words[i].startswith(core) else ""
    words[i] = _match_case(rng.choice(SYNONYMS[core.lower()]), core) + tail
    return " ".join(words)


def reframe(text: str, rng: random.Random) -> str:
    """Add a request frame ("Can you ...") or drop one that is there."""
    for prefix in PREFIXES:
        if text.startswith(prefix):
            rest = text[len(prefix) :]
            return rest[:1].upper() + rest[1:]
    prefix = rng.choice(PREFIXES)
    return prefix + text[:1].lower() + text[1:]


def qualify(text: str, rng: random.Random) -> str:
    """Insert a qualifier before the final punctuation of the first sentence."""
    first, *rest = _SENTENCE_RE.split(text, maxsplit=1)
    body = first.rstrip(".!?:")
    end = first[len(body) :]
    return " ".join([f"{body} {rng.choice(QUALIFIERS)}{end}", *rest])


def reorder(text: str, rng: random.Random) -> str:
    """Swap two sentences, or move a trailing ", ..." clause to the front."""
    sentences = _SENTENCE_RE.split(text)
    if len(sentences) >= 2:
        i = rng.randrange(len(sentences) - 1)
        sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
        return " ".join(sentences)
    head, sep, tail = text.rpartition(", ")
    if not sep:
        return text
    tail = tail.rstrip(".!?")
    return f"{tail[:1].upper()}{tail[1:]}, {head[:1].lower()}{head[1:]}."


def swap_article(text: str, rng: random.Random) -> str:
    """Change one article or determiner (a -> the, your -> the, ...)."""
    words = text.split(" ")
    slots = [i for i, w in enumerate(words) if w.lower() in ARTICLES]
    if not slots:
        return text
    i = rng.choice(slots)
    words[i] = _match_case(ARTICLES[words[i].lower()], words[i])
    return " ".join(words)


def drop_word(text: str, rng: random.Random) -> str:
    """Delete one short function word or adjective-like word (never the first)."""
    words = text.split(" ")
    slots = [i for i, w in enumerate(words[1:], 1) if len(w) <= 4 and w.isalpha()]
    if not slots:
        return text
    words.pop(rng.choice(slots))
    return " ".join(words)


# Substitution is listed three times: synonyms are the commonest change in real paraphrases.
OPERATIONS = (
    substitute,
    substitute,
    substitute,
    reframe,
    qualify,
    reorder,
    swap_article,
    drop_word,
)


def paraphrase(text: str, rng: random.Random, operations: int) -> str:
    """Apply ``operations`` random paraphrasing operations to ``text``.

    Args:
        text: An instruction.
        rng: Source of randomness (seeded by the caller).
        operations: How many operations to apply (each may leave the text unchanged when it
            finds nothing to act on).

    Returns:
        The paraphrased instruction.
    """
    for _ in range(operations):
        text = rng.choice(OPERATIONS)(text, rng)
    return text
