"""The sentence model's plumbing without the model: a fake encoder (deterministic vectors)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bot.domain.severity import SeverityClassifier
from bot.domain.severity_model import SemanticSeverity, SeverityModel
from bot.services.semantic import EncodeBudget, Semantic
from kb.articles import Article
from kb.encoder import DIMENSION, Vectors
from kb.semantic import SemanticIndex, VectorCache


class FakeEncoder:
    name = "fake"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.threads: set[str] = set()

    def encode(self, texts: list[str]) -> Vectors:
        self.calls.append(list(texts))
        self.threads.add(threading.current_thread().name)
        rows = []
        for text in texts:
            vector = np.random.default_rng(abs(hash(text)) % 2**32).normal(size=DIMENSION)
            rows.append(vector / np.linalg.norm(vector))
        return np.array(rows, dtype=np.float32)


def article(article_id: str, question: str) -> Article:
    return Article(id=article_id, lang="ru", question=question, alt=(), answer="Ответ.")


def test_vectors_persist_by_text_hash(tmp_path: Path) -> None:
    path = tmp_path / "vectors.npz"
    fake = FakeEncoder()
    cache = VectorCache(fake, path=path)
    first = cache.vectors(["один", "два"])
    cache.save()
    again = VectorCache(fake, path=path)
    again.load()
    assert len(again) == 2 and "один" in again
    assert np.allclose(again.vectors(["два"])[0], first[1], atol=1e-3)
    assert len(fake.calls) == 1  # nothing encoded twice


def test_articles_are_encoded_incrementally() -> None:
    fake = FakeEncoder()
    index = SemanticIndex(VectorCache(fake))
    index.set_many([article("a", "Первый вопрос"), article("b", "Второй вопрос")])
    # set_many only records; the answer both share ("Ответ.") is one text to encode
    assert not fake.calls and len(index.pending()) == 5
    assert index.encode_pending() == 5
    index.set(article("b", "Второй вопрос, исправленный"))
    assert index.pending() == ["Второй вопрос, исправленный",
                               "Второй вопрос, исправленный\nОтвет."]
    index.encode_pending()
    query = VectorCache(fake).vectors(["Первый вопрос"])[0]
    ids, positions, scores = index.scores(query)
    assert set(ids) == {"a", "b"} and scores[positions["a"]] > 0.99


async def test_messages_are_encoded_in_one_worker_thread_in_batches() -> None:
    fake = FakeEncoder()
    semantic = Semantic(fake)
    try:
        texts = [f"сообщение {n}" for n in range(10)]
        await asyncio.gather(*(semantic.prepare([text]) for text in texts))
        assert semantic.batches <= 2 and sum(map(len, fake.calls)) == 10
        assert threading.main_thread().name not in fake.threads
        calls = len(fake.calls)
        semantic.vectors(texts)  # cached: no encoding here
        assert len(fake.calls) == calls
    finally:
        semantic.close()


def test_without_the_model_the_rules_decide() -> None:
    rules = SeverityClassifier.from_files()
    classifier = SemanticSeverity(rules, SeverityModel.load(), None)
    text = "В офисе ни у кого нет интернета"
    assert classifier.explain(text) == rules.explain(text)
    assert not Semantic(None, reason="test").available


def test_one_sender_gets_the_encoder_for_their_flood_limit_only() -> None:
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    moment = [now]
    budget = EncodeBudget(per_minute=20, burst=5, clock=lambda: moment[0])
    assert [budget.admit(1) for _ in range(7)] == [True] * 5 + [False] * 2
    assert budget.admit(2)  # another client is not held up by the first one's flood
    moment[0] = now + timedelta(seconds=3)  # 20 a minute: one more after 3 s
    assert [budget.admit(1) for _ in range(2)] == [True, False]


def test_the_budget_forgets_senders_who_rested() -> None:
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    moment = [now]
    budget = EncodeBudget(per_minute=60, burst=2, clock=lambda: moment[0])
    for sender in range(EncodeBudget.KEPT):
        budget.admit(sender)
    moment[0] = now + timedelta(minutes=5)
    budget.admit(-1)
    assert len(budget) == 1


def test_security_words_are_a_rule_whatever_the_model_says() -> None:
    rules = SeverityClassifier.from_files()
    width = SeverityModel.load().weights.shape[0]
    sure_low = SemanticSeverity(rules, SeverityModel(np.zeros((width, 3)), np.array([0, 0, 6.0])),
                                FakeEncoder().encode)  # a model that says "low" for every text
    report = "Нас взломали, с почты директора рассылают письма"
    assert sure_low.explain(report).rule.startswith("rule: ")
    assert sure_low.classify_many([report, "Как поменять пароль от почты?"]) == ["critical", "low"]


def test_a_run_of_letters_longer_than_any_word_is_read_by_its_start() -> None:
    from kb.encoder import DIMENSION, WORD_LETTERS, UsemEncoder, clip_words

    text = "не работает https://example.com/путь/к/файлу"
    assert clip_words(text) == text
    assert clip_words("vpn " + "а" * 4000 + " ошибка") == "vpn " + "а" * WORD_LETTERS + " ошибка"

    class Model:  # what the package's model is given
        def __init__(self) -> None:
            self.read: list[str] = []

        def encode(self, texts: list[str]) -> np.ndarray:
            self.read.extend(texts)
            return np.ones((len(texts), DIMENSION), dtype=np.float32)

    model = Model()
    UsemEncoder(model).encode(["vpn " + "а" * 4000])
    assert model.read == ["vpn " + "а" * WORD_LETTERS]
