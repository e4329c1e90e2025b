"""A local Telegram Bot API emulator: ``FakeTelegram`` (see server.py for how to use it).

The package is split by concern: ``server`` (the aiohttp app, routing, the ``FakeTelegram``
class that puts the parts together), ``state`` (what it remembers), ``protocol`` (the wire
format), ``users`` (what the test makes users do), ``groups`` (what users do in the
client groups the bot serves: adding it through `?startgroup=`, mentions, a rename, the
upgrade to a supergroup, removing it), ``observing`` (what a test waits for
and reads), one module per group of Bot API methods (``messages``, ``editing``,
``chats``, ``commands``, ``updates``, ``files``), ``faults`` and ``limits``.
"""

from bot.sandbox.emulator.faults import Fault, FaultRule
from bot.sandbox.emulator.limits import Violation, violations
from bot.sandbox.emulator.protocol import MEDIA_KINDS, SEND_METHODS, ApiError
from bot.sandbox.emulator.server import FakeTelegram
from bot.sandbox.emulator.state import CallRecord

__all__ = [
    "MEDIA_KINDS",
    "SEND_METHODS",
    "ApiError",
    "CallRecord",
    "FakeTelegram",
    "Fault",
    "FaultRule",
    "Violation",
    "violations",
]
