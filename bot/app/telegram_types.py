"""aiogram's Telegram types, each validator built when it is first used rather than at import.

Why: `aiogram.types` ends by calling `model_rebuild` on every one of its ~440 pydantic
models, which compiles a validator for each (with its whole tree of nested types) at
import: about 140 MB of the bot's resident memory, most of it for types the desk never
receives (stickers, payments, business accounts, giveaways...). The models themselves are
declared `defer_build=True`; aiogram rebuilds them eagerly only because their annotations
name each other by string and need its namespace of all types to resolve.

So while `aiogram.types` is imported, its `model_rebuild(_types_namespace=...)` calls only
remember that namespace (on the model and in its module, where pydantic's own build on
first use looks names up) instead of building. The first validation of an
`Update` then builds exactly what an update can hold, with the same names resolved as the
eager rebuild would have: the same validators, made later and only once (measured: the
bot's start-up RSS 363 -> about 250 MB; the `Update` validator is about 4 MB).

Applied by `bot/app/__init__.py`, before anything of the bot's runtime imports aiogram;
if aiogram was already imported (a test that imported it first), nothing changes.
"""

from __future__ import annotations

import sys
from typing import Any

_deferred: list[type[Any]] = []


def defer_telegram_types() -> None:
    """Import `aiogram.types` with its models' validators left to be built on first use."""
    if "aiogram.types" in sys.modules:
        return
    from pydantic import BaseModel

    eager = BaseModel.__dict__["model_rebuild"]

    def remember_namespace(
        cls: type[BaseModel], *, force: bool = False, raise_errors: bool = True,
        _parent_namespace_depth: int = 2, _types_namespace: Any = None,
    ) -> bool | None:
        if _types_namespace is None or not cls.__module__.startswith("aiogram."):
            return eager.__func__(  # type: ignore[no-any-return]
                cls, force=force, raise_errors=raise_errors,
                _parent_namespace_depth=_parent_namespace_depth + 1,
                _types_namespace=_types_namespace)
        # The names aiogram gives (all its types), where pydantic will look when it builds
        # the model on first use: as the model's parent namespace, under the names of its
        # own (the order pydantic's model_rebuild merges them in), and in its module, where
        # pydantic looks up a model's names when it builds it nested in another one (a
        # `Response[ChatFullInfo]`). The module gains only the names it imports for type
        # checking alone; none it has is replaced.
        own = cls.__pydantic_parent_namespace__ or {}
        cls.__pydantic_parent_namespace__ = {**dict(_types_namespace), **own}
        module = vars(sys.modules[cls.__module__])
        for name, value in _types_namespace.items():
            module.setdefault(name, value)
        _deferred.append(cls)
        return None

    BaseModel.model_rebuild = classmethod(remember_namespace)  # type: ignore[assignment,method-assign]
    try:
        import aiogram.types  # noqa: F401
    finally:
        BaseModel.model_rebuild = eager  # type: ignore[method-assign]
    build_common_validators()


def build_common_validators() -> None:
    """Build now the validators every bot uses at once, rather than inside its first update
    or its first send (about 0.1 s each): `Update`, and the answers to `getUpdates` and to
    the sending methods (`Response[list[Update]]`, `Response[Message]`, `Response[bool]`)."""
    from aiogram.methods.base import Response
    from aiogram.types import Message, Update

    Update.model_rebuild()
    for answer in (Response[list[Update]], Response[Message], Response[bool]):
        answer.model_rebuild()


def deferred_count() -> int:
    """How many aiogram models were left to be built on first use (for the tests)."""
    return len(_deferred)
