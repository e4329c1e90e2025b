"""The sandbox: a local Telegram Bot API emulator and a terminal chat on top of it."""

from .emulator import (
    SEND_METHODS,
    ApiError,
    CallRecord,
    FakeTelegram,
    Fault,
    FaultRule,
    Violation,
    violations,
)

__all__ = [
    "SEND_METHODS",
    "ApiError",
    "CallRecord",
    "FakeTelegram",
    "Fault",
    "FaultRule",
    "Violation",
    "violations",
]
