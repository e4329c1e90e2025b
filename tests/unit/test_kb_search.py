import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.cli.kb_search import search_command
from kb.articles import Article
from kb.index import SearchIndex


def article(
    article_id: str, question: str, *alt: str, lang: str = "ru", tags: tuple[str, ...] = ()
) -> Article:
    return Article(article_id, lang, question, alt, answer="...", tags=tags)


ARTICLES = [
    article("vpn-connect", "Не подключается VPN к офису", "VPN не работает из дома", tags=("vpn",)),
    article("internet-down", "Нет интернета во всём офисе", "в офисе пропал интернет"),
    article("printer-offline", "Принтер не печатает", "застряла бумага в принтере"),
    article("pppoe-651", "Ошибка 651 при подключении PPPoE", "модем пишет ошибку 651"),
    article(
        "error-generic", "Программа выдаёт ошибку при запуске", "ошибка при открытии программы"
    ),
    article(
        "keyboard-mouse", "Keyboard or mouse is not working", "mouse cursor doesn't move", lang="en"
    ),
]


@pytest.fixture
def index() -> SearchIndex:
    return SearchIndex(ARTICLES)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("впн не подключаеться из дома", "vpn-connect"),  # slang + typo
        ("в офисе нет инета ни у кого", "internet-down"),  # slang
        ("принтак не печатает", "printer-offline"),
        ("ghbynth yt gtxfnftn", "printer-offline"),  # wrong keyboard layout
        ("мышка не работает", "keyboard-mouse"),  # Russian query, English article
        ("при подключении ошибка 651", "pppoe-651"),  # the rare code decides
    ],
)
def test_finds_the_article(index: SearchIndex, query: str, expected: str) -> None:
    hits = index.search(query)
    assert hits and hits[0].id == expected
    assert all(0 <= hit.score <= 1 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


@pytest.mark.parametrize(
    "query",
    ["добрый день", "спасибо, всё заработало!", "hi there", "??", "ок", "", "сломалась кофемашина"],
)
def test_suggests_nothing_for_greetings_thanks_and_off_topic(
    index: SearchIndex, query: str
) -> None:
    assert index.search(query) == []


def test_threshold_is_a_constructor_argument() -> None:
    query = "ошибка"
    assert SearchIndex(ARTICLES, min_score=0.0).search(query)
    assert SearchIndex(ARTICLES, min_score=1.0).search(query) == []


def test_limit(index: SearchIndex) -> None:
    assert len(SearchIndex(ARTICLES, min_score=0.0).search("ошибка при подключении", limit=2)) == 2


def test_incremental_add_remove_replace(index: SearchIndex) -> None:
    query = "в егаис не уходят накладные"
    assert index.search(query) == []
    egais = article("egais", "ЕГАИС не отправляет накладные", "УТМ не отвечает")
    index.add(egais)
    assert index.search(query)[0].id == "egais"
    with pytest.raises(ValueError, match="already indexed"):
        index.add(egais)

    index.replace(article("egais", "Касса не печатает чек"))
    assert index.search(query) == []
    assert index.search("касса не печатает чек")[0].id == "egais"

    assert index.remove("egais").id == "egais"
    assert "egais" not in index and len(index) == len(ARTICLES)
    assert index.search("касса не печатает чек") == []
    with pytest.raises(KeyError):
        index.remove("egais")


def test_search_command_prints_one_json_line_per_query(tmp_path: Path) -> None:
    kb = tmp_path / "kb.yaml"
    kb.write_text(
        "- id: printer-offline\n  lang: ru\n"
        "  question: Принтер не печатает\n  answer: Перезагрузите.\n",
        encoding="utf-8",
    )
    stdout = io.StringIO()
    code = search_command(kb, io.StringIO("принтер не печатает\nдобрый день\n"), stdout)
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert code == 0
    assert lines[0]["q"] == "принтер не печатает"
    assert [r["id"] for r in lines[0]["results"]] == ["printer-offline"]
    assert lines[1] == {"q": "добрый день", "results": []}


def test_search_command_reports_kb_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = tmp_path / "kb.yaml"
    kb.write_text("- id: x\n  lang: ru\n", encoding="utf-8")
    assert search_command(kb, io.StringIO("q\n"), io.StringIO()) == 2
    assert "kb.yaml:1: article 'x'" in capsys.readouterr().err


def _faq_eval_module() -> ModuleType:
    """The bench script, so the test measures exactly what the bench reports."""
    path = Path(__file__).resolve().parents[1] / "bench" / "faq_eval.py"
    spec = importlib.util.spec_from_file_location("faq_eval", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while loading
    spec.loader.exec_module(module)
    return module


def test_dev_set_quality() -> None:
    faq_eval = _faq_eval_module()
    eval_dir = faq_eval.default_eval_dir()
    if not (eval_dir / "faq-dev.jsonl").exists():
        pytest.skip(f"no shared eval set at {eval_dir}")
    report = faq_eval.evaluate_index(eval_dir / "kb-dev.yaml", eval_dir / "faq-dev.jsonl")
    assert report.accuracy >= 0.85
    assert report.false_suggestions <= 0.10
