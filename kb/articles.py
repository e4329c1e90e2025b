"""FAQ articles: the YAML file format, loading with precise errors, and export.

A KB file is a YAML list of articles::

    - id: vpn-connect          # unique lowercase slug
      lang: ru                 # ru | en
      question: Не подключается VPN к офису
      alt: [VPN не работает из дома]   # other phrasings (optional)
      answer: |
        1. Проверьте интернет...
      tags: [vpn, network]     # optional
      image: vpn.png           # optional screenshot

Errors name the file, the line, the article (id, or position when the id
itself is unusable) and the field, so whoever edits the KB can fix it fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("ru", "en")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_REQUIRED = ("id", "lang", "question", "answer")
_FIELDS = ("id", "lang", "question", "alt", "answer", "tags", "image")


class KBError(ValueError):
    """A knowledge-base file is unreadable or an article in it is invalid."""


@dataclass(frozen=True)
class Article:
    id: str
    lang: str
    question: str
    alt: tuple[str, ...]
    answer: str
    tags: tuple[str, ...] = field(default=())
    image: str | None = None


# Images that are no file of ours: Telegram's file ids and web addresses.
REMOTE_IMAGE = ("tg:", "http://", "https://")


def image_file(image: str, roots: Sequence[Path]) -> Path | None:
    """The file an article's `image` names, resolved (links followed) inside one of the
    `roots` (the KB folder, the media folder); None when it is outside all of them: a
    KB file cannot make the bot upload /etc/passwd."""
    for root in roots:
        base = root.resolve()
        candidate = (base / image).resolve()
        if candidate.is_relative_to(base):
            return candidate
    return None


def image_roots(path: Path | None, media: Path | None) -> list[Path]:
    """The folders article images may be in: the KB folder (`path` itself, or the folder of
    a single file) and `media`."""
    roots = [None if path is None else path if path.is_dir() else path.parent, media]
    return [root for root in roots if root is not None]


def read_kb(path: Path | None, media: Path | None) -> list[Article]:
    """The articles of the `[kb] path` files (none without one), images checked against
    `image_roots`; a missing path or a broken file raises KBError."""
    if path is None:
        return []
    if not path.exists():
        raise KBError(f"{path}: no such file or folder (the [kb] path setting)")
    return load_articles(path, image_roots(path, media))


def load_articles(path: Path, image_roots: Sequence[Path] | None = None) -> list[Article]:
    """Load one YAML file, or every ``*.yaml``/``*.yml`` file in a folder (in
    name order). Raises ``KBError`` on any problem, ids duplicated across files
    included, and (given `image_roots`) an image outside those folders."""
    files = (
        sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        if path.is_dir()
        else [path]
    )
    articles: list[Article] = []
    seen: dict[str, str] = {}
    for file in files:
        for article, where in _load_file(file):
            if article.id in seen:
                raise KBError(
                    f"{where}: field 'id': duplicate id, first defined at {seen[article.id]}"
                )
            seen[article.id] = where
            image = article.image
            if (image_roots is not None and image and not image.startswith(REMOTE_IMAGE)
                    and image_file(image, image_roots) is None):
                folders = " or ".join(str(root) for root in image_roots) or "(none: [kb] path)"
                raise KBError(f"{where}: field 'image': {image!r} is outside the KB folder "
                              f"({folders}); put the picture there and name it relative to it")
            articles.append(article)
    return articles


def _load_file(file: Path) -> list[tuple[Article, str]]:
    """Articles of one file, each with its location ``file:line: article 'id'``."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KBError(f"{file}: cannot read: {exc}") from exc
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return []
        if not isinstance(root, yaml.SequenceNode):
            raise KBError(f"{file}:{_line(root)}: expected a list of articles, got {_kind(root)}")
        return [_parse_article(loader, file, index, node) for index, node in enumerate(root.value)]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise KBError(f"{file}{line}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _parse_article(
    loader: yaml.SafeLoader, file: Path, index: int, node: yaml.Node
) -> tuple[Article, str]:
    label = f"article #{index + 1}"
    if not isinstance(node, yaml.MappingNode):
        raise KBError(f"{file}:{_line(node)}: {label}: expected a mapping, got {_kind(node)}")
    fields: dict[str, tuple[Any, yaml.Node]] = {}
    unknown: list[tuple[Any, yaml.Node]] = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in _FIELDS:
            fields[key] = (loader.construct_object(value_node, deep=True), value_node)
        else:
            unknown.append((key, key_node))

    def fail(name: str, problem: str) -> KBError:
        line = _line(fields[name][1]) if name in fields else _line(node)
        return KBError(f"{file}:{line}: {label}: field {name!r}: {problem}")

    def text(name: str) -> str:
        value = fields[name][0]
        if not isinstance(value, str) or not value.strip():
            raise fail(name, f"expected non-empty text, got {value!r}")
        return value.strip()

    def texts(name: str) -> tuple[str, ...]:
        value = fields.get(name, ([], node))[0]
        if not isinstance(value, list):
            raise fail(name, f"expected a list of texts, got {value!r}")
        for position, item in enumerate(value, 1):
            if not isinstance(item, str) or not item.strip():
                raise fail(name, f"item {position}: expected non-empty text, got {item!r}")
        return tuple(item.strip() for item in value)

    if "id" not in fields:
        raise fail("id", "missing")
    article_id = text("id")
    if not _SLUG.match(article_id):
        raise fail("id", f"{article_id!r} is not a lowercase slug like 'vpn-connect'")
    label = f"article {article_id!r}"
    if unknown:
        key, key_node = unknown[0]
        raise KBError(
            f"{file}:{_line(key_node)}: {label}: unknown field {key!r} "
            f"(allowed: {', '.join(_FIELDS)})"
        )
    for name in _REQUIRED:
        if name not in fields:
            raise fail(name, "missing")
    lang = text("lang")
    if lang not in LANGUAGES:
        raise fail("lang", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
    image = fields.get("image", (None, node))[0]
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise fail("image", f"expected a file name, got {image!r}")
    article = Article(
        id=article_id,
        lang=lang,
        question=text("question"),
        alt=texts("alt"),
        answer=text("answer"),
        tags=texts("tags"),
        image=image.strip() if image else None,
    )
    return article, f"{file}:{_line(node)}: {label}"


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}"


class _ArticleDumper(yaml.SafeDumper):
    """Writes multi-line texts (answers) as readable ``|`` blocks."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ArticleDumper.add_representer(str, _represent_text)


def dump_articles(articles: Iterable[Article], path: Path) -> None:
    """Write articles to one YAML file in the format ``load_articles`` reads."""
    records = []
    for article in articles:
        record: dict[str, Any] = {
            "id": article.id,
            "lang": article.lang,
            "question": article.question,
            "alt": list(article.alt),
            "answer": article.answer + "\n",
            "tags": list(article.tags),
        }
        if article.image is not None:
            record["image"] = article.image
        records.append(record)
    path.write_text(
        yaml.dump(records, Dumper=_ArticleDumper, allow_unicode=True, sort_keys=False, width=100),
        encoding="utf-8",
    )
