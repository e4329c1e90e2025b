"""Configuration: a TOML file validated into typed models.

Every problem stops start-up with one line that names the file and the key
(`ConfigError`, exit code 2 in the CLI). The token may come from the
environment so that it never has to be written into a file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

TOKEN_ENV = "FRONTDESK_TELEGRAM_TOKEN"
OFFICIAL_API = "https://api.telegram.org"


class ConfigError(Exception):
    """A configuration problem, phrased for the person who edits the file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelegramConfig(_Section):
    token: SecretStr = SecretStr("")
    api_base: str = OFFICIAL_API
    staff_chat_id: int
    admins: list[int] = []
    mode: Literal["polling", "webhook"] = "polling"
    # None: ask Telegram at start-up whether the staff group has topics.
    staff_forum: bool | None = None
    poll_timeout: Annotated[int, Field(ge=0, le=50)] = 25
    request_timeout: Annotated[float, Field(gt=0)] = 30.0

    @field_validator("api_base")
    @classmethod
    def _api_base_is_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///frontdesk.db"
    echo: bool = False


class DeskConfig(_Section):
    name: str = "Frontdesk"
    language: Literal["ru", "en"] = "ru"
    timezone: str = "Europe/Moscow"
    ask_contact: bool = False
    # How staff answers are signed for the client: the person's name, or only the role.
    signature: Literal["name", "role"] = "name"
    # Days after resolution during which a client's new message reopens the incident.
    reopen_days: Annotated[int, Field(ge=0)] = 7
    # Incidents per client before /my starts paging.
    list_limit: Annotated[int, Field(ge=1, le=50)] = 10

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class DeliveryConfig(_Section):
    global_per_second: Annotated[float, Field(gt=0)] = 25.0
    per_chat_per_second: Annotated[float, Field(gt=0)] = 1.0
    per_group_per_minute: Annotated[float, Field(gt=0)] = 20.0
    # Updates handled in parallel (different chats); one chat is always handled in order.
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 16
    max_backoff_seconds: Annotated[float, Field(gt=0)] = 60.0


class KBConfig(_Section):
    path: Path | None = None
    # Search score (0-1) from which an article is suggested; below it, nothing is.
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.45
    # /kb stale: articles not updated for this many days...
    stale_days: Annotated[int, Field(ge=1)] = 180
    # ...or rejected with "Not that" in at least this share of suggestions, once suggested
    # at least reject_min_suggested times.
    reject_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    reject_min_suggested: Annotated[int, Field(ge=1)] = 5
    # Indexes with more articles than this are searched in a worker thread (event loop stays free).
    thread_above: Annotated[int, Field(ge=0)] = 2000


class RatingsConfig(_Section):
    """The rating request after closure (bot/ratings.py)."""

    enabled: bool = True
    # 0: the request goes out with the closure message; otherwise this many minutes later.
    request_delay_minutes: Annotated[float, Field(ge=0)] = 0
    # How long after the first rating the client may change it.
    change_hours: Annotated[float, Field(ge=0)] = 24
    # One reminder for an unanswered request after this long; 0 turns reminders off.
    remind_after_hours: Annotated[float, Field(ge=0)] = 24
    # After "what went wrong?" / "anything to add?", the client's next text message within
    # this many minutes is taken as the comment (not as a new incident).
    comment_minutes: Annotated[float, Field(gt=0)] = 30
    # Offer "anything to add?" after a good rating (once; never a reminder).
    ask_good_comment: bool = True
    # Incidents closed this way get no request: "faq" (solved by an FAQ article), "merged".
    exclude: list[str] = ["faq", "merged"]
    # How often the reminder / delayed-request sweep runs.
    sweep_seconds: Annotated[int, Field(ge=5, le=3600)] = 60


class Config(_Section):
    telegram: TelegramConfig
    database: DatabaseConfig = DatabaseConfig()
    desk: DeskConfig = DeskConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    kb: KBConfig = KBConfig()
    ratings: RatingsConfig = RatingsConfig()
    source: Path | None = Field(default=None, exclude=True)

    @property
    def token(self) -> str:
        return self.telegram.token.get_secret_value()

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.telegram.admins


def _key_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_config(data: dict[str, object], source: Path | None = None) -> Config:
    """Validate a parsed TOML document; the environment may supply the token."""
    where = str(source) if source else "config"
    try:
        config = Config.model_validate({**data, "source": source})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _key_path(error["loc"])
        message = error["msg"]
        if error["type"] == "missing":
            message = "is required but missing"
        elif error["type"] == "extra_forbidden":
            message = "is not a known setting (check the spelling)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{where}: [{key}] {message}{more}") from None
    env_token = os.environ.get(TOKEN_ENV, "")
    if env_token:
        config = config.model_copy(
            update={"telegram": config.telegram.model_copy(update={"token": SecretStr(env_token)})}
        )
    if not config.token:
        raise ConfigError(
            f"{where}: [telegram.token] is empty; set it in the file or in ${TOKEN_ENV}"
        )
    return config


def load_config(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)
