"""Configuration: a TOML file validated into typed models.

Every problem stops start-up with one line that names the file and the key
(`ConfigError`, exit code 2 in the CLI). The token may come from the
environment so that it never has to be written into a file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.domain.maintenance import is_periodicity

TOKEN_ENV = "FRONTDESK_TELEGRAM_TOKEN"
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
OFFICIAL_API = "https://api.telegram.org"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


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
    # Webhook mode (bot/telegram/webhook.py): the public URL given to setWebhook (the reverse
    # proxy's), where this process listens, and the secret Telegram sends in every request.
    webhook_url: str = ""
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    path: str = "/telegram"
    secret_token: SecretStr = SecretStr("")

    @field_validator("api_base")
    @classmethod
    def _api_base_is_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @field_validator("secret_token")
    @classmethod
    def _telegram_secret(cls, value: SecretStr) -> SecretStr:
        # Telegram's rule for setWebhook's secret_token.
        if value.get_secret_value() and not _SECRET.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _webhook_complete(self) -> TelegramConfig:
        if self.mode != "webhook":
            return self
        if not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError("webhook mode needs webhook_url, the public https:// URL of the "
                             "webhook (the reverse proxy's)")
        if len(self.secret_token.get_secret_value()) < 16:
            raise ValueError("webhook mode needs secret_token, at least 16 characters "
                             "A-Z, a-z, 0-9, _ and - (e.g. from `openssl rand -hex 32`)")
        return self


class SecurityConfig(_Section):
    # How long Telegram's word that someone is a member of the staff group is trusted; a
    # chat_member update about them (kicked, left) forgets it at once.
    staff_cache_seconds: Annotated[int, Field(ge=0, le=300)] = 30
    # A dialog (/kb add, /kb edit) left unanswered this long is forgotten.
    dialog_ttl_seconds: Annotated[int, Field(ge=60, le=7 * 86400)] = 3600


class RetentionConfig(_Section):
    # Handled updates (inbox) and sent messages (outbox) are kept this many days, their
    # payloads (the texts, the files' names) only `payload_days`; the daily sweep prunes.
    days: Annotated[int, Field(ge=1)] = 30
    payload_days: Annotated[int, Field(ge=1)] = 30
    sweep_seconds: Annotated[float, Field(gt=0)] = 3600

    @model_validator(mode="after")
    def _payloads_first(self) -> RetentionConfig:
        if self.payload_days > self.days:
            raise ValueError("payload_days must not exceed days (payloads go first)")
        return self


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///frontdesk.db"
    echo: bool = False
    # PostgreSQL: connections each process keeps open, and how many more it may open at a
    # peak. Every webhook worker has its own pool, so workers x (pool_size + max_overflow)
    # must stay under the server's max_connections (or PgBouncer's pool). SQLite: unused.
    pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    max_overflow: Annotated[int, Field(ge=0, le=1000)] = 10

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class RedisConfig(_Section):
    # "redis://host:6379/0": dialog (FSM) state in Redis, shared by every worker. Empty: in
    # the process's memory (fine for one process; a dialog then survives no restart).
    url: str = ""
    # Prefix of every key the bot writes (several desks, or test runs, may share one Redis).
    prefix: Annotated[str, Field(min_length=1, max_length=100)] = "frontdesk"

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


def known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class DeskConfig(_Section):
    name: str = "Frontdesk"
    language: Literal["ru", "en"] = "ru"
    timezone: str = "Europe/Moscow"
    ask_contact: bool = False
    # How staff answers are signed for the client: the person's name, or only the role.
    signature: Literal["name", "role"] = "name"
    # Days after resolution during which a client's new message reopens the incident.
    reopen_days: Annotated[int, Field(ge=0)] = 7
    # "Solved -> closed": /close of an incident waiting for the client resolves it first, and
    # a resolved incident is closed by itself after this many days without the client
    # objecting (the client is told both times). 0: /close closes at once, nothing by itself.
    confirm_days: Annotated[int, Field(ge=0)] = 3
    # Incidents per client before /my starts paging.
    list_limit: Annotated[int, Field(ge=1, le=50)] = 10
    # A surge (a mass outage): more new incidents than this within `surge_window_minutes`.
    # Then new incidents get no topic and card of their own at once (at 20 messages a
    # minute per group, thousands of cards would take hours); the staff group gets one
    # digest a minute instead, and an incident's topic appears when someone acts on it
    # or the client writes again. 0 turns this off.
    surge_threshold: Annotated[int, Field(ge=0)] = 30
    surge_window_minutes: Annotated[int, Field(ge=1, le=120)] = 10
    # The desk suggests a problem (one tap makes the first a problem and links the rest)
    # when this many similar new incidents from different clients arrive within
    # `surge_window_minutes` (bot/services/problems.py). 0 turns this off.
    suggest_problem_after: Annotated[int, Field(ge=0)] = 3
    # Working time in `timezone`, for SLA targets measured in business hours.
    workdays: Annotated[list[Weekday], Field(min_length=1)] = ["mon", "tue", "wed", "thu", "fri"]
    work_start: time = time(9)
    work_end: time = time(18)
    holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    @model_validator(mode="after")
    def _end_after_start(self) -> DeskConfig:
        if self.work_end <= self.work_start:
            raise ValueError(f"work_end ({self.work_end:%H:%M}) must be later than work_start "
                             f"({self.work_start:%H:%M}); overnight shifts are not supported")
        return self

    def overridden(self, work_time: Mapping[str, object]) -> DeskConfig:
        """This desk with a company's working time ({key of [desk]: value}, JSON-like)."""
        return DeskConfig.model_validate({**self.model_dump(), **work_time})

    @property
    def workday_numbers(self) -> list[int]:
        return [WEEKDAYS.index(day) for day in self.workdays]


class DeliveryConfig(_Section):
    global_per_second: Annotated[float, Field(gt=0)] = 25.0
    per_chat_per_second: Annotated[float, Field(gt=0)] = 1.0
    per_group_per_minute: Annotated[float, Field(gt=0)] = 20.0
    # Updates handled in parallel (different chats); one chat is always handled in order.
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 16
    max_backoff_seconds: Annotated[float, Field(gt=0)] = 60.0


class KBConfig(_Section):
    path: Path | None = None
    # Another folder article images may be in (besides the KB folder); an image anywhere
    # else is a KB error at start-up and at `kb import`.
    media: Path | None = None
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
    # The sentence model's vectors of the articles, kept in this file (relative to the working
    # folder) so a restart encodes only changed articles; none: kept in memory only.
    vector_cache: Path | None = None


class SeverityConfig(_Section):
    # Extra cue vocabulary files (same format as bot/data/severity.yaml), relative to the
    # config file; they extend the bundled vocabulary.
    vocabulary: list[Path] = []
    # A folder for the desk's own refitted models, relative to the config file:
    # `classify --retrain --config` writes the severity model there, learnt from the bundled
    # corpus and staff's `/sev` changes, and the bot loads it from there at start-up (the
    # bundled model while the folder holds none).
    models: Path | None = None


class SlaTarget(_Section):
    """Promised times for one severity: each as hours or as days (a business day is
    work_end - work_start when `business`, 24 hours otherwise)."""

    response_hours: Annotated[float, Field(gt=0)] | None = None
    response_days: Annotated[float, Field(gt=0)] | None = None
    resolution_hours: Annotated[float, Field(gt=0)] | None = None
    resolution_days: Annotated[float, Field(gt=0)] | None = None
    # True: measured in working hours of [desk]; False: around the clock.
    business: bool = True

    @model_validator(mode="after")
    def _one_unit_each(self) -> SlaTarget:
        for name in ("response", "resolution"):
            hours, days = getattr(self, f"{name}_hours"), getattr(self, f"{name}_days")
            if (hours is None) == (days is None):
                raise ValueError(f"set exactly one of {name}_hours and {name}_days")
        return self


DEFAULT_SLA_TARGETS: dict[str, dict[str, object]] = {
    "critical": {"response_hours": 2, "resolution_hours": 8, "business": False},
    "normal": {"response_hours": 4, "resolution_days": 3, "business": True},
    "low": {"response_days": 1, "resolution_days": 5, "business": True},
}

_USERNAME = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$")


def _mention(value: int | str) -> int | str:
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value} is not a user id")
        return value
    if value.isdigit():
        return int(value)
    if not _USERNAME.match(value):
        raise ValueError(f"{value!r} is neither a user id nor an @username")
    return value


Mention = Annotated[int | str, AfterValidator(_mention)]


class SlaConfig(_Section):
    critical: SlaTarget
    normal: SlaTarget
    low: SlaTarget
    # Share of a target after which the staff group is warned (once per target).
    warn_at: Annotated[float, Field(gt=0, lt=1)] = 0.8
    # Mentioned in the staff group when a target is breached.
    escalation: list[Mention] = []
    # Mentioned when a client presses "This is urgent" (and reminded of unassigned incidents).
    on_duty: list[Mention] = []
    # An open critical incident with no message to the client for this long gets an
    # automatic status update to the client and a reminder to the assignee; 0 turns it off.
    status_reminder_hours: Annotated[float, Field(ge=0)] = 2.0
    # The same for a normal incident still open with no message to the client for this long
    # (low ones never); 0 turns it off.
    status_reminder_normal_hours: Annotated[float, Field(ge=0)] = 24.0
    # How often the SLA sweep runs.
    sweep_seconds: Annotated[int, Field(ge=5, le=3600)] = 60

    @model_validator(mode="before")
    @classmethod
    def _default_targets(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for severity, defaults in DEFAULT_SLA_TARGETS.items():
            given = merged.get(severity, {})
            if not isinstance(given, dict):
                continue
            target = dict(defaults)
            for name in ("response", "resolution"):
                if f"{name}_hours" in given or f"{name}_days" in given:
                    target.pop(f"{name}_hours", None)
                    target.pop(f"{name}_days", None)
            merged[severity] = {**target, **given}
        return merged

    def target(self, severity: str) -> SlaTarget:
        return {"critical": self.critical, "normal": self.normal, "low": self.low}[severity]

    def overridden(self, overrides: Mapping[str, Mapping[str, object]]) -> SlaConfig:
        """These targets with a company's overrides ({severity: {key: value}}): a unit
        given for a target replaces the other unit of it."""
        update: dict[str, SlaTarget] = {}
        for severity, given in overrides.items():
            target = self.target(severity).model_dump()
            for name in ("response", "resolution"):
                if f"{name}_hours" in given or f"{name}_days" in given:
                    target[f"{name}_hours"] = target[f"{name}_days"] = None
            update[severity] = SlaTarget.model_validate({**target, **given})
        return self.model_copy(update=update)


class RatingsConfig(_Section):
    """The rating request after closure (bot/services/ratings.py)."""

    enabled: bool = True
    # 0: the request goes out with the closure message; otherwise this many minutes later.
    request_delay_minutes: Annotated[float, Field(ge=0)] = 0
    # How long after the first rating the client may change it.
    change_hours: Annotated[float, Field(ge=0)] = 24
    # One reminder for an unanswered request after this long; 0 (the default): none.
    remind_after_hours: Annotated[float, Field(ge=0)] = 0
    # After "what went wrong?" / "anything to add?", the client's next text message within
    # this many minutes is taken as the comment (not as a new incident).
    comment_minutes: Annotated[float, Field(gt=0)] = 30
    # Offer "anything to add?" after a rating below "Хорошо" that is not bad ("Нормально";
    # once; never a reminder). Good ratings get no question, bad ones "what went wrong?".
    ask_fair_comment: bool = True
    # Who reads bad ratings (Telegram ids or @usernames): mentioned on the staff alert, and
    # the client is told "the head of support will read it" only when someone is named.
    managers: list[Mention] = []
    # Incidents closed this way get no request: "faq" (solved by an FAQ article), "merged".
    exclude: list[str] = ["faq", "merged"]
    # How often the reminder / delayed-request sweep runs.
    sweep_seconds: Annotated[int, Field(ge=5, le=3600)] = 60


class QualityConfig(_Section):
    """The quarterly quality check (bot/services/quality.py)."""

    enabled: bool = True
    # What one check sums up: "quarter" (the default) or "month"; one check per period.
    period: Literal["quarter", "month"] = "quarter"
    # When the check goes out: crontab (minute hour day month weekday) in [desk] timezone.
    # Unset: "0 11 * 1,4,7,10 *" (quarterly), or "0 11 * * *" with period = "month".
    schedule: str = "0 11 * 1,4,7,10 *"
    # Of the days the schedule matches in a month, only the first working day of [desk]
    # (workdays, holidays) counts: the default is the first working day of each quarter.
    first_workday_only: bool = True
    # Who gets it: "all" (the default) = everyone who ever started the bot, those with no
    # incident included (they do not see what they pay for); "recent" = clients with an
    # incident in the last recent_months months.
    audience: Literal["recent", "all"] = "all"
    recent_months: Annotated[int, Field(ge=1, le=60)] = 6
    # Scheduled maintenance notes shown in the summary, as written.
    maintenance: list[str] = []
    # A missed check (the bot was down) is still sent this many days after its time.
    catch_up_days: Annotated[int, Field(ge=0, le=60)] = 7
    # Deliveries written to the outbox per transaction, and how often the sender runs.
    batch: Annotated[int, Field(ge=1, le=1000)] = 100
    sweep_seconds: Annotated[int, Field(ge=5, le=3600)] = 60

    @property
    def crontab(self) -> str:
        """The schedule in force: as written, or by default one matching the period."""
        if self.period == "month" and "schedule" not in self.model_fields_set:
            return "0 11 * * *"
        return self.schedule

    @field_validator("schedule")
    @classmethod
    def _valid_crontab(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a valid crontab expression {value!r}: {exc}") from exc
        return value


PERIODICITIES = ("daily", "weekly", "monthly", "quarterly", "yearly")


class MaintenanceWork(_Section):
    """A planned maintenance work of a contract: what, and how often (one of PERIODICITIES
    or `months:N`, every N months)."""

    work: Annotated[str, Field(min_length=1, max_length=200)]
    every: str = "monthly"

    @field_validator("every")
    @classmethod
    def _known_every(cls, value: str) -> str:
        if not is_periodicity(value):
            raise ValueError(f"{value!r} is not daily, weekly, monthly, quarterly, yearly "
                             "or months:N (every N months, 1-36)")
        return value


class SlaOverride(_Section):
    """A company's `[companies.sla.<severity>]`: the keys of `[sla.<severity>]` it changes
    (a unit given replaces the desk's other unit of that target)."""

    response_hours: Annotated[float, Field(gt=0)] | None = None
    response_days: Annotated[float, Field(gt=0)] | None = None
    resolution_hours: Annotated[float, Field(gt=0)] | None = None
    resolution_days: Annotated[float, Field(gt=0)] | None = None
    business: bool | None = None

    @model_validator(mode="after")
    def _one_unit_each(self) -> SlaOverride:
        for name in ("response", "resolution"):
            if getattr(self, f"{name}_hours") is not None and \
                    getattr(self, f"{name}_days") is not None:
                raise ValueError(f"set at most one of {name}_hours and {name}_days")
        return self

    def given(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)


class WorkTimeOverride(_Section):
    """A company's `[companies.desk]`: the working time of its contract (keys of [desk])."""

    timezone: str | None = None
    workdays: Annotated[list[Weekday], Field(min_length=1)] | None = None
    work_start: time | None = None
    work_end: time | None = None
    holidays: list[date] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return None if value is None else known_timezone(value)

    def given(self) -> dict[str, object]:
        """As JSON (the companies.work_time column)."""
        return self.model_dump(exclude_none=True, mode="json")


class CompanyConfig(_Section):
    """A `[[companies]]` table: a client organisation and its contract. Created at start-up
    when missing; what is given here replaces what was set from chat."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    services: list[str] = []
    maintenance: list[MaintenanceWork] = []
    # The contract's service level over [sla] and working time over [desk].
    sla: dict[Literal["critical", "normal", "low"], SlaOverride] = {}
    desk: WorkTimeOverride = WorkTimeOverride()
    # Coordinators at the client (Telegram user ids): they see all the company's incidents
    # and get its acts; `notify_contacts`: told of every new incident of the company.
    contacts: list[Annotated[int, Field(gt=0)]] = []
    notify_contacts: bool = False
    # The staff member mentioned on the company's escalations and bad ratings.
    account_manager: Mention | None = None
    # The monthly fee, and the hours of work it includes (the act compares).
    fee: Annotated[float, Field(ge=0)] | None = None
    hours_included: Annotated[float, Field(ge=0)] | None = None
    # The company's own act template (relative: to the config file's folder).
    act_template: Path | None = None
    # The invite link's limits (also /org invite <name> expires 7d | uses 10): it works
    # through this day ([desk] timezone), and for this many employees joining through it.
    invite_expires: date | None = None
    invite_uses: Annotated[int, Field(ge=1, le=100_000)] | None = None


class ReportsConfig(_Section):
    """/stats, /report and the monthly acts of performed work (bot/services/reports/)."""

    # Where act files and charts are written before they are sent (relative paths: to the
    # config file's folder).
    directory: Path = Path("reports")
    # A desk's own act template (Jinja2 HTML; see bot/messaging/templates/reports/); relative paths:
    # to the config file's folder. Empty: the bundled one in [desk] language.
    act_template: Path | None = None
    # Send last month's acts to the staff group on the first working day of the month.
    monthly_acts: bool = False
    # ...at this hour ([desk] timezone), or later that month if the bot was down.
    send_hour: Annotated[int, Field(ge=0, le=23)] = 10
    # Companies in /stats top lists.
    top: Annotated[int, Field(ge=1, le=50)] = 5
    # Where the acts are drawn up (the act's heading: "г. Москва"); empty: a blank to fill in.
    place: Annotated[str, Field(max_length=100)] = ""
    # The desk's cost of an hour of work: /stats ranks the companies by logged hours x this
    # against their `fee`. None: no costs, only hours.
    hour_cost: Annotated[float, Field(gt=0)] | None = None


class LimitsConfig(_Section):
    """What one client may send before the desk stops passing each message on (issue 14).

    A token bucket per client: `messages_per_minute` refill, `burst` deep. Over it, nothing
    is lost: messages still join the client's incident, the client is told once that they
    are being collected, and the staff group gets one combined line a minute instead of a
    line per message. The defaults are far above what a person typing meets."""

    messages_per_minute: Annotated[float, Field(gt=0)] = 20
    burst: Annotated[int, Field(ge=1)] = 20
    # Open incidents per client: /new beyond it answers which ones are open.
    open_incidents: Annotated[int, Field(ge=1)] = 5


class MonitoringConfig(_Section):
    """Alerts from monitoring open problems (README, "Monitoring"): `POST
    /monitoring/alertmanager` and `/monitoring/alert` with `Authorization: Bearer <token>`,
    on the webhook server in webhook mode, else on `listen`. Off while `token` is empty."""

    token: SecretStr = SecretStr("")
    listen: str = "127.0.0.1:8081"

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < 16:
            raise ValueError("at least 16 characters (or empty: monitoring off)")
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port, e.g. \"127.0.0.1:8081\"")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.token.get_secret_value())

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class GroupsConfig(_Section):
    """Client groups (bot/services/groups.py): a company's own group chat with the bot in it.

    `listen`: "mentions" registers what mentions the bot, replies to it or starts with /new
    (all a bot sees with BotFather's privacy mode on); "all" (privacy mode off) takes every
    message as a candidate and lets the request-or-chatter model decide."""

    listen: Literal["mentions", "all"] = "mentions"


class Config(_Section):
    telegram: TelegramConfig
    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()
    security: SecurityConfig = SecurityConfig()
    retention: RetentionConfig = RetentionConfig()
    desk: DeskConfig = DeskConfig()
    limits: LimitsConfig = LimitsConfig()
    groups: GroupsConfig = GroupsConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    kb: KBConfig = KBConfig()
    severity: SeverityConfig = SeverityConfig()
    sla: SlaConfig = Field(default_factory=lambda: SlaConfig.model_validate({}))
    ratings: RatingsConfig = RatingsConfig()
    quality: QualityConfig = QualityConfig()
    companies: list[CompanyConfig] = []
    reports: ReportsConfig = ReportsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _company_work_time(self) -> Config:
        for index, company in enumerate(self.companies):
            try:
                self.desk.overridden(company.desk.given())
            except ValidationError as exc:
                raise ValueError(f"companies.{index}.desk ({company.name}): "
                                 f"{exc.errors()[0]['msg']}") from None
        return self

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
        where_key = f"{where}: [{key}]" if key else f"{where}:"
        raise ConfigError(f"{where_key} {message}{more}") from None
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


def beside(config_file: Path | None, path: Path) -> Path:
    """A path of the config, relative to its file (to the working directory without one)."""
    if path.is_absolute():
        return path
    return (config_file.parent if config_file is not None else Path.cwd()) / path


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
