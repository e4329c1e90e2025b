"""Search over FAQ articles: which article answers a client's message?

Each article is indexed as stems (see ``kb.text``) of its question, its
alternative phrasings and its tags. A query is repaired (wrong keyboard layout,
transliteration), split where words are glued ("незаходит"), mapped through
synonyms (slang, English -> Russian canonical words) and stemmed; query words
unknown to the index are matched to index terms by edit similarity (rapidfuzz),
which absorbs typos ("подключаеться", "пробиват").

The score of an article combines two IDF-weighted coverages, so rare terms
("pppoe", "651") count more than common ones ("ошибка"):

* query coverage: how much of the query the article explains (words unknown to
  the whole KB count against it - a question about something else must not
  match on one shared common word);
* phrasing coverage: how much of the article's best-matching phrasing (the
  question or one alt) the query covers.

Their geometric mean is in [0, 1]; below ``min_score`` nothing is suggested,
since suggesting a wrong article is worse than none.

Measured on the dev set (tests/bench/faq_eval.py): either coverage alone loses
3-5 points of accuracy against the combination (mean, harmonic and geometric
means are within a point); adding a sentence-level rapidfuzz score (WRatio,
token_set/token_sort/partial ratio) on top did not help, so fuzzy matching is
kept at the word level. The results barely move with the fuzzy cutoff (75-90).
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from kb.articles import Article
from kb.text import (
    MAX_WORD_LENGTH,
    STOPWORDS,
    Synonyms,
    default_synonyms,
    fix_layout,
    fix_translit,
    stem,
    tokens,
)

DEFAULT_MIN_SCORE = 0.45
"""Middle of the dev-set plateau (0.42-0.48: accuracy 0.94-0.96); below 0.40
greetings and near misses start getting suggestions (false rate 0.13 -> 0.55)."""

# Edit similarity (0-100, rapidfuzz ratio) from which a query word counts as a
# misspelling of an index term, and the shortest word tried: short words have
# too many close neighbours.
FUZZY_CUTOFF = 80.0
FUZZY_MIN_LENGTH = 4
# Hostile input (issue 14): a query is cut to this before any expensive step, and at most
# this many fuzzy answers are remembered (least recently used go first).
MAX_QUERY_CHARS = 500
FUZZY_CACHE_SIZE = 4096
# Weight of a query word unknown to the KB, relative to the rarest known term.
UNKNOWN_WORD_WEIGHT = 0.5
# Articles ranked by query coverage before the full score is computed.
CANDIDATES = 30


@dataclass(frozen=True)
class Hit:
    id: str
    score: float


@dataclass(frozen=True)
class _Document:
    article: Article
    terms: frozenset[str]
    phrasings: tuple[frozenset[str], ...]


def _combine(query_coverage: float, phrasing_coverage: float) -> float:
    """Geometric mean: an article must explain the query *and* be covered by it."""
    return math.sqrt(query_coverage * phrasing_coverage)


class SearchIndex:
    """In-memory FAQ search with incremental updates (``add``/``remove``/``replace``)."""

    def __init__(
        self,
        articles: Iterable[Article] = (),
        *,
        min_score: float = DEFAULT_MIN_SCORE,
        synonyms: Synonyms | None = None,
    ) -> None:
        self.min_score = min_score
        self._synonyms = synonyms or default_synonyms()
        self._documents: dict[str, _Document] = {}
        self._postings: dict[str, set[str]] = defaultdict(set)
        self._vocabulary: list[str] | None = None  # sorted terms for fuzzy matching, lazily
        self._fuzzy_cache: OrderedDict[str, list[tuple[str, float]]] = OrderedDict()
        for article in articles:
            self.add(article)

    def __len__(self) -> int:
        return len(self._documents)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._documents

    def add(self, article: Article) -> None:
        """Index a new article; its id must not be indexed yet."""
        if article.id in self._documents:
            raise ValueError(f"article {article.id!r} is already indexed")
        phrasings = tuple(frozenset(self._stems(text)) for text in (article.question, *article.alt))
        tag_terms = {term for tag in article.tags for term in self._stems(tag)}
        document = _Document(article, frozenset().union(tag_terms, *phrasings), phrasings)
        self._documents[article.id] = document
        for term in document.terms:
            if term not in self._postings:
                self._vocabulary_changed()
            self._postings[term].add(article.id)

    def remove(self, article_id: str) -> Article:
        """Drop an article from the index and return it (KeyError if unknown)."""
        document = self._documents.pop(article_id)
        for term in document.terms:
            postings = self._postings[term]
            postings.discard(article_id)
            if not postings:
                del self._postings[term]
                self._vocabulary_changed()
        return document.article

    def replace(self, article: Article) -> None:
        """Index ``article`` in place of the article with the same id, if any."""
        if article.id in self._documents:
            self.remove(article.id)
        self.add(article)

    def search(self, query: str, limit: int = 3, *, min_score: float | None = None) -> list[Hit]:
        """Best articles for ``query``, best first, each scored in [0, 1]; empty
        when nothing reaches ``min_score`` (the index's own unless given)."""
        floor = self.min_score if min_score is None else min_score
        query_terms = self._query_terms(query[:MAX_QUERY_CHARS])
        if not query_terms or not self._documents:
            return []
        unknown_weight = UNKNOWN_WORD_WEIGHT * self._idf(0)
        total_weight = 0.0
        coverage: dict[str, float] = defaultdict(float)  # article id -> matched weight
        similarity: dict[str, float] = {}  # index term -> best similarity to a query term
        for word in query_terms:
            matches = self._matches(word)
            if not matches:
                total_weight += unknown_weight
                continue
            weight = max(self._idf(len(self._postings[term])) for term, _ in matches)
            total_weight += weight
            best: dict[str, float] = {}
            for term, score in matches:
                similarity[term] = max(similarity.get(term, 0.0), score)
                for article_id in self._postings[term]:
                    best[article_id] = max(best.get(article_id, 0.0), score)
            for article_id, score in best.items():
                coverage[article_id] += weight * score
        candidates = heapq.nlargest(CANDIDATES, coverage.items(), key=lambda item: item[1])
        hits = []
        for article_id, matched_weight in candidates:
            phrasing = max(
                self._phrasing_coverage(terms, similarity)
                for terms in self._documents[article_id].phrasings
            )
            score = _combine(matched_weight / total_weight, phrasing)
            if score >= floor:
                hits.append(Hit(article_id, round(score, 4)))
        hits.sort(key=lambda hit: (-hit.score, hit.id))
        return hits[:limit]

    def _stems(self, text: str) -> list[str]:
        words = self._synonyms.apply(tokens(text))
        return [stem(word) for word in words if word not in STOPWORDS]

    def repaired(self, query: str) -> str:
        """The query as meant when it was typed in the wrong keyboard layout or in Latin
        transliteration (judged by this index's words), else as it is."""
        known = self._postings.keys()
        return fix_layout(query, known) or fix_translit(query, known) or query

    def _query_terms(self, query: str) -> list[str]:
        words = [part for word in tokens(self.repaired(query)) for part in self._split_glued(word)]
        canonical = self._synonyms.apply(words)
        return list(dict.fromkeys(stem(word) for word in canonical if word not in STOPWORDS))

    def _split_glued(self, word: str) -> list[str]:
        """Split a word the client glued to its neighbour ("незаходит" -> "не",
        "заходит") when it is unknown and both halves are known."""
        if (len(word) < 2 * FUZZY_MIN_LENGTH - 1 or len(word) > MAX_WORD_LENGTH
                or self._is_known(word)):
            return [word]
        for cut in range(2, len(word) - 2):
            head, tail = word[:cut], word[cut:]
            if self._is_known(head) and self._is_known(tail):
                return [head, tail]
        return [word]

    def _is_known(self, word: str) -> bool:
        if word in STOPWORDS:
            return True
        return any(stem(part) in self._postings for part in self._synonyms.apply([word]))

    def _matches(self, term: str) -> list[tuple[str, float]]:
        """Index terms a query term stands for, with similarity in (0, 1]."""
        if term in self._postings:
            return [(term, 1.0)]
        if not FUZZY_MIN_LENGTH <= len(term) <= MAX_WORD_LENGTH:
            return []
        cached = self._fuzzy_cache.get(term)
        if cached is not None:
            self._fuzzy_cache.move_to_end(term)
        else:
            if self._vocabulary is None:
                self._vocabulary = sorted(self._postings)
            found = process.extract(
                term, self._vocabulary, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=3
            )
            cached = [(choice, score / 100) for choice, score, _ in found]
            self._fuzzy_cache[term] = cached
            if len(self._fuzzy_cache) > FUZZY_CACHE_SIZE:
                self._fuzzy_cache.popitem(last=False)
        return cached

    def _phrasing_coverage(self, terms: frozenset[str], similarity: dict[str, float]) -> float:
        total = sum(self._idf(len(self._postings[term])) for term in terms)
        if not total:
            return 0.0
        matched = sum(
            self._idf(len(self._postings[term])) * similarity.get(term, 0.0) for term in terms
        )
        return matched / total

    def _idf(self, document_frequency: int) -> float:
        """BM25 inverse document frequency (always positive)."""
        articles = len(self._documents)
        return math.log(1 + (articles - document_frequency + 0.5) / (document_frequency + 0.5))

    def _vocabulary_changed(self) -> None:
        self._vocabulary = None
        self._fuzzy_cache.clear()
