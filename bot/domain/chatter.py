"""A request or chatter? What a client group's message is, when the bot listens to all of
them (`[groups] listen = "all"`, bot/services/groups.py).

A request is a question or a problem someone wants support to act on; chatter is the
rest of a group's life: thanks, "ok", jokes, lunch, greetings. ``RequestClassifier``
decides with a binary logistic regression on the sentence vector (kb/encoder.py) and a
few lexical cues, and with the cues alone (``lexical_is_request``) when the sentence model
is not installed.

Trained on ``EXAMPLES`` (bot/data/chatter-examples.jsonl: our own labelled messages, ru
and en; never the validation set) by ``fit``; the weights ship in bot/data/chatter-model.npz.
``python -m tests.bench.chatter_eval`` prints the cross-validated accuracy (k-fold) and,
with ``--write``, refits the shipped weights on every example.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.encoder import Vectors

DATA = Path(__file__).parents[1] / "data"
MODEL_FILE = DATA / "chatter-model.npz"
EXAMPLES = DATA / "chatter-examples.jsonl"
VECTOR_SCALE = 4.0
PENALTY = 0.01
STEPS = 800
THRESHOLD = 0.5

# Word beginnings that make a message a request: a problem, a question, an ask.
REQUEST_CUES = (
    "не работ", "не могу", "не получа", "не откр", "не запуска", "не груз", "не загруж",
    "не печата", "не прих", "не отправл", "не вид", "не вход", "не подключ", "не включа",
    "не сохраня", "не отвеча", "не проход", "нет доступ", "нет интернет", "нет связи",
    "ошибк", "сломал", "слетел", "завис", "упал", "лежит", "пропал", "тормоз", "глюч",
    "помоги", "помогите", "подскаж", "как мне", "как сделать", "как настро", "как поменя",
    "как подключ", "почему", "можно ли", "можете", "нужно", "нужен", "нужна", "надо",
    "настро", "установ", "сбросить", "сбросьте", "восстанов", "заблокир", "пароль",
    "доступ", "вирус", "проблем", "срочно", "не ", "перестал", "вылета", "мигает",
    "гаснет", "отвалил", "закончил", "спам", "принтер", "сервер", "роутер", "монитор",
    "ноутбук", "компьютер", "почт", "бэкап", "сеть", "интернет", "камер", "телефон", "1с",
    "wi-fi", "vpn", "excel", "outlook", "teams",
    "not working", "doesn't work", "does not work", "isn't working", "won't", "can't",
    "cannot", "unable", "error", "broken", "crash", "stuck", "fails", "failed", "down",
    "help", "how do", "how can", "how to", "why ", "is it possible", "could you",
    "can you", "please", "need ", "issue", "problem", "reset", "install", "access",
    "password", "locked", "urgent", "slow", "missing", "virus", "doesn't", "don't", "not ",
    "stopped", "keeps", "wrong", "out of", "no sound", "printer", "server", "router",
    "monitor", "laptop", "network", "backup", "scanner", "projector", "keyboard", "email",
)
# What makes a message chatter when nothing asks for anything.
CHATTER_CUES = (
    "спасибо", "благодар", "пожалуйста)", "ок", "окей", "хорошо", "понял", "ясно", "ага",
    "ха", "лол", "обед", "кофе", "пицц", "привет", "добр", "доброе утро", "всем пока",
    "до завтра", "с днём", "с днем", "поздрав", "отлично", "супер", "класс", "круто",
    "thanks", "thank you", "thx", "ok", "okay", "got it", "sure", "lol", "haha", "lunch",
    "coffee", "pizza", "hello", "hi ", "good morning", "bye", "see you", "congrat",
    "great", "cool", "nice", "awesome", "happy birthday", "футбол", "game", "не надо",
    "не нужно", "не забуд", "не за что", "само прошло", "never mind", "шучу",
)
# A message that starts so is a thanks or a goodbye, whatever words follow.
CLOSING_STARTS = ("спасибо", "благодар", "thanks", "thank you", "never mind", "уже не надо",
                  "нет, не надо")
CUE_NAMES = ("question_mark", "request_cue", "chatter_cue", "short")
_WORDS = re.compile(r"\w+")

Embed = Callable[[list[str]], Vectors]


@dataclass(frozen=True)
class Example:
    text: str
    request: bool


def load_examples(path: Path = EXAMPLES) -> list[Example]:
    return [Example(record["text"], bool(record["request"]))
            for record in (json.loads(line) for line in
                           path.read_text(encoding="utf-8").splitlines() if line.strip())]


def _normal(text: str) -> str:
    return " " + " ".join(text.casefold().replace("ё", "е").split()) + " "


def _has(text: str, cues: Iterable[str]) -> bool:
    return any((" " + cue) in text for cue in cues)


def cues(text: str) -> list[float]:
    """The lexical features, in ``CUE_NAMES`` order."""
    normal = _normal(text)
    return [float("?" in text), float(_has(normal, REQUEST_CUES)),
            float(_has(normal, CHATTER_CUES)), float(len(_WORDS.findall(text)) <= 3)]


def lexical_is_request(text: str) -> bool:
    """Without the sentence model: a request cue makes a request, and so does a question
    mark with no chatter cue ("кто идёт на обед?"), unless the message is a thanks or a
    short ok ("спасибо, помогло!")."""
    question, request, chatter, short = cues(text)
    if _normal(text).lstrip().startswith(CLOSING_STARTS) and not question:
        return False
    if request:
        return not (chatter and short and not question)
    return bool(question) and not chatter


def features(vectors: Vectors, texts: Sequence[str]) -> np.ndarray:
    lexical = np.array([cues(text) for text in texts], dtype=float).reshape(len(texts), -1)
    return np.hstack([vectors * VECTOR_SCALE, lexical])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))


@dataclass(frozen=True)
class ChatterModel:
    weights: np.ndarray  # (features,)
    bias: float
    threshold: float = THRESHOLD

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """The probability that each row is a request."""
        return _sigmoid(x @ self.weights + self.bias)

    def save(self, path: Path = MODEL_FILE) -> None:
        np.savez(path, weights=self.weights.astype(np.float32), bias=self.bias,
                 threshold=self.threshold, cues=np.array(CUE_NAMES))

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> ChatterModel:
        with np.load(path, allow_pickle=False) as data:
            if tuple(data["cues"].tolist()) != CUE_NAMES:
                raise ValueError(f"{path}: fitted on other cues than {CUE_NAMES}")
            return cls(data["weights"].astype(np.float64), float(data["bias"]),
                       float(data["threshold"]))


def fit(x: np.ndarray, labels: Sequence[bool], *, penalty: float = PENALTY,
        steps: int = STEPS) -> ChatterModel:
    """Logistic regression, full-batch gradient descent, L2 penalty."""
    y = np.array(labels, dtype=float)
    weights = np.zeros(x.shape[1])
    bias = 0.0
    for _ in range(steps):
        gradient = (_sigmoid(x @ weights + bias) - y) / len(y)
        weights -= x.T @ gradient + penalty * weights
        bias -= float(gradient.sum())
    return ChatterModel(weights, bias)


def fit_examples(embed: Embed, examples: Sequence[Example], **options: float) -> ChatterModel:
    texts = [e.text for e in examples]
    return fit(features(embed(texts), texts), [e.request for e in examples],
               **options)  # type: ignore[arg-type]


class RequestClassifier:
    """The model on the message's vector; the lexical cues alone without the model."""

    def __init__(self, model: ChatterModel | None, embed: Embed | None) -> None:
        self.model = model if embed is not None else None
        self.embed = embed

    def is_request(self, text: str) -> bool:
        return self.classify_many([text])[0]

    def classify_many(self, texts: Sequence[str]) -> list[bool]:
        if self.model is None or self.embed is None:
            return [lexical_is_request(text) for text in texts]
        x = features(self.embed(list(texts)), texts)
        return [bool(p >= self.model.threshold) for p in self.model.probabilities(x)]
