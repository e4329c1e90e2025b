"""Request or chatter (bot/domain/chatter.py): the lexical fallback, the fit, the shipped
model on messages that are not among its examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.domain.chatter import (
    CUE_NAMES,
    MODEL_FILE,
    ChatterModel,
    RequestClassifier,
    cues,
    fit,
    lexical_is_request,
    load_examples,
)
from kb.encoder import encoder

# Not in bot/data/chatter-examples.jsonl: what the model has never seen.
UNSEEN_REQUESTS = [
    "Не работает сканер в отделе кадров",
    "подскажите, как войти в личный кабинет поставщика?",
    "Outlook crashes every time I attach a file",
    "Нужен доступ к базе клиентов для нового менеджера",
]
UNSEEN_CHATTER = [
    "Всем хорошего вечера!",
    "спасибо, коллеги",
    "see you all on Monday",
    "Ура, зарплата пришла",
]


@pytest.mark.parametrize("text", UNSEEN_REQUESTS)
def test_the_lexical_fallback_takes_a_problem_for_a_request(text: str) -> None:
    assert lexical_is_request(text)


@pytest.mark.parametrize("text", [*UNSEEN_CHATTER, "", "👍", "ок", "Кто идёт на обед?"])
def test_the_lexical_fallback_leaves_chatter(text: str) -> None:
    assert not lexical_is_request(text)


def test_a_thanks_is_chatter_but_a_thanks_with_a_new_problem_is_not() -> None:
    assert not lexical_is_request("Спасибо, всё заработало!")
    assert lexical_is_request("Спасибо, но почта опять не работает?")


def test_without_the_sentence_model_the_words_decide() -> None:
    classifier = RequestClassifier(ChatterModel.load(), None)
    assert classifier.model is None
    assert classifier.classify_many(["Не печатает принтер", "Всем привет"]) == [True, False]


def test_the_fit_separates_what_it_is_shown() -> None:
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(1, 0.3, (20, 3)), rng.normal(-1, 0.3, (20, 3))])
    model = fit(x, [True] * 20 + [False] * 20)
    assert ((model.probabilities(x) >= 0.5) == np.array([True] * 20 + [False] * 20)).all()


def test_the_model_file_round_trips_and_refuses_other_cues(tmp_path: Path) -> None:
    model = ChatterModel(np.arange(3, dtype=float), 0.5, 0.4)
    model.save(tmp_path / "m.npz")
    loaded = ChatterModel.load(tmp_path / "m.npz")
    assert loaded.bias == 0.5 and loaded.threshold == pytest.approx(0.4)
    np.savez(tmp_path / "old.npz", weights=model.weights, bias=0.0, threshold=0.5,
             cues=np.array(["question_mark"]))
    with pytest.raises(ValueError, match="other cues"):
        ChatterModel.load(tmp_path / "old.npz")


def test_the_shipped_model_fits_the_encoder_and_the_cues() -> None:
    model = ChatterModel.load(MODEL_FILE)
    assert model.weights.shape == (512 + len(CUE_NAMES),)
    assert len(cues("не работает?")) == len(CUE_NAMES)
    examples = load_examples()
    assert {e.request for e in examples} == {True, False}
    assert len(examples) >= 200


@pytest.mark.skipif(encoder() is None, reason="the sentence model is not installed")
def test_the_shipped_model_on_messages_it_never_saw() -> None:
    model = encoder()
    assert model is not None
    classifier = RequestClassifier(ChatterModel.load(), model.encode)
    assert classifier.classify_many(UNSEEN_REQUESTS) == [True] * len(UNSEEN_REQUESTS)
    assert classifier.classify_many(UNSEEN_CHATTER) == [False] * len(UNSEEN_CHATTER)
