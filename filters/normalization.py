"""Text normalisation that keeps adversarial spellings from slipping past the rules.

Zero-width and other invisible format characters are removed, compatibility forms (fullwidth
letters, ligatures) are folded by NFKC, and common Cyrillic/Greek look-alikes of Latin
letters are mapped to Latin, so that "іmаge" (with Cyrillic letters) or "im\u200bage" still
reads as "image" to a keyword rule.
"""

from __future__ import annotations

import re
import unicodedata

# Cyrillic and Greek letters that render like Latin ones (from Unicode's confusables list,
# limited to the lowercase/uppercase letters that matter for English keywords).
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
        "ԛ": "q", "ԝ": "w", "ɡ": "g", "ӏ": "l",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
        "С": "C", "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
        "α": "a", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "ν": "v", "ι": "i", "κ": "k",
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
        "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    }
)  # fmt: skip
_WHITESPACE_RE = re.compile(r"\s+")


def strip_invisible(text: str) -> str:
    """Remove format characters (Unicode category Cf: zero-width spaces, joiners, BOM...).

    Args:
        text: Any text.

    Returns:
        The text without invisible format characters.
    """
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalize_text(text: str) -> str:
    """NFKC-fold, drop invisible characters and collapse whitespace; keeps non-Latin script.

    Args:
        text: Any text.

    Returns:
        The normalised text, stripped.
    """
    text = unicodedata.normalize("NFKC", strip_invisible(text))
    return _WHITESPACE_RE.sub(" ", text).strip()


def skeleton(text: str) -> str:
    """:func:`normalize_text`, then Latin look-alikes mapped to Latin and casefolded.

    Use for matching (keywords, phrases), never for display: it rewrites non-Latin letters.

    Args:
        text: Any text.

    Returns:
        A casefolded matching key for the text.
    """
    return normalize_text(text).translate(_CONFUSABLES).casefold()
