"""The sentence model in the bot: one encoder per process, never run on the event loop.

`Semantic` owns the shared encoder (kb/encoder.py), a bounded cache of message vectors and
the cache of article vectors (persisted when `[kb] vector_cache` names a file). Encoding
runs in one worker thread with micro-batching: what callers ask for while a batch is being
encoded goes together into the next batch.

The unit of work (bot/telegram/middleware.py) calls `prepare` with an update's text
*before* it opens the transaction, so the classifier and the FAQ search inside it find the
vector in the cache: no encoding on the loop and none while the database's write lock is
held. A vector missing all the same (an update that did not go through the middleware) is
encoded on the spot, which costs a few milliseconds and is logged at debug level.

Without the model (`available` is False) every method is a no-op and the callers work
lexically; `status` says why for /health.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from bot.domain.clock import Clock
from bot.domain.flood import take
from kb.encoder import DIMENSION, Encoder, Vectors, encoder, unavailable_reason
from kb.semantic import VectorCache

log = logging.getLogger(__name__)

QUERY_CACHE = 4096  # message vectors kept (a message is classified and searched once or twice)
BATCH = 32  # texts per encoder call at most
# What of a message is encoded: a client's meaning is in its start, and the encoder's cost
# grows with the length (a 4,000-letter word must not hold the worker thread).
MAX_ENCODED_CHARS = 1000
T = TypeVar("T")


class Semantic:
    def __init__(self, model: Encoder | None, *, reason: str | None = None,
                 vector_cache: Path | None = None) -> None:
        self.model = model
        self.reason = reason
        self.queries: VectorCache | None = None
        self.articles: VectorCache | None = None
        if model is not None:
            self.queries = VectorCache(model, capacity=QUERY_CACHE)
            self.articles = VectorCache(model, path=vector_cache)
            self.articles.load()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="encoder")
        self._queue: list[str] = []
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # encoder calls made for messages (tests check the batching)

    @classmethod
    def shared(cls, vector_cache: Path | None = None) -> Semantic:
        """With the process's encoder (loaded once); without it if it cannot be loaded."""
        model = encoder()
        return cls(model, reason=unavailable_reason(), vector_cache=vector_cache)

    @property
    def available(self) -> bool:
        return self.model is not None

    @property
    def status(self) -> str:
        if self.model is not None:
            return f"on: {self.model.name}"
        return f"off ({self.reason or 'not loaded'}): FAQ and severity by words only"

    # -- messages -----------------------------------------------------------------------

    async def prepare(self, texts: Sequence[str]) -> None:
        """Encode these texts in the worker thread (batched with whatever else is asked for
        meanwhile) so that `vectors` finds them cached."""
        if self.queries is None:
            return
        texts = [t[:MAX_ENCODED_CHARS] for t in texts]
        missing = [t for t in self.queries.missing(texts) if t.strip()]
        if not missing:
            return
        loop = asyncio.get_running_loop()
        waiters = []
        for text in missing:
            future = self._waiting.get(text)
            if future is None:
                future = self._waiting[text] = loop.create_future()
                self._queue.append(text)
            waiters.append(future)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        await asyncio.gather(*waiters)

    async def _flush(self) -> None:
        assert self.model is not None and self.queries is not None
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
            try:
                vectors = await loop.run_in_executor(self._executor, self.model.encode, batch)
            except Exception as error:
                log.exception("Sentence model: encoding failed")
                for text in batch:
                    self._waiting.pop(text).set_exception(error)
                continue
            self.batches += 1
            self.queries.put(batch, vectors)
            for text in batch:
                self._waiting.pop(text).set_result(None)

    def vectors(self, texts: Sequence[str]) -> Vectors:
        """Message vectors, from the cache `prepare` filled (encoded here if missing)."""
        if self.queries is None:
            return np.zeros((len(texts), DIMENSION), dtype=np.float32)
        texts = [t[:MAX_ENCODED_CHARS] for t in texts]
        missing = self.queries.missing(texts)
        if missing:
            log.debug("Sentence model: %d text(s) encoded outside the worker", len(missing))
        return self.queries.vectors(texts)

    def cached(self, texts: Sequence[str]) -> Vectors | None:
        """Message vectors if `prepare` made every one of them, else None: for a caller
        inside a transaction that must not encode (it works on words then)."""
        if self.queries is None:
            return None
        texts = [t[:MAX_ENCODED_CHARS] for t in texts]
        if self.queries.missing(texts):
            return None
        return self.queries.vectors(texts)

    # -- articles -----------------------------------------------------------------------

    async def run(self, work: Callable[[], T]) -> T:
        """Run `work` (which encodes) in the encoder's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class EncodeBudget:
    """How many of one sender's messages are encoded ahead of their transaction: the
    client's own flood limit ([limits]), kept in memory. The encoder's thread is shared by
    every client, and a message over the limit only joins an incident already open (the
    desk holds it: bot/services/desk.py `hold`), where no vector is read; a flooder must not
    take the encoder from everyone else (1,250 messages in a minute once cost a minute of
    CPU). The rare message over the budget that opens an incident after all is encoded
    when the desk asks for it, as any message that was not prepared."""

    KEPT = 10_000  # senders remembered; past it, those whose bucket is full again go

    def __init__(self, per_minute: float, burst: int, clock: Clock) -> None:
        self._per_minute = per_minute
        self._burst = burst
        self._clock = clock
        self._buckets: dict[int, tuple[float, datetime]] = {}

    def __len__(self) -> int:
        """Senders remembered."""
        return len(self._buckets)

    def admit(self, sender: int) -> bool:
        now = self._clock()
        tokens, at = self._buckets.get(sender, (None, None))
        admitted, bucket = take(tokens, at, now, self._per_minute, self._burst)
        self._buckets[sender] = (bucket.tokens, now)
        if len(self._buckets) > self.KEPT:
            self._forget_rested(now)
        return admitted

    def _forget_rested(self, now: datetime) -> None:
        refill = self._burst * 60.0 / self._per_minute  # seconds from empty to full
        self._buckets = {sender: (tokens, at) for sender, (tokens, at) in self._buckets.items()
                         if (now - at).total_seconds() < refill}
