"""The refusal detector's English cue lexicon (rules v2): what declines, what only looks like it.

Each cue is one way a response declines or deflects, written as a regex over the casefolded
skeleton of the response's opening (see :mod:`filters.refusal`). The lexicon was written with
the labelled set ``tests/data/refusal_labelled.jsonl``; ``bench/refusal.py`` measures it.
"""

from __future__ import annotations

# First-person negation of ability or willingness: "I can't", "I cannot and will not", "I won't
# be able to", "I'm unable to", "I'm not in a position to".
_CAN_NOT = (
    r"\bi (?:can ?not|can't|won't|will not|must not|should not|shouldn't)"
    r"(?: and (?:will not|won't|can ?not|can't))?(?: be able to)?"
)
# Statements of inability that are rarely idioms; they decline whatever verb follows.
_UNABLE = (
    r"\bi(?:'m| am) (?:unable to|not able to|not in a position to)"
    r"|\bi (?:won't|will not) be able to"
)
_NEGATION = rf"{_CAN_NOT}|{_UNABLE}|\bi(?:'m| am) not (?:going|allowed|permitted) to"
# The progressive form declines too: "I won't be helping with this", "I'm not writing that".
_PROGRESSIVE = r"\bi (?:won't|will not) be|\bi(?:'m| am) not"
_ADVERB = r"(?: (?:\w+ly|really|even|just|simply|in good conscience))?"
# Verbs whose object is the user's request ("help with that", "write that essay").
_ASSIST_VERB = (
    r"(?:help|assist|aid|provide|write|create|generate|produce|comply|fulfil+|complete|answer"
    r"|respond|reply|share|give(?! up| in)|offer|engage|participate|continue|support|translate"
    r"|rewrite|draw|disclose|reveal|speculate|diagnose|verify|predict|discuss|condone|encourage"
    r"|endorse|promote|facilitate|pretend to be|role-?play|do (?:that|this|it|so|what)"
    r"|recommend (?:any |a )?(?:specific|particular|individual)|take part|be part of"
    r"|be involved|go along with|play along)\b"
)
_ASSIST_GERUND = (
    r"(?:helping|assisting|providing|writing|creating|generating|producing|complying|answering"
    r"|sharing|giving|engaging|participating|continuing|translating|doing that|doing this)\b"
)
# Search and perception verbs state a finding when their object is "any"/"anything"/"no":
# "I'm unable to find any errors", "I can't see anything wrong" answer the question.
_FINDING = (
    r"(?:find|spot|see|detect|locate|notice|identify|think of|come up with|reproduce)"
    r" (?:any|anything|no|nothing|a single)\b"
)
# Perception and access verbs deflect with a medium as object ("I can't see images").
_MEDIA_VERB = (
    r"(?:see|view|open|access|browse|watch|hear|listen to|visit|click|download|read)"
    r"(?: the| your| this| that| any| external)?"
    r" (?:images?|pictures?|photos?|videos?|audio|files?|attachments?|links?|urls?|websites?"
    r"|web ?pages?|pages?|documents?|screens?|internet|web|real-time|computer|devices?|accounts?"
    r"|emails?)\b"
)
_AI = (
    r"(?:ai|artificial intelligence|(?:(?:large|ai|machine[- ]learning|neural|generative) )?"
    r"(?:language )?model|(?:ai |virtual |digital )?assistant|chatbot|computer program|machine)"
)
_NO_CAPACITY = (
    r"(?:opinions?|feelings?|emotions?|preferences?|beliefs?|views?|experiences?|a body|eyes"
    r"|ears|senses|hands|physical|consciousness|access to|(?:the )?ability|capability|capacity"
    r"|a favou?rite|information|data|knowledge)"
)
_LACK = r"\bi (?:don't|do not) (?:have|possess|hold)|\bi (?:have no|lack)"
# (cue name, pattern): each names one way a response declines; the name goes into the score.
CUES: tuple[tuple[str, str], ...] = (
    ("negated_assist_verb", rf"(?:{_NEGATION}){_ADVERB} {_ASSIST_VERB}"),
    ("negated_assist_verb", rf"(?:{_PROGRESSIVE}){_ADVERB} {_ASSIST_GERUND}"),
    ("negated_media_access", rf"(?:{_NEGATION}){_ADVERB} {_MEDIA_VERB}"),
    ("inability", rf"(?:{_UNABLE}){_ADVERB} (?!{_FINDING})\w+"),
    (
        "decline",
        r"\bi(?:'m| am)?(?: going to| must| will| 'll|'ll| need to| would| 'd|'d)?(?: have to)?"
        r"(?: respectfully| politely| regretfully)? (?:declin(?:e|ing)|refus(?:e|ing)|pass on)\b",
    ),
    (
        "discomfort",
        r"\bi (?:don't|do not) feel comfortable\b|\bi(?:'m| am) not (?:comfortable|willing)\b"
        r"|\bi(?:'d| would) (?:rather|prefer) not\b",
    ),
    ("improper_for_me", r"\b(?:inappropriate|unethical|irresponsible|not appropriate) for me to\b"),
    (
        "not_something_i_do",
        r"(?:\bnot|n't) something (?:that )?i\b[^.;!?]{0,20}?"
        r"\b(?:can|could|will|'ll|would|'d|able|willing|comfortable)\b",
    ),
    (
        "against_policy",
        r"\b(?:goes against|against|violates?) (?:my|the|our)(?: [\w']+){0,2}"
        r" (?:guidelines|polic(?:y|ies)|programming|principles|rules|terms)\b",
    ),
    (
        "ai_identity",
        rf"\b(?:as|being) an? {_AI}\b.*\bi(?:'m| am)?"
        r" (?:don't|do not|can't|cannot|not|unable|lack|have no)\b"
        rf"|\bi(?:'m| am) (?:just |only |merely |simply )?an? {_AI}\b",
    ),
    (
        "no_capacity",
        rf"(?:{_LACK})(?: any| the| personal| real-time| current| live| direct)* {_NO_CAPACITY}"
        r"|\bi(?:'m| am) (?:not capable|incapable) of\b"
        r"|\bi(?:'m| am) not (?:programmed|designed) to\b"
        # "I don't have X, so I can't Y": a missing capacity offered as the reason.
        rf"|(?:{_LACK})\b[^.;!?]{{0,60}}?\bso i (?:can't|cannot|can not|am unable|'m unable)",
    ),
)
# Idioms built like a refusal but meaning the opposite; blanked before the cues are matched.
IDIOMS: tuple[str, ...] = (
    r"\b(?:can ?not|can't|couldn't|could not) help (?:but|it|myself|feeling|thinking|wondering"
    r"|noticing|laughing|smiling|being|loving|admiring)\b",
    # "I can't stress this enough", "can't thank you enough", "cannot recommend it enough".
    r"\b(?:can ?not|can't|won't|will not)(?: \w+){1,4}? enough\b",
)
