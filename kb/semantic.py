"""FAQ search by meaning: article vectors, the hybrid ranking and the "no good answer" gate.

* ``VectorCache``: text -> unit vector, keyed by a hash of the text, filled in batches by
  the encoder (kb/encoder.py); optionally bounded (queries) and persisted to an ``.npz``
  file (article texts), so a restart with 10,000 articles encodes only what changed.
* ``SemanticIndex``: per article the vectors of its question, its alternatives and
  "question + answer"; an article's semantic score is its best cosine to the query.
* ``HybridSearch``: the lexical ``SearchIndex`` (kb/index.py: wrong layout, typos, rare codes
  such as 651 or PPPoE) and the semantic index ranked together -- ``LEXICAL_WEIGHT`` of the
  lexical score plus the rest of the semantic one -- and ``Gate``, a small logistic model
  over the top article's scores, the margin to the second and the query's length, which says
  whether the top article answers at all (greetings, thanks and near misses get nothing).

The weight, the gate's features and its threshold were chosen by 10-fold cross-validation
on the development queries plus our own, over two KBs (the development KB, whose synonyms
were tuned on its queries, and our own bot/data/faq-kb-own.yaml, whose were not: a gate
fitted on the first alone trusts the lexical score too much on new wording); the gate's
fitted weights ship in kb/data/faq-gate.json (``python -m bot classify --retrain`` refits
them).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.articles import Article
from kb.encoder import DIMENSION, Encoder, Vectors
from kb.index import Hit, SearchIndex

GATE_FILE = Path(__file__).with_name("data") / "faq-gate.json"
LEXICAL_WEIGHT = 0.3  # dev + own CV: 0.3-0.5 within a point, 0 (semantic only) 6 points lower
LEXICAL_CANDIDATES = 5
TIE_MARGIN = 0.02  # combined score: closer than this to the best is as good
LENGTH_CAP = 30  # words; the gate's length feature is min(words, cap) / cap
GATE_FEATURES = ("combined", "lexical", "semantic", "margin", "length")


def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


class VectorCache:
    """Vectors of texts by a hash of the text; ``capacity`` bounds it (least recently used
    go first), ``path`` persists it (``load``/``save``)."""

    def __init__(
        self, encoder: Encoder, *, capacity: int | None = None, path: Path | None = None
    ) -> None:
        self.encoder = encoder
        self.capacity = capacity
        self.path = path
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self.encoded = 0  # texts encoded (not found in the cache), for tests and benches
        self.version = 0  # bumped by every put: indexes over the cache restack then
        self._dirty = False
        # The loop thread puts what the encoder thread made; searches may read in a thread.
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and text_key(text) in self._vectors

    def missing(self, texts: Iterable[str]) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(t for t in texts if text_key(t) not in self._vectors))

    def put(self, texts: Sequence[str], vectors: Vectors) -> None:
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._vectors[text_key(text)] = vector
            self.encoded += len(texts)
            self.version += 1
            self._dirty = True
            if self.capacity is not None:
                while len(self._vectors) > self.capacity:
                    self._vectors.popitem(last=False)

    def encode_missing(self, texts: Iterable[str]) -> int:
        """Encode the texts not cached yet, in one batch; returns how many there were."""
        missing = self.missing(texts)
        if missing:
            self.put(missing, self.encoder.encode(missing))
        return len(missing)

    def vectors(self, texts: Sequence[str]) -> Vectors:
        """``(len(texts), 512)`` unit vectors; the missing ones are encoded now, in one batch."""
        self.encode_missing(texts)
        with self._lock:
            rows = []
            for text in texts:
                key = text_key(text)
                if self.capacity is not None:
                    self._vectors.move_to_end(key)
                rows.append(self._vectors[key])
        if not rows:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)

    def cached(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The cached vector of each text, ``None`` where there is none (nothing encoded)."""
        with self._lock:
            return [self._vectors.get(text_key(text)) for text in texts]

    def load(self) -> None:
        """Read the persisted vectors (a missing or unreadable file is an empty cache)."""
        if self.path is None or not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, matrix = data["keys"], data["vectors"].astype(np.float32)
        except (OSError, ValueError, KeyError):
            return
        if matrix.ndim != 2 or matrix.shape[1] != DIMENSION:
            return
        for key, vector in zip(keys.tolist(), matrix, strict=True):
            self._vectors[str(key)] = vector
        self._dirty = False

    def save(self, keep: Iterable[str] | None = None) -> None:
        """Persist the vectors (only those of ``keep`` texts, if given) when they changed."""
        if self.path is None or not self._dirty:
            return
        with self._lock:
            keys = list(self._vectors) if keep is None else [text_key(t) for t in keep]
            keys = [key for key in dict.fromkeys(keys) if key in self._vectors]
            matrix = (
                np.stack([self._vectors[key] for key in keys]).astype(np.float16)
                if keys
                else np.zeros((0, DIMENSION), dtype=np.float16)
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial.npz")
        np.savez(partial, keys=np.array(keys, dtype=str), vectors=matrix)
        partial.replace(self.path)
        self._dirty = False


def article_texts(article: Article) -> list[str]:
    """What an article is compared by: each phrasing, the question with the answer, and the
    answer alone (a client describing the symptom may be closer to how the answer words it
    than to any question; on our own held-out KB it put the right article first a point
    more often)."""
    return [article.question, *article.alt, f"{article.question}\n{article.answer}",
            article.answer]


class SemanticIndex:
    """Article vectors; ``scores`` gives each article's best cosine to a query vector.

    ``set``/``set_many`` only record an article's texts; ``encode_pending`` encodes those not
    in the cache yet (the bot runs it in the encoder's thread). Until then an article is
    scored by the texts that have vectors, or lexically only."""

    def __init__(self, cache: VectorCache) -> None:
        self.cache = cache
        self._texts: dict[str, list[str]] = {}
        self._stacked: tuple[list[str], dict[str, int], np.ndarray, np.ndarray] | None = None
        self._stacked_at = (-1, -1)  # (cache version, own version) of the stack
        self._version = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._texts)

    def set_many(self, articles: Iterable[Article], *, encode: bool = False) -> None:
        with self._lock:
            for article in articles:
                self._texts[article.id] = article_texts(article)
            self._version += 1
        if encode:
            self.encode_pending()

    def encode_pending(self) -> int:
        """Encode the texts without vectors (one batch); returns how many there were."""
        return self.cache.encode_missing(self.all_texts())

    def set(self, article: Article) -> None:
        self.set_many([article])

    def remove(self, article_id: str) -> None:
        with self._lock:
            if self._texts.pop(article_id, None) is not None:
                self._version += 1

    def pending(self) -> list[str]:
        """Texts that still need encoding."""
        return self.cache.missing(self.all_texts())

    def all_texts(self) -> list[str]:
        with self._lock:
            return [text for texts in self._texts.values() for text in texts]

    def _matrix(self) -> tuple[list[str], dict[str, int], np.ndarray, np.ndarray]:
        """(ids of the articles with vectors, their positions, the stacked vectors, where
        each article's rows start); rebuilt after a change of the texts or the cache."""
        with self._lock:
            at = (self.cache.version, self._version)
            if self._stacked is None or self._stacked_at != at:
                ids: list[str] = []
                rows: list[np.ndarray] = []
                starts: list[int] = []
                for article_id, texts in self._texts.items():
                    found = [v for v in self.cache.cached(texts) if v is not None]
                    if found:
                        ids.append(article_id)
                        starts.append(len(rows))
                        rows.extend(found)
                matrix = (np.stack(rows).astype(np.float32) if rows
                          else np.zeros((0, DIMENSION), dtype=np.float32))
                positions = {article_id: n for n, article_id in enumerate(ids)}
                self._stacked = ids, positions, matrix, np.array(starts, dtype=np.int64)
                self._stacked_at = at
            return self._stacked

    def scores(self, query: np.ndarray) -> tuple[list[str], dict[str, int], np.ndarray]:
        """(article ids, their positions, each one's best cosine to ``query``)."""
        ids, positions, matrix, starts = self._matrix()
        if not ids:
            return ids, positions, np.zeros(0, dtype=np.float32)
        return ids, positions, np.maximum.reduceat(matrix @ query, starts)


@dataclass(frozen=True)
class Gate:
    """P(the top article answers the query) from ``GATE_FEATURES``; suggest from
    ``threshold``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float

    def probability(self, features: Sequence[float]) -> float:
        z = self.bias + sum(
            w * (x - m) / s
            for w, x, m, s in zip(self.weights, features, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def load(cls, path: Path = GATE_FILE) -> Gate:
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != GATE_FEATURES:
            raise ValueError(f"{path}: features {data['features']} != {GATE_FEATURES}")
        return cls(tuple(data["mean"]), tuple(data["scale"]), tuple(data["weights"]),
                   float(data["bias"]), float(data["threshold"]))

    def save(self, path: Path = GATE_FILE) -> None:
        data = {"features": GATE_FEATURES, "mean": self.mean, "scale": self.scale,
                "weights": self.weights, "bias": self.bias, "threshold": self.threshold}
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def fit(
        cls, features: np.ndarray, right: np.ndarray, threshold: float, *,
        penalty: float = 1e-2, steps: int = 3000,
    ) -> Gate:
        """Logistic regression (gradient descent on standardised features)."""
        mean = features.mean(axis=0)
        scale = features.std(axis=0) + 1e-9
        z = (features - mean) / scale
        weights, bias = np.zeros(features.shape[1]), 0.0
        for _ in range(steps):
            p = 1.0 / (1.0 + np.exp(-(z @ weights + bias)))
            gradient = p - right
            weights -= 0.5 * (z.T @ gradient / len(right) + penalty * weights)
            bias -= 0.5 * float(gradient.mean())
        return cls(tuple(mean.tolist()), tuple(scale.tolist()), tuple(weights.tolist()),
                   bias, threshold)


@dataclass(frozen=True)
class Ranking:
    """The hybrid's view of one query: articles best first and the gate's features."""

    ranked: list[tuple[str, float]]  # (article id, combined score)
    features: tuple[float, ...]


def words_of(query: str) -> int:
    return len(query.split())


class HybridSearch:
    """The lexical index and the semantic index ranked together, behind the gate."""

    def __init__(self, lexical: SearchIndex, semantic: SemanticIndex, gate: Gate) -> None:
        self.lexical = lexical
        self.semantic = semantic
        self.gate = gate

    def meaning(self, query: str) -> str:
        """What the sentence model reads of a query: the text as meant when it was typed in
        the wrong keyboard layout or in transliteration (the model cannot read "ytn
        bynthytnf"; the lexical index repairs it by its own words)."""
        return self.lexical.repaired(query)

    def rank(self, query: str, vector: np.ndarray, depth: int = 5) -> Ranking | None:
        """The ``depth`` best articles by the combined score, and the gate's features;
        ``vector`` is the sentence model's of ``meaning(query)``."""
        hits = self.lexical.search(query, limit=LEXICAL_CANDIDATES, min_score=0.0)
        ids, positions, semantic = self.semantic.scores(vector)
        if not ids:
            return None
        combined = (1 - LEXICAL_WEIGHT) * semantic
        lexical = {hit.id: hit.score for hit in hits}
        extra: dict[str, float] = {}  # lexical hits without vectors yet
        for article_id, value in lexical.items():
            position = positions.get(article_id)
            if position is None:
                extra[article_id] = LEXICAL_WEIGHT * value
            else:
                combined[position] += LEXICAL_WEIGHT * value
        count = min(depth, len(ids))
        best = np.argpartition(-combined, count - 1)[:count]
        ranked = [(ids[n], float(combined[n])) for n in best] + list(extra.items())
        ranked.sort(key=lambda item: (-item[1], item[0]))
        ranked = ranked[:depth]
        top, value = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        own = positions.get(top)
        features = (value, lexical.get(top, 0.0),
                    float(semantic[own]) if own is not None else 0.0, value - second,
                    min(words_of(query), LENGTH_CAP) / LENGTH_CAP)
        return Ranking(ranked, features)

    def search(self, query: str, vector: np.ndarray, limit: int = 3) -> list[Hit]:
        """The best article and those within ``TIE_MARGIN`` of it (the desk may prefer one
        in the client's language among them), scored by the gate's probability for the
        first and the combined score for the rest; empty when the gate says no."""
        ranking = self.rank(query, vector)
        if ranking is None:
            return []
        probability = self.gate.probability(ranking.features)
        if probability < self.gate.threshold:
            return []
        (top, best), *rest = ranking.ranked
        ties = [Hit(i, round(s, 4)) for i, s in rest[: limit - 1] if best - s <= TIE_MARGIN]
        return [Hit(top, round(probability, 4)), *ties]


# The most accurate threshold whose false suggestions stay under 0.10 in 10-fold CV over the
# gate's training queries on both KBs (bot/cli/retrain.py GATE_TRAINING): 0.828 / 0.089.
GATE_THRESHOLD = 0.7


def build_search(articles: Sequence[Article], cache: VectorCache, gate: Gate) -> HybridSearch:
    semantic = SemanticIndex(cache)
    semantic.set_many(articles, encode=True)
    return HybridSearch(SearchIndex(articles), semantic, gate)


def gate_examples(
    search: HybridSearch, queries: Sequence[tuple[str, str | None]]
) -> tuple[np.ndarray, np.ndarray]:
    """The gate's features of each (query, expected article or None) and whether the top
    article is the expected one: what ``Gate.fit`` learns from."""
    vectors = search.semantic.cache.vectors([search.meaning(query) for query, _ in queries])
    rows, right = [], []
    for (query, expect), vector in zip(queries, vectors, strict=True):
        ranking = search.rank(query, vector)
        if ranking is None:
            continue
        rows.append(ranking.features)
        right.append(expect is not None and ranking.ranked[0][0] == expect)
    return np.array(rows, dtype=float), np.array(right, dtype=float)
