"""Severity of a client's message: critical / normal / low.

Two steps, kept apart so each stays readable:

1. Cue detection (vocabulary in ``bot/data/severity.yaml``): the message is
   tokenised with ``kb.text`` (layout/translit repair, normalisation, synonyms,
   stems, fuzzy match for typos) and matched against cue terms of several kinds
   (failure, wide scope, single scope, slowness, security, request...).
2. The decision (``_decide``): a short rule list that reads like the label rules.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.domain.enums import Severity
from kb.text import STOPWORDS, default_synonyms, fix_layout, fix_translit, normalize, stem, tokens

BUNDLED_VOCABULARY = Path(__file__).parents[1] / "data" / "severity.yaml"

# Cue kinds the decision rules read; the bundled file must define them all.
RULE_KINDS = frozenset(
    {
        "failure", "total_outage", "absence", "slowness", "intermittent", "scope_wide",
        "scope_single", "others_fine", "partial", "workaround", "specific_operation",
        "service_core", "security_event", "security_threat", "suspicious_activity",
        "data_loss", "data_loss_direct", "business_blocked", "blocked_activity", "request",
        "question", "thanks",
    }
)  # fmt: skip
_TOP_LEVEL_KEYS = frozenset(
    {"phrase_gap", "negation_before", "negation_after", "negatable", "many_words", "cues",
     "combinations"}
)  # fmt: skip
_EXTENSION_KEYS = frozenset({"cues", "many_words"})
_CLAUSE_BREAK = re.compile(r"[.,;:!?()\n]+")
# Typos: a stem this long may be one edit away from a cue stem (two if very long),
# keeping its first letters (shorter stems and prefixes carry meaning: "в/вы-ключается").
_FUZZY_MIN_LENGTH = 7
_FUZZY_SAME_PREFIX = 2
_FUZZY_TWO_EDITS_LENGTH = 9
_MANY_FROM = 3  # "3 users" is many; "2 users" is not yet the whole office
_INDEXED_PREFIX = 3  # prefix terms are indexed by up to this many first letters


class SeverityVocabularyError(ValueError):
    """A vocabulary file is malformed; the message names the file, the key and the problem."""

    def __init__(self, path: Path, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path, self.key, self.problem = path, key, problem


# --- vocabulary -------------------------------------------------------------


@dataclass(frozen=True)
class _Element:
    """One word of a cue term; see the header of severity.yaml for the syntax."""

    kind: str  # "stem" | "prefix" | "exact" | "any" | "num"
    value: str = ""


@dataclass(frozen=True)
class _Term:
    kind: str
    text: str
    elements: tuple[_Element, ...]

    @property
    def literal_count(self) -> int:
        return sum(element.kind != "any" for element in self.elements)


def _parse_element_words(word: str, path: Path, key: str) -> list[_Element]:
    if word == "*":
        return [_Element("any")]
    if word == "<num>":
        return [_Element("num")]
    if word.startswith("=") or word.endswith("*"):
        body = word[1:] if word.startswith("=") else word[:-1]
        parts = tokens(body)
        if len(parts) != 1:
            raise SeverityVocabularyError(path, key, f"{word!r} must be a single word")
        return [_Element("exact" if word.startswith("=") else "prefix", parts[0])]
    parts = tokens(word)
    if not parts:
        raise SeverityVocabularyError(path, key, f"{word!r} has no letters or digits")
    return [_Element("stem", stem(part)) for part in parts]


def _parse_term(kind: str, text: object, path: Path, key: str) -> _Term:
    if not isinstance(text, str) or not text.strip():
        raise SeverityVocabularyError(path, key, f"expected a non-empty string, got {text!r}")
    elements: list[_Element] = []
    for word in text.split():
        elements.extend(_parse_element_words(word, path, key))
    if elements[0].kind == "any":
        raise SeverityVocabularyError(path, key, f"{text!r} must not start with '*'")
    return _Term(kind, text, tuple(elements))


def _string_list(value: object, path: Path, key: str) -> list[str]:
    if not isinstance(value, list):
        raise SeverityVocabularyError(path, key, f"expected a list of strings, got {value!r}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            # YAML reads bare no/yes/on/off as booleans: they must be quoted.
            raise SeverityVocabularyError(
                path, f"{key}[{index}]", f"expected a string, got {item!r} (quote it)"
            )
    return list(value)


@dataclass(frozen=True)
class _Combination:
    name: str
    groups: tuple[frozenset[str], ...]
    window: int


@dataclass
class _Vocabulary:
    phrase_gap: int = 0
    negation_before: frozenset[str] = frozenset()
    negation_after: frozenset[str] = frozenset()
    negatable: frozenset[str] = frozenset()
    many_words: list[_Element] = field(default_factory=list)
    terms: list[_Term] = field(default_factory=list)
    combinations: list[_Combination] = field(default_factory=list)

    @property
    def kinds(self) -> set[str]:
        return {term.kind for term in self.terms}

    def load(self, path: Path, *, bundled: bool) -> None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise SeverityVocabularyError(path, "(file)", f"not valid YAML: {error}") from error
        except OSError as error:
            raise SeverityVocabularyError(path, "(file)", f"cannot read: {error}") from error
        if not isinstance(data, dict):
            raise SeverityVocabularyError(path, "(file)", "expected a mapping at the top level")
        allowed = _TOP_LEVEL_KEYS if bundled else _EXTENSION_KEYS
        for key in data:
            if key not in allowed:
                raise SeverityVocabularyError(
                    path, str(key), f"unknown key; expected one of {sorted(allowed)}"
                )
        known_kinds = self.kinds
        cues = data.get("cues") or {}
        if not isinstance(cues, dict):
            raise SeverityVocabularyError(path, "cues", "expected a mapping kind: [terms]")
        for kind, terms in cues.items():
            key = f"cues.{kind}"
            if not bundled and kind not in known_kinds:
                raise SeverityVocabularyError(
                    path, key, f"unknown cue kind; expected one of {sorted(known_kinds)}"
                )
            for index, text in enumerate(_string_list(terms, path, key)):
                self.terms.append(_parse_term(str(kind), text, path, f"{key}[{index}]"))
        for index, word in enumerate(_string_list(data.get("many_words", []), path, "many_words")):
            (element,) = _parse_element_words(word, path, f"many_words[{index}]")
            self.many_words.append(element)
        if bundled:
            self._load_settings(data, path)

    def _load_settings(self, data: Mapping[str, Any], path: Path) -> None:
        gap = data.get("phrase_gap", 0)
        if not isinstance(gap, int) or isinstance(gap, bool) or gap < 0:
            raise SeverityVocabularyError(path, "phrase_gap", "expected a non-negative integer")
        self.phrase_gap = gap
        for key in ("negation_before", "negation_after"):
            words = _string_list(data.get(key, []), path, key)
            setattr(self, key, frozenset(normalize(word) for word in words))
        kinds = self.kinds
        self.negatable = frozenset(_string_list(data.get("negatable", []), path, "negatable"))
        for kind in sorted(self.negatable - kinds):
            raise SeverityVocabularyError(path, "negatable", f"{kind!r} is not a cue kind")
        combinations = data.get("combinations") or {}
        if not isinstance(combinations, dict):
            raise SeverityVocabularyError(path, "combinations", "expected a mapping")
        for name, spec in combinations.items():
            key = f"combinations.{name}"
            if not isinstance(spec, dict) or set(spec) != {"all", "window"}:
                raise SeverityVocabularyError(path, key, "expected {all: [kinds], window: N}")
            window = spec["window"]
            if not isinstance(window, int) or isinstance(window, bool) or window < 0:
                raise SeverityVocabularyError(path, f"{key}.window", "expected an integer >= 0")
            members = spec["all"]
            if not isinstance(members, list) or len(members) < 2:
                raise SeverityVocabularyError(path, f"{key}.all", "expected two or more kinds")
            groups = []
            for member in members:
                group = frozenset(member if isinstance(member, list) else [member])
                for kind in sorted(group - kinds, key=str):
                    raise SeverityVocabularyError(path, f"{key}.all", f"{kind!r} is not a cue kind")
                groups.append(group)
            self.combinations.append(_Combination(str(name), tuple(groups), window))
        missing = RULE_KINDS - kinds - {combo.name for combo in self.combinations}
        if missing:
            raise SeverityVocabularyError(
                path, "cues", f"the rules need these kinds: {sorted(missing)}"
            )


# --- matching ---------------------------------------------------------------


@dataclass(frozen=True)
class _Position:
    token: str
    keys: frozenset[str]  # stem, stems of the synonym's canonical words, fuzzy stem
    clause: int


@dataclass(frozen=True)
class Cue:
    """One cue found in a message: its kind, the vocabulary term and the words it matched."""

    kind: str
    term: str
    words: str


@dataclass(frozen=True)
class _Match:
    term: _Term
    start: int
    end: int  # inclusive
    wildcards: tuple[int, ...]

    @property
    def specificity(self) -> tuple[int, int]:
        return self.end - self.start, self.term.literal_count

    def covers(self, other: _Match) -> bool:
        return self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class Verdict:
    """The severity, the rule that decided it and the cues it saw (for staff and debugging)."""

    severity: Severity
    rule: str
    cues: tuple[Cue, ...]


MAX_CLASSIFIED_CHARS = 2000


class SeverityClassifier:
    """Rule-based severity of a client's message (see module docstring)."""

    def __init__(self, vocabulary: _Vocabulary) -> None:
        self._vocabulary = vocabulary
        self._synonyms = default_synonyms()
        # Terms indexed by what their first word needs, so a word only tries the few
        # terms that can start at it: a stem, a form, or the prefix's first letters.
        self._by_first_stem: dict[str, list[_Term]] = {}
        self._by_first_form: dict[str, list[_Term]] = {}
        self._by_first_letters: dict[str, list[_Term]] = {}
        self._count_first: list[_Term] = []
        for term in vocabulary.terms:
            first = term.elements[0]
            if first.kind == "stem":
                self._by_first_stem.setdefault(first.value, []).append(term)
            elif first.kind == "exact":
                self._by_first_form.setdefault(first.value, []).append(term)
            elif first.kind == "prefix":
                letters = first.value[:_INDEXED_PREFIX]
                self._by_first_letters.setdefault(letters, []).append(term)
            else:
                self._count_first.append(term)
        stems = {e.value for t in vocabulary.terms for e in t.elements if e.kind == "stem"}
        self._cue_stems = frozenset(stems)
        self._fuzzy_choices: dict[str, list[str]] = {}
        for cue_stem in sorted(stems):
            if len(cue_stem) >= _FUZZY_MIN_LENGTH - 1:
                self._fuzzy_choices.setdefault(cue_stem[:_FUZZY_SAME_PREFIX], []).append(cue_stem)
        words = {e.value for t in vocabulary.terms for e in t.elements if e.kind != "any"}
        self._repair_vocabulary = frozenset(words)
        self._keys_of = functools.lru_cache(maxsize=65536)(self._compute_keys)

    @staticmethod
    def from_files(*extra_paths: Path) -> SeverityClassifier:
        """The bundled vocabulary plus a desk's extension files (their terms are added).
        Built once per process for the same files, unchanged since: building takes ~0.1 s
        of stemming (a test suite starts hundreds of bots), and a classifier never changes."""
        return _built(tuple((path, _version(path)) for path in extra_paths))

    def classify(self, text: str) -> Severity:
        return self.explain(text).severity

    def explain(self, text: str) -> Verdict:
        # Matching grows faster than the text (4,000 characters of cue words: 0.25 s of
        # the event loop, 12,000: 2 s); what an incident is about is said well within this.
        text = text[:MAX_CLASSIFIED_CHARS]
        positions = self._positions(self._repaired(text))
        matches = self._matches(positions)
        kinds = {match.term.kind for match in matches}
        kinds |= self._combinations(matches)
        if "?" in text:
            kinds.add("question")
        if self._contrast(positions):
            kinds.add("contrast")
        severity, rule = _decide(kinds)
        cues = tuple(
            Cue(m.term.kind, m.term.text, " ".join(p.token for p in positions[m.start : m.end + 1]))
            for m in matches
        )
        return Verdict(severity, rule, cues)

    # --- text -> positions

    def _repaired(self, text: str) -> str:
        """Text typed in the wrong layout or in transliteration, read as meant."""
        return (
            fix_layout(text, self._repair_vocabulary)
            or fix_translit(text, self._repair_vocabulary)
            or text
        )

    def _compute_keys(self, token: str) -> frozenset[str]:
        keys = {stem(token)}
        keys.update(stem(word) for word in self._synonyms.apply([token]))
        if keys & self._cue_stems or token in STOPWORDS:
            return frozenset(keys)
        token_stem = stem(token)
        if len(token_stem) >= _FUZZY_MIN_LENGTH:
            max_edits = 2 if len(token_stem) >= _FUZZY_TWO_EDITS_LENGTH else 1
            choices = self._fuzzy_choices.get(token_stem[:_FUZZY_SAME_PREFIX], [])
            best = process.extractOne(
                token_stem, choices, scorer=OSA.distance, score_cutoff=max_edits
            )
            if best is not None:
                keys.add(best[0])
        return frozenset(keys)

    def _positions(self, text: str) -> list[_Position]:
        positions: list[_Position] = []
        for clause, chunk in enumerate(_CLAUSE_BREAK.split(text)):
            positions.extend(_Position(t, self._keys_of(t), clause) for t in tokens(chunk))
        return positions

    # --- positions -> cue matches

    def _element_matches(self, element: _Element, position: _Position) -> bool:
        if element.kind == "stem":
            return element.value in position.keys
        if element.kind == "prefix":
            return position.token.startswith(element.value)
        if element.kind == "exact":
            return position.token == element.value
        if element.kind == "num":
            if position.token.isdigit():
                return int(position.token) >= _MANY_FROM
            return any(
                self._element_matches(word, position) for word in self._vocabulary.many_words
            )
        return True  # "any"

    def _match_at(self, term: _Term, positions: Sequence[_Position], start: int) -> _Match | None:
        if not self._element_matches(term.elements[0], positions[start]):
            return None
        last, wildcards = start, []
        negation = self._vocabulary.negation_before
        for previous_element, element in itertools.pairwise(term.elements):
            # Only content words may stand apart: a negation binds to the next word
            # ("не у всех" is not "не работает у всех"), and so do "у", "all" and counts.
            previous = positions[last].token
            bound = (
                element.kind == "any"
                or previous_element.kind == "num"
                or previous in negation
                or previous in STOPWORDS
            )
            reach = 0 if bound else self._vocabulary.phrase_gap
            for index in range(last + 1, min(last + 2 + reach, len(positions))):
                if self._element_matches(element, positions[index]):
                    if element.kind == "any":
                        wildcards.append(index)
                    last = index
                    break
            else:
                return None
        return _Match(term, start, last, tuple(wildcards))

    def _negated(self, match: _Match, positions: Sequence[_Position]) -> bool:
        before = positions[match.start - 1] if match.start > 0 else None
        after = positions[match.end + 1] if match.end + 1 < len(positions) else None
        clause = positions[match.start].clause
        return (
            before is not None
            and before.clause == clause
            and before.token in self._vocabulary.negation_before
        ) or (
            after is not None
            and after.clause == positions[match.end].clause
            and after.token in self._vocabulary.negation_after
        )

    def _matches(self, positions: Sequence[_Position]) -> list[_Match]:
        found: list[_Match] = []
        for start, position in enumerate(positions):
            candidates = list(self._count_first)
            candidates.extend(self._by_first_form.get(position.token, ()))
            for length in range(1, _INDEXED_PREFIX + 1):
                candidates.extend(self._by_first_letters.get(position.token[:length], ()))
            for key in position.keys:
                candidates.extend(self._by_first_stem.get(key, ()))
            for term in candidates:
                match = self._match_at(term, positions, start)
                if match is not None:
                    found.append(match)
        negatable = self._vocabulary.negatable
        # "не пропадает": the "не" negates the cue, it does not start a "не *" failure.
        negatable_cue_at = {m.start for m in found if m.start == m.end and m.term.kind in negatable}
        found = [
            m
            for m in found
            if not (m.term.kind in negatable and self._negated(m, positions))
            and not negatable_cue_at.intersection(m.wildcards)
        ]
        # A longer or more literal cue of another kind redefines the words it covers:
        # "не у всех" is partial, not wide scope.
        return [
            m
            for m in found
            if not any(
                o.term.kind != m.term.kind and o.covers(m) and o.specificity > m.specificity
                for o in found
            )
        ]

    def _combinations(self, matches: Sequence[_Match]) -> set[str]:
        found = set()
        for combination in self._vocabulary.combinations:
            groups = [[m for m in matches if m.term.kind in group] for group in combination.groups]
            for chosen in itertools.product(*groups):
                if max(m.start for m in chosen) - min(m.end for m in chosen) <= combination.window:
                    found.add(combination.name)
                    break
        return found

    def _contrast(self, positions: Sequence[_Position]) -> bool:
        """The same verb both negated and not ("не уходят ... уходят"): only part fails."""
        negation = self._vocabulary.negation_before
        negated: set[str] = set()
        affirmed: set[str] = set()
        for index, position in enumerate(positions):
            if position.token in negation or position.token in STOPWORDS:
                continue
            previous = positions[index - 1].token if index else ""
            (negated if previous in negation else affirmed).add(stem(position.token))
        return bool(negated & affirmed)


def _version(path: Path) -> tuple[int, int] | None:
    """What tells an edited file from the one loaded before (None: unreadable, and
    loading it says why)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _built(files: tuple[tuple[Path, tuple[int, int] | None], ...]) -> SeverityClassifier:
    vocabulary = _Vocabulary()
    vocabulary.load(BUNDLED_VOCABULARY, bundled=True)
    for path, _ in files:
        vocabulary.load(path, bundled=False)
    return SeverityClassifier(vocabulary)


def _decide(kinds: set[str]) -> tuple[Severity, str]:
    """The label rules, in order; returns the severity and the rule that fired."""
    has = kinds.__contains__
    failure = has("failure") or has("absence") or has("total_outage")
    degraded = has("slowness") or has("intermittent")
    asks = has("request") or has("question") or has("thanks")
    wide = has("scope_wide")
    single = (has("scope_single") or has("others_fine")) and not wide
    limited = (
        single
        or degraded
        or has("partial")
        or has("contrast")
        or has("workaround")
        or has("specific_operation")
    )

    if has("security_event") or has("suspicious_activity"):
        return Severity.CRITICAL, "security incident"
    if has("security_threat") and (failure or not asks):
        return Severity.CRITICAL, "malware or phishing reported"
    if has("data_loss") or has("data_loss_direct"):
        return Severity.CRITICAL, "data lost or corrupted"
    if has("total_outage") and not single:
        return Severity.CRITICAL, "nothing works"
    if (has("business_blocked") or has("blocked_activity")) and not single:
        return Severity.CRITICAL, "the business process is blocked"
    if failure and wide and not degraded and not has("partial"):
        return Severity.CRITICAL, "down for everyone"
    if failure and has("service_core") and not limited:
        return Severity.CRITICAL, "a core service is down"
    if failure or degraded:
        return Severity.NORMAL, "something is broken, slow or intermittent for a part"
    if asks:
        return Severity.LOW, "a question, request or thanks"
    return Severity.NORMAL, "no clear cue: treated as a problem report"
