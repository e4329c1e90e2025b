"""The one kind of error a person's request ends in: `code` names the template text that
says why, `context` fills it in. Each feature raises its own subclass (DeskError, FaqError,
...), so a handler catches exactly the requests it renders; the base is for the places that
render them all alike."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    def __init__(self, code: str, **context: Any) -> None:
        super().__init__(code)
        self.code = code
        self.context = context
