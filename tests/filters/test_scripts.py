"""Text in any script: the ROUGE-L tokens, dedup and decontamination on them, and the
heuristics' language settings (issue 15, section 1)."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from filters.decontamination import Decontaminator, EvalItem
from filters.errors import SignatureError
from filters.heuristics import (
    RULE_VERSIONS,
    START_VERSIONS,
    WORD_COUNT_VERSIONS,
    HeuristicConfig,
    check_instruction,
)
from filters.near_duplicates import NearDuplicateIndex
from filters.normalization import normalize_text
from filters.rouge import TOKENS_VERSION, has_unspaced_script, rouge_l_text, rouge_tokenize
from filters.signatures import SHINGLE_SCHEME
from tests.filters.perturb import perturb

# The issue's inputs, verbatim.
ZH = "把这段话改写得更礼貌一些，但保持原意。"
ZH_FRAME = (
    "Translate into English: 今天下午我要去图书馆还书。",
    "Translate into English: 这家餐厅的汤太咸了。",
)

# Per language: an instruction, the same with one word (or two characters) changed, and two
# unrelated sentences behind the same English frame.
LANGUAGES = {
    "zh": (ZH, "把这段话改写得更正式一些，但保持原意。", *ZH_FRAME),
    "ja": (
        "この文章をもっと丁寧な言葉で書き直してください。",
        "この文章をもっと丁寧な表現で書き直してください。",
        "Translate into English: 明日は雨が降るそうです。",
        "Translate into English: 駅までの道を教えてください。",
    ),
    "ko": (
        "이 문단을 의미는 그대로 두고 더 공손한 말투로 다시 써 주세요.",
        "이 문단을 의미는 그대로 두고 더 정중한 말투로 다시 써 주세요.",
        "Translate into English: 오늘 오후에 도서관에 책을 반납하러 가요.",
        "Translate into English: 이 식당의 국은 너무 짜요.",
    ),
    "th": (
        "ช่วยเขียนย่อหน้านี้ใหม่ให้สุภาพมากขึ้นโดยคงความหมายเดิม",
        "ช่วยเขียนย่อหน้านี้ใหม่ให้เป็นทางการมากขึ้นโดยคงความหมายเดิม",
        "Translate into English: พรุ่งนี้ฝนจะตกหนักทั้งวัน",
        "Translate into English: ร้านอาหารนี้ซุปเค็มเกินไป",
    ),
    "ru": (
        "Перепишите этот абзац более вежливо, сохранив его исходный смысл.",
        "Перепишите этот абзац более формально, сохранив его исходный смысл.",
        "Translate into English: Сегодня днём я иду в библиотеку.",
        "Translate into English: Суп в этом ресторане слишком солёный.",
    ),
    "ar": (
        "أعد كتابة هذه الفقرة بأسلوب أكثر تهذيبا مع الحفاظ على معناها الأصلي.",
        "أعد كتابة هذه الفقرة بأسلوب أكثر رسمية مع الحفاظ على معناها الأصلي.",
        "Translate into English: سأذهب إلى المكتبة بعد الظهر.",
        "Translate into English: الحساء في هذا المطعم مالح جدا.",
    ),
    "hi": (
        "इस अनुच्छेद को उसका अर्थ बदले बिना अधिक विनम्र ढंग से फिर से लिखें।",
        "इस अनुच्छेद को उसका अर्थ बदले बिना अधिक औपचारिक ढंग से फिर से लिखें।",
        "Translate into English: आज दोपहर मैं पुस्तकालय जाऊँगा।",
        "Translate into English: इस रेस्तरां का सूप बहुत नमकीन है।",
    ),
    "el": (
        "Ξαναγράψτε αυτή την παράγραφο πιο ευγενικά, κρατώντας το αρχικό νόημά της.",
        "Ξαναγράψτε αυτή την παράγραφο πιο επίσημα, κρατώντας το αρχικό νόημά της.",
        "Translate into English: Σήμερα το απόγευμα πάω στη βιβλιοθήκη.",
        "Translate into English: Η σούπα σε αυτό το εστιατόριο είναι πολύ αλμυρή.",
    ),
    "mixed": (
        "用Python写一个函数，返回列表中最大的数。",
        "用Python写一个函数，返回列表中最小的数。",
        "Summarize in English: 今天下午我要去图书馆还书。",
        "Summarize in English: Сегодня днём я иду в библиотеку.",
    ),
}
LANGS = pytest.mark.parametrize("lang", list(LANGUAGES))


def test_issue_same_chinese_instruction_twice_is_a_duplicate_at_1() -> None:
    verdicts = NearDuplicateIndex().check_batch([("1", ZH), ("2", ZH)])
    assert verdicts[0].accepted
    assert not verdicts[1].accepted and verdicts[1].rule == "near_duplicate"
    assert (verdicts[1].nearest_id, verdicts[1].similarity) == ("1", 1.0)


def test_issue_translate_frames_sharing_only_english_are_both_accepted() -> None:
    verdicts = NearDuplicateIndex().check_batch([("1", ZH_FRAME[0]), ("2", ZH_FRAME[1])])
    assert [v.accepted for v in verdicts] == [True, True]
    assert verdicts[1].similarity is not None and verdicts[1].similarity < 0.3


def test_issue_cases_through_decontamination() -> None:
    decon = Decontaminator([EvalItem("e1", ZH, [], []), EvalItem("e2", ZH_FRAME[0], [], [])])
    verdict = decon.check_task(ZH, [])
    assert not verdict.accepted and verdict.rule == "decontamination"
    assert (verdict.nearest_id, verdict.similarity) == ("e1", 1.0)
    assert decon.check_task(ZH_FRAME[1], []).accepted


@LANGS
def test_duplicates_and_edits_are_rejected_in_every_script(lang: str) -> None:
    text, edited, _, _ = LANGUAGES[lang]
    index = NearDuplicateIndex()
    batch = index.check_batch([("a", text), ("b", text)])
    assert batch[0].accepted and (batch[1].nearest_id, batch[1].similarity) == ("a", 1.0)
    # Against the pool the index must propose the edited copy's original.
    verdict = index.check_batch([("c", edited)])[0]
    assert not verdict.accepted and verdict.nearest_id == "a"
    assert verdict.similarity == rouge_l_text(edited, text) and 0.7 < verdict.similarity < 1.0


@LANGS
def test_shared_english_frame_is_not_a_duplicate_in_any_script(lang: str) -> None:
    _, _, first, second = LANGUAGES[lang]
    index = NearDuplicateIndex()
    assert all(v.accepted for v in index.check_batch([("1", first), ("2", second)]))
    assert index.check_batch([("3", second)])[0].nearest_id == "2"  # the pool sees them


@LANGS
def test_decontamination_sees_every_script(lang: str) -> None:
    text, edited, first, second = LANGUAGES[lang]
    decon = Decontaminator(
        [EvalItem("e1", edited, [], []), EvalItem("e2", first, [second], ["-"])],
        eval_set_name="multi",
    )
    verdict = decon.check_task(text, [])
    assert not verdict.accepted and verdict.nearest_id == "e1"
    assert verdict.similarity == rouge_l_text(text, edited)
    leaked = decon.check_task("Answer the question below briefly.", [(second, "-")])
    assert not leaked.accepted and "input" in leaked.reason and leaked.nearest_id == "e2"
    assert decon.check_task(second, []).accepted


def test_index_finds_every_pair_the_exact_rule_rejects_in_any_script() -> None:
    pool = {f"{lang}{i}": t for lang, texts in LANGUAGES.items() for i, t in enumerate(texts)}
    pool |= {f"start-{lang}": text for lang, (_, text) in STARTS.items()}
    index = NearDuplicateIndex()
    index.add_many((k, t, None) for k, t in pool.items())
    rng = random.Random(15)
    rejected = 0
    for text in pool.values():
        for _ in range(4):
            # Token-level edits; spaces between Chinese characters do not change the tokens.
            candidate = perturb(" ".join(rouge_tokenize(text)), rng, rng.randint(1, 6))
            best = max(rouge_l_text(candidate, t) for t in pool.values())
            if best > 0.7:
                rejected += 1
                assert index.nearest(candidate)[1] == best, candidate
    assert rejected > 100  # the check is not vacuous


@pytest.mark.parametrize(
    "text,tokens",
    [
        (ZH, list("把这段话改写得更礼貌一些但保持原意")),
        ("日本語のテキストとカタカナ", list("日本語のテキストとカタカナ")),
        ("ｶﾀｶﾅ ＡＢＣ１２３", ["カ", "タ", "カ", "ナ", "abc123"]),  # NFKC: half/fullwidth
        ("한국어 문장을 다시 써 주세요.", ["한국어", "문장을", "다시", "써", "주세요"]),
        ("น้ำใจ", ["น้ํ", "า", "ใ", "จ"]),  # tone mark stays with its consonant
        # Vowel signs Unicode leaves out of grapheme clusters stay with their character.
        ("မင်္ဂလာပါ", ["မ", "င်္ဂ", "လာ", "ပါ"]),  # Myanmar U+102C
        ("ᨠᩣᨶ", ["ᨠᩣ", "ᨶ"]),  # Tai Tham U+1A63
        ("इस वाक्य को लिखें।", ["इस", "वाक्य", "को", "लिखें"]),  # vowel signs, virama kept
        ("كَتَبَ الوَلَدُ", ["كَتَبَ", "الوَلَدُ"]),  # harakat kept
        ("שָׁלוֹם עוֹלָם", ["שָׁלוֹם", "עוֹלָם"]),  # niqqud kept
        ("ΟΔΟΣ Straße İ", ["οδοσ", "strasse", "i̇"]),  # casefolded
        ("Привет, мир! 2024", ["привет", "мир", "2024"]),
        ("用Python写2023年", ["用", "python", "写", "2023", "年"]),
        ("café🙂naïve", ["café", "naïve"]),  # emoji separate like punctuation
        ("im\u200bage ج\u200cم", ["image", "جم"]),  # invisible characters do not split
        ("。、！？「」…🙂👍🏽 ¿¡", []),  # only punctuation and symbols: no token
        ("snake_case", ["snake", "case"]),
    ],
)
def test_tokens_in_every_script(text: str, tokens: list[str]) -> None:
    assert rouge_tokenize(text) == tokens


@pytest.mark.parametrize(
    "one,other",
    [
        # Version 2 dropped these signs, so each pair had the same tokens (ROUGE-L 1.0).
        ("ကား ဝယ်ပါ", "က ဝယ်ပ"),  # Myanmar: U+102C, U+1038, U+102B
        ("မြို့သို့ သွားပါ", "မြို့သို့ သွားပ"),  # Myanmar, signs after a medial
        ("ᨠᩣᨶ ᨾᩣ", "ᨠᩤᨶ ᨾᩤ"),  # Tai Tham: U+1A63 / U+1A64
    ],
)
def test_texts_differing_only_in_a_vowel_sign_are_not_the_same(one: str, other: str) -> None:
    assert rouge_tokenize(one) != rouge_tokenize(other)
    assert rouge_l_text(one, other) < 1.0
    index = NearDuplicateIndex()
    index.add("a", one)
    assert index.nearest(other)[1] < 1.0


def test_shingles_follow_the_tokens_version() -> None:
    assert SHINGLE_SCHEME == TOKENS_VERSION  # the shingles are the tokens' unigrams


def _with_shingle_scheme(signature: bytes, scheme: int) -> bytes:
    at = len(signature) - 4 * 256 - 1  # the header's last byte, before 256 uint32 values
    return signature[:at] + bytes([scheme]) + signature[at + 1 :]


def test_signatures_from_older_shingles_do_not_matter_to_matching() -> None:
    # Matching tokenizes the text itself (exact candidates), so a signature stored before the
    # tokens learnt other scripts is accepted and ignored; one from a future scheme is refused.
    fresh = NearDuplicateIndex().signatures([ZH, ZH_FRAME[0]])
    old = [_with_shingle_scheme(s, SHINGLE_SCHEME - 1) for s in fresh]
    index = NearDuplicateIndex()
    index.add_many([("a", ZH, old[0]), ("b", ZH_FRAME[0], old[1])])
    assert index.nearest(LANGUAGES["zh"][1]) == ("a", rouge_l_text(ZH, LANGUAGES["zh"][1]))
    with pytest.raises(SignatureError, match="shingles"):
        index.add("c", ZH, _with_shingle_scheme(fresh[0], SHINGLE_SCHEME + 1))


STARTS = {
    "zh": (("Han",), ZH),
    "ja": (("Hiragana", "Katakana", "Han"), "テキストを短く要約してください。"),
    "ko": (("Hangul",), "이 문장을 더 공손하게 다시 써 주세요."),
    "th": (("Thai",), "ช่วยเขียนประโยคนี้ใหม่ให้สุภาพขึ้น"),
    "ru": (("Cyrillic",), "Перепишите этот абзац более вежливо."),
    "ar": (("Arabic",), "أعد كتابة هذه الفقرة بأسلوب أكثر تهذيبا."),
    "hi": (("Devanagari",), "इस अनुच्छेद को अधिक विनम्र ढंग से लिखें।"),
    "el": (("Greek",), "Ξαναγράψτε αυτή την παράγραφο πιο ευγενικά."),
    "fr": (("Latin",), "Écrivez un poème sur la mer, s'il vous plaît."),
}


@pytest.mark.parametrize("lang", list(STARTS))
def test_start_rule_is_per_language(lang: str) -> None:
    scripts, text = STARTS[lang]
    paper = check_instruction(text)
    assert (paper.rule, paper.rule_version) == ("starts_with_non_ascii", START_VERSIONS[False])
    assert check_instruction(text, HeuristicConfig(start_scripts=scripts)).accepted
    other = "Cyrillic" if "Cyrillic" not in scripts else "Greek"
    verdict = check_instruction(text, HeuristicConfig(start_scripts=(other,)))
    assert (verdict.rule, verdict.rule_version) == ("starts_with_non_ascii", START_VERSIONS[True])
    assert other in verdict.reason


@pytest.mark.parametrize(
    "text", ["「写」一首关于大海的诗", "¿Puedes resumir este texto?", "🙂 写一首诗吧好吗"]
)
def test_listed_scripts_still_reject_a_symbol_start(text: str) -> None:
    config = HeuristicConfig(start_scripts=("Han", "Latin"))
    assert check_instruction(text, config).rule == "starts_with_non_ascii"


def test_unknown_script_and_word_count_are_config_errors() -> None:
    # pydantic reports the library's ConfigError as a ValidationError; both are ValueErrors.
    with pytest.raises(ValueError, match="Klingon"):
        HeuristicConfig(start_scripts=("Klingon",))
    with pytest.raises(ValueError, match="word_count"):
        HeuristicConfig(word_count="letters")  # type: ignore[arg-type]
    assert HeuristicConfig(start_scripts=("Han",)) != HeuristicConfig()


@pytest.mark.parametrize(
    "text,words",
    [
        (ZH, 17),  # characters of an unspaced script count one by one
        ("写诗", 2),
        ("テキストを要約して", 9),
        ("ช่วยเขียนประโยคนี้", 14),  # clusters: ช่ ว ย เ ขี ย น ป ร ะ โ ย ค นี้
        ("Translate into English: 这家餐厅的汤太咸了。", 12),
        ("이 문장을 다시 써 주세요.", 5),  # Hangul is written with spaces: words
        ("Перепишите этот абзац вежливо.", 4),
    ],
)
def test_word_count_is_per_script_and_versioned(text: str, words: int) -> None:
    only = frozenset({"instruction_length"})
    at_most = HeuristicConfig(enabled_rules=only, min_words=0, max_words=words)
    below = HeuristicConfig(enabled_rules=only, min_words=0, max_words=words - 1)
    assert check_instruction(text, at_most).accepted
    verdict = check_instruction(text, below)
    assert verdict.rule == "instruction_length" and f"{words} words" in verdict.reason
    assert (
        verdict.rule_version == WORD_COUNT_VERSIONS["script_aware"] == RULE_VERSIONS[verdict.rule]
    )


def test_whitespace_word_count_is_the_papers_and_says_so() -> None:
    paper = HeuristicConfig(word_count="whitespace", start_scripts=("Han",))
    verdict = check_instruction(ZH, paper)
    assert verdict.rule == "instruction_length" and "1 words" in verdict.reason
    assert verdict.rule_version == WORD_COUNT_VERSIONS["whitespace"]
    assert check_instruction(ZH, HeuristicConfig(start_scripts=("Han",))).accepted


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=("Z", "C")), min_size=1), max_size=12))
def test_both_word_counts_agree_without_unspaced_scripts(chunks: list[str]) -> None:
    text = "Write " + " ".join(chunks)
    assume(not has_unspaced_script(normalize_text(text)))
    # max_words=1: every text of two words or more is rejected with its count in the reason.
    reasons = {
        mode: check_instruction(
            text,
            HeuristicConfig(
                enabled_rules=frozenset({"instruction_length"}),
                min_words=0,
                max_words=1,
                word_count=mode,
            ),
        ).reason
        for mode in ("script_aware", "whitespace")
    }
    assert reasons["script_aware"] == reasons["whitespace"]
