"""Request or chatter (bot/domain/chatter.py): k-fold cross-validation on our own labelled
examples (bot/data/chatter-examples.jsonl, ru and en).

.venv/bin/python tests/bench/chatter_eval.py [--folds 10] [--write] [--verbose]

Prints the accuracy of the model (sentence vector + cues, refitted on k-1 folds and scored
on the k-th), of the lexical fallback alone (what runs without the sentence model), and
the request recall and chatter precision of each. `--write` refits the shipped weights
(bot/data/chatter-model.npz) on every example afterwards; `--verbose` lists the misses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.domain.chatter import (
    CUE_NAMES,
    MODEL_FILE,
    Example,
    features,
    fit,
    lexical_is_request,
    load_examples,
)
from kb.encoder import encoder

SEED = 18


def folds_of(count: int, folds: int) -> list[np.ndarray]:
    order = np.random.default_rng(SEED).permutation(count)
    return [order[i::folds] for i in range(folds)]


def cross_validated(x: np.ndarray, gold: list[bool], folds: int) -> np.ndarray:
    """Each example's verdict by the model fitted on the folds without it."""
    y = np.array(gold)
    predicted = np.zeros(len(gold), dtype=bool)
    for test in folds_of(len(gold), folds):
        train = np.setdiff1d(np.arange(len(gold)), test)
        fitted = fit(x[train], y[train].tolist())
        predicted[test] = fitted.probabilities(x[test]) >= fitted.threshold
    return predicted


def scores(gold: list[bool], got: list[bool]) -> str:
    pairs = list(zip(gold, got, strict=True))
    accuracy = sum(g == p for g, p in pairs) / len(pairs)
    requests = [p for g, p in pairs if g]
    recall = sum(requests) / len(requests)
    said_chatter = [g for g, p in pairs if not p]
    precision = sum(not g for g in said_chatter) / len(said_chatter) if said_chatter else 1.0
    return (f"accuracy {accuracy:.3f}  request recall {recall:.3f}  "
            f"chatter precision {precision:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    examples: list[Example] = load_examples()
    gold = [e.request for e in examples]
    texts = [e.text for e in examples]
    print(f"{len(examples)} examples: {sum(gold)} requests, {len(gold) - sum(gold)} chatter; "
          f"{args.folds}-fold cross-validation")
    lexical = [lexical_is_request(t) for t in texts]
    print(f"lexical fallback   {scores(gold, lexical)}  (in-sample: its cues were written "
          "with these examples in view)")
    model = encoder()
    if model is None:
        print("the sentence model is not installed: no model figures")
        return 0
    x = features(model.encode(texts), texts)
    predicted = cross_validated(x, gold, args.folds)
    print(f"model (cross-val)  {scores(gold, predicted.tolist())}")
    # The cues were written with every example in view, so the figure above flatters them
    # a little: the vector alone is the estimate no example helped to shape.
    vector_only = cross_validated(x[:, :-len(CUE_NAMES)], gold, args.folds)
    print(f"vector alone (cv)  {scores(gold, vector_only.tolist())}")
    if args.verbose:
        for text, g, p in zip(texts, gold, predicted.tolist(), strict=True):
            if g != p:
                print(f"  miss: {'request' if g else 'chatter'} taken for "
                      f"{'request' if p else 'chatter'}: {text}")
    if args.write:
        fit(x, gold).save(MODEL_FILE)
        print(f"refitted on every example: {MODEL_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
