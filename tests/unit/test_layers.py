"""The layers of docs/ARCHITECTURE.md, kept: a module imports only the layers it may.

Every import is read from the source (those inside functions and under TYPE_CHECKING too),
so a lazy import cannot slip a forbidden arrow past the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Layer -> the project layers it may import (itself always allowed). Third-party packages
# are free except those named in FORBIDDEN_THIRD_PARTY.
ALLOWED: dict[str, set[str]] = {
    "kb": set(),
    "bot.domain": {"bot.config", "kb"},
    "bot.config": {"bot.domain"},
    "storage": {"bot.domain"},
    "bot.messaging": {"bot.domain", "bot.config", "storage"},
    "bot.services": {"bot.domain", "bot.config", "bot.messaging", "storage", "kb"},
    "bot.telegram": {"bot.domain", "bot.config", "bot.messaging", "bot.services", "storage"},
    "handlers": {"bot.domain", "bot.config", "bot.messaging", "bot.services"},
    "bot.app": {"bot.domain", "bot.config", "bot.messaging", "bot.services", "bot.telegram",
                "storage", "kb", "handlers"},
    "bot.sandbox": {"bot.app", "bot.config", "storage"},
    "bot.cli": {"bot.domain", "bot.config", "bot.messaging", "bot.services", "bot.app",
                "bot.sandbox", "storage", "kb"},
    "bot.data": set(),
}
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "kb": {"aiogram", "sqlalchemy", "aiohttp"},
    "bot.domain": {"aiogram", "sqlalchemy", "aiohttp"},
    "storage": {"aiogram", "aiohttp"},
    "bot.services": {"aiogram", "aiohttp", "sqlalchemy.sql", "sqlalchemy.orm"},
    "handlers": {"sqlalchemy"},
}
# `bot.services` may name `AsyncSession` (the unit of work it is given), never build a query.
SERVICES_SQLALCHEMY = {"sqlalchemy.ext.asyncio"}


def layer_of(module: str) -> str:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    if module == "bot" or module.startswith("bot.__"):
        return "bot.cli"  # bot/__main__.py: the `python -m bot` entry point
    raise AssertionError(f"{module} belongs to no layer of docs/ARCHITECTURE.md")


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("bot", "handlers", "kb", "storage"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's own files, run by the migration tool
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def imports_of(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            # `from bot import jobs` imports the module bot.jobs
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


PROJECT = ("bot", "handlers", "kb", "storage")


def project_layer(name: str) -> str | None:
    if name.split(".")[0] not in PROJECT or name in PROJECT:
        return None
    try:
        return layer_of(name)
    except AssertionError:
        return None  # `from bot.x import SomeClass` yields bot.x.SomeClass: not a module


@pytest.mark.parametrize(("module", "path"), modules(), ids=str)
def test_module_imports_only_the_layers_it_may(module: str, path: Path) -> None:
    own = layer_of(module)
    wrong = []
    for name in sorted(imports_of(module, path)):
        target = project_layer(name)
        if target is not None and target != own and target not in ALLOWED[own]:
            wrong.append(f"{name} ({target})")
        for banned in FORBIDDEN_THIRD_PARTY.get(own, set()):
            if name == banned or name.startswith(banned + "."):
                wrong.append(name)
        if own == "bot.services" and name.startswith("sqlalchemy") and not any(
                name == ok or name.startswith(ok + ".") for ok in SERVICES_SQLALCHEMY):
            wrong.append(name)
    assert not wrong, f"{module} ({own}) must not import: {', '.join(sorted(set(wrong)))}"


def test_only_the_command_line_and_the_tests_import_the_sandbox() -> None:
    importers = {
        module for module, path in modules()
        if layer_of(module) != "bot.sandbox"
        and any(project_layer(n) == "bot.sandbox" for n in imports_of(module, path))
    }
    assert {layer_of(m) for m in importers} <= {"bot.cli"}, importers


def test_only_the_composition_root_imports_the_handlers() -> None:
    importers = {
        module for module, path in modules()
        if layer_of(module) != "handlers"
        and any(project_layer(n) == "handlers" for n in imports_of(module, path))
    }
    assert {layer_of(m) for m in importers} <= {"bot.app"}, importers
