"""Text normalisation shared by FAQ search and the severity classifier.

Pipeline for a client message: ``fix_layout``/``fix_translit`` (optional repair
of text typed in the wrong keyboard layout or in Latin transliteration) ->
``normalize`` -> ``tokens`` -> ``Synonyms.apply`` (slang, abbreviations and
English words to one canonical word) -> drop ``STOPWORDS`` -> ``stem``.
``stems(text)`` runs the whole pipeline except the repair step.

Pure Python: no imports from the bot, handlers or storage.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import Stemmer
import yaml

DATA_DIR = Path(__file__).with_name("data")
STOPWORDS_FILE = DATA_DIR / "stopwords.txt"
SYNONYMS_FILE = DATA_DIR / "synonyms.yaml"

_NON_WORD = re.compile(r"[^0-9a-zа-я]+")
_HAS_CYRILLIC = re.compile(r"[а-я]")
_HAS_LATIN = re.compile(r"[a-z]")
_LATIN_WORD = re.compile(r"[a-z]+")


def normalize(text: str) -> str:
    """Casefold, write ё as е, turn everything but latin/cyrillic letters and
    digits into spaces and collapse whitespace: ``"Wi-Fi  не работает!"`` ->
    ``"wi fi не работает"``."""
    folded = text.casefold().replace("ё", "е")
    return " ".join(_NON_WORD.sub(" ", folded).split())


def tokens(text: str) -> list[str]:
    """Normalized words of ``text``, stop words included."""
    return normalize(text).split()


_RUSSIAN = Stemmer.Stemmer("russian")
_ENGLISH = Stemmer.Stemmer("english")


# No real word is longer: longer ones are neither stemmed nor kept in the stem cache, split
# or fuzzed (kb/index.py), so a 4,000-letter "word" costs no more than a short one.
MAX_WORD_LENGTH = 40


def stem(token: str) -> str:
    """Stem one normalized token: Russian stemmer for words with cyrillic
    letters, English for latin ones; digits-only tokens ("651") stay as is; a token longer
    than MAX_WORD_LENGTH as is."""
    if len(token) > MAX_WORD_LENGTH:
        return token
    return _stem(token)


@functools.lru_cache(maxsize=65536)
def _stem(token: str) -> str:
    if _HAS_CYRILLIC.search(token):
        return str(_RUSSIAN.stemWord(token))
    if _HAS_LATIN.search(token):
        return str(_ENGLISH.stemWord(token))
    return token


def _read_stopwords(path: Path) -> frozenset[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(normalize(line) for line in lines if line.strip() and not line.startswith("#"))


STOPWORDS: frozenset[str] = _read_stopwords(STOPWORDS_FILE)
"""Russian and English function words, greetings and politeness (normalized)."""


class Synonyms:
    """Maps slang, abbreviations, typo-prone spellings and English words to one
    canonical word ("инет" -> "интернет", "1ска" -> "1с", "password" -> "пароль").

    A variant matches a word exactly or by stem (so one inflected form covers the
    others); variants of several words match as phrases, longest first. A stem
    shared by variants of different canonical words is ambiguous and matches
    only exactly.
    """

    def __init__(self, groups: Mapping[str, Iterable[str]]) -> None:
        self._exact: dict[str, tuple[str, ...]] = {}
        stemmed: dict[tuple[str, ...], tuple[str, ...] | None] = {}
        for canonical, variants in groups.items():
            replacement = tuple(tokens(canonical))
            for variant in (canonical, *variants):
                words = tuple(tokens(variant))
                if not words:
                    continue
                if len(words) == 1:
                    known = self._exact.setdefault(words[0], replacement)
                    if known != replacement:
                        raise ValueError(
                            f"synonym {variant!r} is given for both {' '.join(known)!r} "
                            f"and {canonical!r}"
                        )
                key = tuple(stem(word) for word in words)
                # None marks a stem key claimed by two canonical words.
                if stemmed.setdefault(key, replacement) != replacement:
                    stemmed[key] = None
        self._by_stems = {key: value for key, value in stemmed.items() if value is not None}
        self._longest = max((len(key) for key in self._by_stems), default=1)

    @classmethod
    def load(cls, *extra_files: Path, bundled: bool = True) -> Synonyms:
        """Read ``kb/data/synonyms.yaml`` (unless ``bundled=False``) and then each
        extra file; every file is a YAML mapping ``canonical: [variant, ...]``."""
        groups: dict[str, list[str]] = {}
        for path in (SYNONYMS_FILE, *extra_files) if bundled else extra_files:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a mapping 'canonical: [variants]'")
            for canonical, variants in data.items():
                if not isinstance(variants, list):
                    raise ValueError(f"{path}: {canonical!r}: expected a list of variants")
                groups.setdefault(str(canonical), []).extend(str(v) for v in variants)
        return cls(groups)

    def apply(self, words: Sequence[str]) -> list[str]:
        """Replace variants in a list of normalized words by their canonical
        words; other words pass through unchanged."""
        result: list[str] = []
        i = 0
        while i < len(words):
            for length in range(min(self._longest, len(words) - i), 0, -1):
                replacement = self._exact.get(words[i]) if length == 1 else None
                if replacement is None:
                    key = tuple(stem(word) for word in words[i : i + length])
                    replacement = self._by_stems.get(key)
                if replacement is not None:
                    result.extend(replacement)
                    i += length
                    break
            else:
                result.append(words[i])
                i += 1
        return result

    def vocabulary(self) -> set[str]:
        """Every variant and canonical word, and their stems."""
        words = set(self._exact)
        for key, replacement in self._by_stems.items():
            words.update(key)
            words.update(replacement)
        return words | {stem(word) for word in words}


@functools.cache
def default_synonyms() -> Synonyms:
    """The bundled synonym list, loaded once."""
    return Synonyms.load()


def content_words(text: str, synonyms: Synonyms | None = None) -> list[str]:
    """Normalized words of ``text`` with synonyms applied and stop words removed."""
    canonical = (synonyms or default_synonyms()).apply(tokens(text))
    return [word for word in canonical if word not in STOPWORDS]


def stems(text: str, synonyms: Synonyms | None = None) -> list[str]:
    """Stems of the content words of ``text`` (see ``content_words``)."""
    return [stem(word) for word in content_words(text, synonyms)]


# --- Repairing text typed in the wrong keyboard layout or in transliteration.

_QWERTY = "`qwertyuiop[]asdfghjkl;'zxcvbnm,./~QWERTYUIOP{}ASDFGHJKL:\"ZXCVBNM<>?"
_JCUKEN = "ёйцукенгшщзхъфывапролджэячсмитьбю.ЁЙЦУКЕНГШЩЗХЪФЫВАПРОЛДЖЭЯЧСМИТЬБЮ,"
_TO_RUSSIAN_LAYOUT = str.maketrans(_QWERTY, _JCUKEN)
_TO_ENGLISH_LAYOUT = str.maketrans(_JCUKEN, _QWERTY)
# Keys that are punctuation in one layout and letters in the other: at the end
# of a word they may be a real comma/full stop, so both readings are tried.
_AMBIGUOUS_TAIL = set(",.;'[]<>:\"{}/?бюжэхъ")

# Share of known words the repaired text needs, and its lead over the original.
_MIN_KNOWN_SHARE = 0.5
_MIN_KNOWN_GAIN = 0.25


@functools.cache
def _default_vocabulary() -> frozenset[str]:
    return frozenset(STOPWORDS | default_synonyms().vocabulary())


def _known_share(text: str, vocabulary: Collection[str]) -> float:
    """Share of words in ``text`` that are stop words or in the vocabulary
    (as a word or by stem); words without letters are not counted."""
    words = [word for word in tokens(text) if not word.isdigit()]
    if not words:
        return 0.0

    def known(word: str) -> bool:
        return (
            word in STOPWORDS
            or word in vocabulary
            or stem(word) in vocabulary
            or word in _default_vocabulary()
            or stem(word) in _default_vocabulary()
        )

    return sum(map(known, words)) / len(words)


def _more_plausible(original: str, candidate: str, vocabulary: Collection[str]) -> bool:
    candidate_share = _known_share(candidate, vocabulary)
    return (
        candidate_share >= _MIN_KNOWN_SHARE
        and candidate_share >= _known_share(original, vocabulary) + _MIN_KNOWN_GAIN
    )


def _switch_layout(text: str, table: dict[int, int], vocabulary: Collection[str]) -> str:
    converted: list[str] = []
    for chunk in text.split():
        whole = chunk.translate(table)
        body = chunk.rstrip("".join(_AMBIGUOUS_TAIL))
        if body != chunk and body and _known_share(whole, vocabulary) < 1:
            # The tail was meant as punctuation: drop it.
            converted.append(body.translate(table))
        else:
            converted.append(whole)
    return " ".join(converted)


def fix_layout(text: str, vocabulary: Collection[str] = ()) -> str | None:
    """Recover text typed in the wrong keyboard layout (ЙЦУКЕН <-> QWERTY):
    ``"yt hf,jnftn"`` -> ``"не работает"``, ``"ьщтшещк"`` -> ``"monitor"``.

    The direction follows the majority script. The converted text is returned
    only when it is clearly more plausible: at least half of its words are known
    (stop words, the bundled synonym list, or ``vocabulary`` - words or stems,
    e.g. a search index's terms) and that share beats the original's by 0.25.
    Otherwise returns None.
    """
    latin = sum("a" <= ch <= "z" for ch in text.casefold())
    cyrillic = sum("а" <= ch <= "я" or ch == "ё" for ch in text.casefold())
    if latin == cyrillic:
        return None
    table = _TO_RUSSIAN_LAYOUT if latin > cyrillic else _TO_ENGLISH_LAYOUT
    candidate = _switch_layout(text, table, vocabulary)
    return candidate if _more_plausible(text, candidate, vocabulary) else None


# Longest Latin spellings first, so "shch" wins over "sh" + "ch".
_TRANSLIT = sorted(
    {
        "shch": "щ", "sch": "щ", "zh": "ж", "kh": "х", "ch": "ч", "sh": "ш", "ts": "ц",
        "yu": "ю", "ju": "ю", "ya": "я", "ja": "я", "yo": "е", "jo": "е", "ye": "е",
        "a": "а", "b": "б", "v": "в", "g": "г", "d": "д", "e": "е", "z": "з", "i": "и",
        "y": "ы", "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "r": "р",
        "s": "с", "t": "т", "u": "у", "f": "ф", "h": "х", "c": "ц", "w": "в", "x": "кс",
        "q": "к", "j": "й",
    }.items(),
    key=lambda pair: -len(pair[0]),
)  # fmt: skip
_TRANSLIT_PATTERN = re.compile("|".join(latin for latin, _ in _TRANSLIT))
_TRANSLIT_MAP = dict(_TRANSLIT)


def _transliterate_word(word: str) -> str:
    russian = _TRANSLIT_PATTERN.sub(lambda m: _TRANSLIT_MAP[m.group()], word)
    # "y" after a vowel is "й": "moy" -> "мой", not "моы".
    return re.sub(r"(?<=[аеиоуыэюя])ы", "й", russian)


def fix_translit(text: str, vocabulary: Collection[str] = ()) -> str | None:
    """Recover Russian written in Latin letters: ``"ne puskaet"`` -> ``"не пускает"``.

    Only all-latin words are transliterated ("1c" stays). Same plausibility
    rule as ``fix_layout``; returns None when the text reads better as is.
    """
    folded = normalize(text)
    candidate = _LATIN_WORD.sub(
        lambda m: m.group() if _is_glued_to_digit(folded, m) else _transliterate_word(m.group()),
        folded,
    )
    if candidate == folded:
        return None
    return candidate if _more_plausible(folded, candidate, vocabulary) else None


def _is_glued_to_digit(text: str, match: re.Match[str]) -> bool:
    before = text[match.start() - 1] if match.start() else " "
    after = text[match.end()] if match.end() < len(text) else " "
    return before.isdigit() or after.isdigit()
