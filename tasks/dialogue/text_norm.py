"""Text normalization for comparing a script with what ASR heard.

"It's 40 years" and "it is forty years" give the same tokens, whichever side wrote digits.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

# fmt: off
_TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u2010": "-", "\u2011": "-"}
)
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:st|nd|rd|th|%)?|[^\W\d_]+(?:'[^\W\d_]+)*")
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)(st|nd|rd|th|%)?")
_IRREGULAR = {
    "won't": "will not", "can't": "can not", "cannot": "can not", "shan't": "shall not",
    "ain't": "is not", "let's": "let us", "y'all": "you all",
}
_SUFFIXES = (
    ("n't", " not"), ("'re", " are"), ("'ll", " will"), ("'ve", " have"), ("'m", " am"),
    ("'d", " would"),
)
# "'s" reads as "is" after these; after anything else it is a possessive and is dropped.
_IS_AFTER = frozenset({
    "it", "he", "she", "that", "what", "where", "who", "there", "here", "how", "when", "why",
    "this", "everything", "nothing", "something", "everyone", "everybody", "somebody", "nobody",
})
# Function words carry no scene content: they never count toward narration overlap.
STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "if", "so", "of", "to", "in", "on", "at", "by", "for",
    "with", "from", "into", "onto", "over", "under", "up", "down", "out", "off", "as", "is",
    "are", "was", "were", "be", "been", "am", "i", "you", "he", "she", "it", "we", "they", "me",
    "him", "her", "us", "them", "my", "your", "his", "its", "our", "their", "this", "that",
    "these", "those", "there", "here", "what", "who", "how", "when", "where", "why", "not", "no",
    "do", "does", "did", "have", "has", "had", "will", "would", "can", "could", "shall",
    "should", "may", "might", "must", "just", "very", "all",
})
# fmt: on


def normalize_text(text: str) -> list[str]:
    """Lower-case words without punctuation, contractions expanded, numbers spelled out.

    "It's 40 years" and "it is forty years" give the same tokens, whichever side
    (script or ASR) wrote digits.
    """
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    tokens: list[str] = []
    for raw in _TOKEN.findall(text):
        tokens += (_number_words(raw) if raw[0].isdigit() else _expand(raw)).split()
    return tokens


def _number_words(raw: str) -> str:
    match = _NUMBER.fullmatch(raw)
    if match is None:
        return raw
    value, suffix = match.groups()
    if "." in value:
        words = num2words(float(value))
    elif suffix in ("st", "nd", "rd", "th"):
        words = num2words(int(value), to="ordinal")
    elif len(value) == 4 and 1100 <= int(value) <= 2099:
        words = num2words(int(value), to="year")  # "1999" is said "nineteen ninety-nine"
    else:
        words = num2words(int(value))
    if suffix == "%":
        words += " percent"
    return str(words).replace("-", " ").replace(",", " ")


def _expand(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix):
            return word[: -len(suffix)] + replacement
    if word.endswith("'s"):
        stem = word[:-2]
        return f"{stem} is" if stem in _IS_AFTER else stem
    return word.replace("'", "")
