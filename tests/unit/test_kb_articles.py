from pathlib import Path

import pytest

from kb.articles import Article, KBError, dump_articles, load_articles

VALID = """\
- id: vpn-connect
  lang: ru
  question: Не подключается VPN
  alt: [впн не работает из дома]
  answer: |
    1. Проверьте интернет.
    2. Перезапустите VPN-клиент.
  tags: [vpn, remote]
- id: monitor-no-signal
  lang: en
  question: Monitor says "No signal"
  alt: []
  answer: Reconnect the cable.
  tags: []
  image: monitor.png
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_articles_from_a_file(tmp_path: Path) -> None:
    vpn, monitor = load_articles(write(tmp_path, "kb.yaml", VALID))
    assert vpn == Article(
        id="vpn-connect",
        lang="ru",
        question="Не подключается VPN",
        alt=("впн не работает из дома",),
        answer="1. Проверьте интернет.\n2. Перезапустите VPN-клиент.",
        tags=("vpn", "remote"),
    )
    assert monitor.image == "monitor.png"
    assert monitor.alt == ()


def test_loads_every_yaml_file_of_a_folder_in_name_order(tmp_path: Path) -> None:
    one, two = VALID.split("- id: monitor-no-signal")
    write(tmp_path, "b.yml", "- id: monitor-no-signal" + two)
    write(tmp_path, "a.yaml", one)
    write(tmp_path, "notes.txt", "not a KB file")
    assert [a.id for a in load_articles(tmp_path)] == ["vpn-connect", "monitor-no-signal"]


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    articles = load_articles(write(tmp_path, "kb.yaml", VALID))
    exported = tmp_path / "export.yaml"
    dump_articles(articles, exported)
    assert load_articles(exported) == articles
    assert "answer: |" in exported.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (VALID.replace("lang: en", "lang: de"), ":10: article 'monitor-no-signal': field 'lang'"),
        (VALID.replace("id: vpn-connect", "id: VPN_connect"), ":1: article #1: field 'id'"),
        (
            VALID.replace("  question: Не подключается VPN\n", ""),
            ":1: article 'vpn-connect': field 'question': missing",
        ),
        (
            VALID.replace("alt: []", "alt: [ok, 42]"),
            ":12: article 'monitor-no-signal': field 'alt': item 2",
        ),
        (VALID.replace("tags: []", "tags: vpn"), ":14: article 'monitor-no-signal': field 'tags'"),
        (
            VALID.replace("  tags: [vpn, remote]", "  tgas: [vpn]"),
            ":8: article 'vpn-connect': unknown field 'tgas'",
        ),
        (
            VALID.replace("answer: Reconnect the cable.", "answer: ''"),
            ":13: article 'monitor-no-signal': field 'answer'",
        ),
        ("id: x\n", ":1: expected a list of articles"),
        ("- just text\n", ":1: article #1: expected a mapping"),
        (VALID.replace("alt: []", "alt: [unclosed"), ":13: invalid YAML"),
    ],
)
def test_errors_name_file_line_article_and_field(
    tmp_path: Path, broken: str, expected: str
) -> None:
    path = write(tmp_path, "kb.yaml", broken)
    with pytest.raises(KBError) as error:
        load_articles(path)
    assert str(error.value).startswith(str(path))
    assert expected in str(error.value)


def test_duplicate_ids_across_files_are_rejected(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", VALID)
    second = write(tmp_path, "b.yaml", VALID.split("- id: monitor-no-signal")[0])
    with pytest.raises(KBError, match="duplicate id") as error:
        load_articles(tmp_path)
    assert f"{second}:1: article 'vpn-connect'" in str(error.value)
    assert "a.yaml:1" in str(error.value)


def test_missing_file_is_a_kb_error(tmp_path: Path) -> None:
    with pytest.raises(KBError, match="cannot read"):
        load_articles(tmp_path / "absent.yaml")


def test_empty_file_has_no_articles(tmp_path: Path) -> None:
    assert load_articles(write(tmp_path, "kb.yaml", "# nothing yet\n")) == []
