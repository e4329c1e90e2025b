"""FAQ search speed: index build time and per-query latency by KB size.

    .venv/bin/python tests/bench/faq_speed.py [--kb KB.yaml] [--queries Q.jsonl]

Large KBs are synthesised from the dev KB: each synthetic article recombines
the words of one dev article's phrasings with words of another, and carries a
rare code of its own ("err4711") so the vocabulary grows with the KB as it
would in real life. Queries are the dev queries.
Targets: median < 5 ms at 1,000 articles, < 50 ms at 10,000 (lexical); the hybrid (lexical
+ sentence model + gate) <= 10 ms at 1,000 and <= 50 ms at 10,000, the query's vector made
beforehand (the bot encodes it in the encoder's thread before the update's transaction;
"encode ms" is that cost per query, single). "restart ms" is a new process's start with
the article vectors persisted: loading them and building both indexes. Articles are
encoded for real up to --encode-up-to articles (default 1,000: 10,000 take 5-25 minutes on
this 2-core machine); beyond, their vectors are random unit vectors -- the search's time
does not depend on the values -- and "encode s" is extrapolated from the last real size.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tempfile

import numpy as np
from faq_eval import default_eval_dir, load_queries

from kb.articles import Article, load_articles
from kb.encoder import encoder
from kb.index import SearchIndex
from kb.semantic import Gate, HybridSearch, SemanticIndex, VectorCache

SIZES = (100, 1_000, 10_000)
HYBRID_SIZES = (1_000, 10_000)


def synthetic_kb(base: Sequence[Article], size: int, seed: int = 42) -> list[Article]:
    rng = random.Random(seed)
    articles = []
    for number in range(size):
        source, other = base[number % len(base)], rng.choice(base)
        phrasings = [source.question, *source.alt]
        words = " ".join(phrasings).split() + rng.sample(other.question.split(), 2)
        question, *alt = (" ".join(rng.sample(words, min(6, len(words)))) for _ in phrasings)
        articles.append(
            replace(
                source,
                id=f"{source.id}-{number}",
                question=f"{question} err{number}",
                alt=tuple(alt),
            )
        )
    return articles


def percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    eval_dir = default_eval_dir()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=eval_dir / "kb-dev.yaml")
    parser.add_argument("--queries", type=Path, default=eval_dir / "faq-dev.jsonl")
    parser.add_argument("--encode-up-to", type=int, default=1_000)
    args = parser.parse_args(argv)

    base = load_articles(args.kb)
    queries = [query.text for query in load_queries(args.queries)]
    print(f"{'lexical':<8} {'articles':>8} {'build ms':>9} {'median ms':>9} {'p95 ms':>7} "
          f"{'queries':>7}")
    for size in SIZES:
        articles = synthetic_kb(base, size)
        started = time.perf_counter()
        index = SearchIndex(articles)
        build = time.perf_counter() - started
        index.search("прогрев")  # first query builds the fuzzy vocabulary
        timings = []
        for query in queries:
            started = time.perf_counter()
            index.search(query)
            timings.append(time.perf_counter() - started)
        print(
            f"{'':<8} {size:>8} {build * 1000:>9.0f} {statistics.median(timings) * 1000:>9.2f} "
            f"{percentile(timings, 0.95) * 1000:>7.2f} {len(timings):>7}"
        )
    model = encoder()
    if model is None:
        print("the sentence model is not available: no hybrid figures")
        return 0
    single = []
    for query in queries[:50]:
        started = time.perf_counter()
        model.encode([query])
        single.append(time.perf_counter() - started)
    query_vectors = VectorCache(model).vectors(queries)
    print(f"encode ms per query, single: median {statistics.median(single) * 1000:.2f}")
    print(f"{'hybrid':<8} {'articles':>8} {'encode s':>9} {'median ms':>9} {'p95 ms':>7} "
          f"{'restart ms':>10}")
    gate = Gate.load()
    per_text = 0.0
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for size in HYBRID_SIZES:
            articles = synthetic_kb(base, size)
            path = Path(folder) / f"vectors-{size}.npz"
            cache = VectorCache(model, path=path)
            started = time.perf_counter()
            semantic = SemanticIndex(cache)
            real = size <= args.encode_up_to
            semantic.set_many(articles, encode=real)
            if real:
                encoded = time.perf_counter() - started
                per_text = encoded / len(semantic.all_texts())
            else:
                texts = semantic.pending()
                fake = rng.normal(size=(len(texts), 512)).astype(np.float32)
                cache.put(texts, fake / np.linalg.norm(fake, axis=1, keepdims=True))
                encoded = per_text * len(texts)
            cache.save()
            started = time.perf_counter()
            restarted = VectorCache(model, path=path)
            restarted.load()
            lexical = SearchIndex(articles)
            semantic = SemanticIndex(restarted)
            semantic.set_many(articles)
            hybrid = HybridSearch(lexical, semantic, gate)
            hybrid.search("прогрев", query_vectors[0])  # stacks the matrix, fuzzy vocabulary
            restart = time.perf_counter() - started
            assert restarted.encoded == 0, "the restart encoded articles again"
            timings = []
            for vector, query in zip(query_vectors, queries, strict=True):
                started = time.perf_counter()
                hybrid.search(query, vector)
                timings.append(time.perf_counter() - started)
            print(
                f"{'':<8} {size:>8} {encoded:>8.1f}{'' if real else '*'} "
                f"{statistics.median(timings) * 1000:>9.2f} "
                f"{percentile(timings, 0.95) * 1000:>7.2f} {restart * 1000:>10.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
