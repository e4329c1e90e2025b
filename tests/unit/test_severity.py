import io
import json
from pathlib import Path

import numpy as np
import pytest

from bot.app.container import desk_model
from bot.cli.classify import classify_command
from bot.config import Config, ConfigError, parse_config
from bot.domain.enums import Severity
from bot.domain.severity import SeverityClassifier, SeverityVocabularyError
from bot.domain.severity_model import MODEL_FILE, SeverityModel

CRITICAL, NORMAL, LOW = Severity.CRITICAL, Severity.NORMAL, Severity.LOW
DEV_SET = Path(__file__).resolve().parents[3] / "shared/eval/severity-dev.jsonl"


@pytest.fixture(scope="module")
def classifier() -> SeverityClassifier:
    return SeverityClassifier.from_files()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a whole service is down, calm or not
        ("не работает интернет", CRITICAL),
        ("сервак лежит с утра", CRITICAL),
        ("добрый день, когда будет минутка: у нас 1с ни у кого не запускается", CRITICAL),
        ("у нас весь отдел продаж без связи, телефоны молчат", CRITICAL),
        # security and data
        ("поймали вирус, компьютеры сами перезагружаются", CRITICAL),
        ("с расчетного счета списали 300 тысяч, мы такой платеж не делали", CRITICAL),
        ("пропали все файлы из общей папки", CRITICAL),
        ("база 1с повреждена, не открывается", CRITICAL),
        # the business is blocked
        ("кассы не работают, продавать не можем", CRITICAL),
        # one user, device or module; workaround; slowness; intermittent
        ("не печатает принтер", NORMAL),
        ("принтер печатает полосами", NORMAL),
        ("не работает клавиатура на ноутбуке", NORMAL),
        ("1ска очень медленно работает", NORMAL),
        ("иногда пропадает связь по впн", NORMAL),
        ("почта работает, но письма приходят с задержкой", NORMAL),
        # questions, requests, thanks
        ("как подключить принтер к ноутбуку?", LOW),
        ("нужно завести учетку в 1с новому бухгалтеру", LOW),
        ("спасибо большое, все починили", LOW),
        ("подскажите, у вас есть услуга по резервному копированию?", LOW),
    ],
)
def test_label_rules(classifier: SeverityClassifier, text: str, expected: Severity) -> None:
    assert classifier.classify(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("интернет не пропадает, но иногда тормозит", NORMAL),
        ("вирусов нет, просто продлите антивирус", LOW),
        ("ничего не сломалось, вопрос: можно ли работать из дома?", LOW),
        ("не у всех открывается сайт", NORMAL),
        ("1с не то чтобы не работает, просто медленно", NORMAL),
    ],
)
def test_negation(classifier: SeverityClassifier, text: str, expected: Severity) -> None:
    assert classifier.classify(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("у меня не работает интернет, у коллег все ок", NORMAL),
        ("у меня одной не открывается почта", NORMAL),
        ("почта не открывается ни у кого", CRITICAL),
        ("интренет не работает во всем здании, у всех", CRITICAL),
        ("не только у меня, у всех не печатают кассы", CRITICAL),
        ("на одном компе не открывается 1с", NORMAL),
        ("интернет тормозит у всех", NORMAL),  # slowness stays normal whoever has it
    ],
)
def test_scope(classifier: SeverityClassifier, text: str, expected: Severity) -> None:
    assert classifier.classify(text) == expected


def test_shouting_about_an_invoice_stays_low(classifier: SeverityClassifier) -> None:
    assert classifier.classify("ПОЖАЛУЙСТА СРОЧНО выставьте счет!!!") == LOW
    assert classifier.classify("СРОЧНО!!! не работает мышь") == NORMAL


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Email is down for the whole company", CRITICAL),
        ("Our server crashed and nobody can access shared files", CRITICAL),
        ("We got hit by ransomware, files are encrypted", CRITICAL),
        ("my email account was hacked and is sending spam", CRITICAL),
        ("My monitor keeps flickering", NORMAL),
        ("Excel crashes when I open big files", NORMAL),
        ("Can you install Photoshop on my laptop?", LOW),
        ("Please give Anna access to the finance folder", LOW),
    ],
)
def test_english(classifier: SeverityClassifier, text: str, expected: Severity) -> None:
    assert classifier.classify(text) == expected


def test_wrong_keyboard_layout(classifier: SeverityClassifier) -> None:
    # "не работает 1с никто не может зайти"
    assert classifier.classify("yt hf,jnftn 1c ybrnj yt vj;tn pfqnb") == CRITICAL


def test_typos_are_matched_fuzzily(classifier: SeverityClassifier) -> None:
    assert classifier.classify("шифровалщик на серваке") == CRITICAL
    assert classifier.classify("интернет периодичски отваливается") == NORMAL


def test_explain_names_the_rule_and_cues(classifier: SeverityClassifier) -> None:
    verdict = classifier.explain("во всём офисе нет интернета")
    assert verdict.severity == CRITICAL
    assert verdict.rule == "down for everyone"
    assert {cue.kind for cue in verdict.cues} >= {"scope_wide", "absence_word", "service_core"}


def test_extension_file_adds_terms(tmp_path: Path, classifier: SeverityClassifier) -> None:
    assert classifier.classify("эвотор завис") == NORMAL
    extra = tmp_path / "desk.yaml"
    extra.write_text("cues:\n  service_core: [эвотор]\n", encoding="utf-8")
    assert SeverityClassifier.from_files(extra).classify("эвотор завис") == CRITICAL


@pytest.mark.parametrize(
    ("content", "key", "problem"),
    [
        ("cues: [a, b]\n", "cues", "mapping"),
        ("cues:\n  failure: сломалось\n", "cues.failure", "list of strings"),
        ("cues:\n  failure: [no]\n", "cues.failure[0]", "quote it"),
        ("cues:\n  faliure: [сломалось]\n", "cues.faliure", "unknown cue kind"),
        ("cues:\n  failure: ['* сломалось']\n", "cues.failure[0]", "must not start with"),
        ("cues:\n  failure: ['кто-то*']\n", "cues.failure[0]", "single word"),
        ("phrase_gap: 3\n", "phrase_gap", "unknown key"),
        ("cues: {failure: [\n", "(file)", "not valid YAML"),
    ],
)
def test_broken_vocabulary_names_file_key_and_problem(
    tmp_path: Path, content: str, key: str, problem: str
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(content, encoding="utf-8")
    with pytest.raises(SeverityVocabularyError) as raised:
        SeverityClassifier.from_files(broken)
    assert raised.value.key == key
    assert problem in raised.value.problem
    assert str(broken) in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_classify_command_prints_one_json_line_per_message() -> None:
    stdin = io.StringIO("во всём офисе нет интернета\n\nспасибо!\n")
    stdout = io.StringIO()
    assert classify_command(stdin, stdout, []) == 0
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert lines == [
        {"text": "во всём офисе нет интернета", "severity": "critical"},
        {"text": "спасибо!", "severity": "low"},
    ]
    assert "всём" in stdout.getvalue()  # ensure_ascii=False


@pytest.mark.skipif(not DEV_SET.exists(), reason="shared eval set not available")
def test_dev_set_accuracy_and_critical_recall(classifier: SeverityClassifier) -> None:
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line]
    predicted = [(Severity(row["severity"]), classifier.classify(row["text"])) for row in rows]
    accuracy = sum(gold == got for gold, got in predicted) / len(predicted)
    criticals = [got for gold, got in predicted if gold == CRITICAL]
    assert accuracy >= 0.85
    assert criticals.count(CRITICAL) / len(criticals) >= 0.95


@pytest.mark.parametrize("text", [
    "Не работает интернет во всём офисе, никто не может работать",
    "Mail server is down, nobody in the office can work",
])
def test_being_unable_to_work_is_not_a_partial_outage(
    classifier: SeverityClassifier, text: str
) -> None:
    # "работать" / "work" once matched the partial cue "работаем" and lowered these.
    assert classifier.classify(text) == CRITICAL


def test_the_desks_own_model_is_loaded_and_a_broken_one_named(tmp_path: Path) -> None:
    def config() -> Config:
        return parse_config({"telegram": {"token": "1:x", "staff_chat_id": -1},
                             "severity": {"models": "models"}}, source=tmp_path / "config.toml")

    bundled = SeverityModel.load()
    assert np.allclose(desk_model(config()).weights, bundled.weights)  # none: the bundled one
    (tmp_path / "models").mkdir()
    refitted = SeverityModel(bundled.weights * 2, bundled.bias, bundled.cue_weight,
                             bundled.critical_bias)
    refitted.save(tmp_path / "models" / MODEL_FILE.name)
    assert np.allclose(desk_model(config()).weights, refitted.weights)
    (tmp_path / "models" / MODEL_FILE.name).write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"models/severity-model\.npz: not a severity model"):
        desk_model(config())
