from pathlib import Path

import pytest

from kb.text import (
    STOPWORDS,
    Synonyms,
    fix_layout,
    fix_translit,
    normalize,
    stem,
    stems,
    tokens,
)


def test_normalize_folds_case_yo_and_punctuation() -> None:
    assert normalize("  Wi-Fi  НЕ работает!!! Ёлка, 1С… ") == "wi fi не работает елка 1с"


def test_tokens_keep_digits_and_both_scripts() -> None:
    assert tokens("Ошибка 651 (PPPoE)") == ["ошибка", "651", "pppoe"]


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("yt hf,jnftn", "не работает"),
        ("ytn bynthytnf.", "нет интернета"),
        ("ghbynth yt gtxfnftn", "принтер не печатает"),
        ("ьщтшещк", "monitor"),
    ],
)
def test_fix_layout_recovers_wrong_keyboard_layout(wrong: str, right: str) -> None:
    assert fix_layout(wrong) == right


@pytest.mark.parametrize("text", ["hi there", "test", "не работает принтер", "VPN", "ok"])
def test_fix_layout_leaves_plausible_text_alone(text: str) -> None:
    assert fix_layout(text) is None


def test_fix_layout_uses_the_given_vocabulary() -> None:
    typed = "rjatvfibyf ckjvfkfcm"  # "кофемашина сломалась": not in the bundled lists
    assert fix_layout(typed) is None
    vocabulary = {stem("кофемашина"), stem("сломалась")}
    assert fix_layout(typed, vocabulary) == "кофемашина сломалась"


def test_fix_translit() -> None:
    vocabulary = {stem(word) for word in ("пускает", "пишет", "начало", "сеанса")}
    fixed = fix_translit("1c ne puskaet, pishet nachalo seansa", vocabulary)
    assert fixed == "1c не пускает пишет начало сеанса"
    assert fix_translit("my mouse stopped working", vocabulary) is None


def test_stem_picks_the_language_by_script() -> None:
    assert stem("принтера") == stem("принтер")
    assert stem("passwords") == stem("password")
    assert stem("651") == "651"


def test_stopwords_include_greetings_and_function_words() -> None:
    assert {"и", "не", "the", "спасибо", "здравствуйте", "hi"} <= STOPWORDS
    assert stems("Здравствуйте! Спасибо, пожалуйста") == []


def test_bundled_synonyms_map_slang_abbreviations_and_english() -> None:
    assert stems("инет") == stems("интернет")
    assert stems("1ска") == stems("1ску") == stems("1с-ка") == stems("1С")
    assert stems("впн") == stems("VPN")
    assert stems("принтак") == stems("принтер") == stems("printer")
    assert stems("вайфай") == stems("wifi") == stems("Wi-Fi")
    assert stems("комп") == stems("компьютер")
    assert stems("passwords") == stems("пароль")


def test_synonyms_match_phrases_and_inflections() -> None:
    synonyms = Synonyms({"rdp": ["удаленный рабочий стол"], "ноутбук": ["ноут"]})
    assert synonyms.apply(["к", "удаленному", "рабочему", "столу"]) == ["к", "rdp"]
    assert synonyms.apply(["ноута", "стол"]) == ["ноутбук", "стол"]


def test_synonyms_reject_a_variant_of_two_words(tmp_path: Path) -> None:
    extra = tmp_path / "desk.yaml"
    extra.write_text("интернет: [сеть]\nлокалка: [сеть]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="сеть"):
        Synonyms.load(extra, bundled=False)


def test_desk_synonym_file_extends_the_bundled_list(tmp_path: Path) -> None:
    extra = tmp_path / "desk.yaml"
    extra.write_text("egais: [егаис, utm, утм]\n", encoding="utf-8")
    synonyms = Synonyms.load(extra)
    assert stems("утм не отвечает", synonyms) == stems("EGAIS не отвечает", synonyms)
    assert stems("инет", synonyms) == stems("интернет", synonyms)
