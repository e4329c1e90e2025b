"""Dialog (FSM) state kept in the process's memory, forgotten after a while.

aiogram's MemoryStorage keeps a dialog forever (and a record for everyone it was asked
about); here a dialog nobody answered for `ttl` seconds is gone, like the Redis storage's
keys with `state_ttl`/`data_ttl`, and asking about someone stores nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import StateType, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage, MemoryStorageRecord


class ExpiringMemoryStorage(MemoryStorage):
    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.ttl = ttl
        self.monotonic = monotonic
        self._until: dict[StorageKey, float] = {}

    def _record(self, key: StorageKey) -> MemoryStorageRecord | None:
        """The live record of `key`, dropping it once expired; None: no dialog."""
        until = self._until.get(key)
        if until is not None and until <= self.monotonic():
            self._until.pop(key, None)
            self.storage.pop(key, None)
            return None
        return self.storage.get(key)

    def _touch(self, key: StorageKey) -> MemoryStorageRecord:
        self._record(key)  # an expired dialog does not lend its data to a new one
        self._until[key] = self.monotonic() + self.ttl
        return self.storage[key]

    def _drop_if_empty(self, key: StorageKey) -> None:
        record = self.storage.get(key)
        if record is not None and record.state is None and not record.data:
            self._until.pop(key, None)
            self.storage.pop(key, None)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        record = self._touch(key)
        record.state = state.state if isinstance(state, State) else state
        self._drop_if_empty(key)

    async def get_state(self, key: StorageKey) -> str | None:
        record = self._record(key)
        return record.state if record is not None else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        self._touch(key)
        await super().set_data(key, data)
        self._drop_if_empty(key)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = self._record(key)
        return record.data.copy() if record is not None else {}

    async def get_value(
        self, storage_key: StorageKey, dict_key: str, default: Any | None = None
    ) -> Any | None:
        data = await self.get_data(storage_key)
        return data.get(dict_key, default)
