"""Monitoring alerts as the desk takes them: Prometheus Alertmanager's webhook (version 4)
and a generic JSON of our own, read into plain `Alert` values or refused with the reason.

The generic form (README, "Monitoring"):
    {"title": "...", "status": "firing" | "resolved", "fingerprint": "...",
     "severity": "critical" (optional), "company": "<company name>" (optional)}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATUSES = ("firing", "resolved")
TITLE_CHARS = 200
FINGERPRINT_CHARS = 200
MAX_ALERTS = 500


class AlertError(ValueError):
    """A payload the desk cannot take; the message says why (the 400's body)."""


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    status: str  # firing | resolved
    title: str
    severity: str | None = None
    company: str | None = None
    started: str | None = None  # when it began firing, as monitoring gave it

    @property
    def firing(self) -> bool:
        return self.status == "firing"


def _text(value: object, what: str, limit: int, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise AlertError(f"{what} is missing")
        return None
    if not isinstance(value, str):
        raise AlertError(f"{what} must be a string")
    return value.strip()[:limit] or None


def _status(value: object, what: str) -> str:
    if value not in STATUSES:
        raise AlertError(f"{what} must be \"firing\" or \"resolved\"")
    return str(value)


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AlertError(f"{what} must be an object")
    return value


def from_alertmanager(payload: object) -> list[Alert]:
    """Alertmanager's webhook: `alerts[]`, each with status, labels, annotations and
    fingerprint; the title is the summary (else the alert's name)."""
    body = _object(payload, "the payload")
    if str(body.get("version", "4")) != "4":
        raise AlertError("only version 4 of the Alertmanager webhook is understood")
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise AlertError("alerts must be a non-empty list")
    if len(alerts) > MAX_ALERTS:
        raise AlertError(f"at most {MAX_ALERTS} alerts at once")
    result = []
    for index, raw in enumerate(alerts):
        where = f"alerts[{index}]"
        alert = _object(raw, where)
        labels = _object(alert.get("labels") or {}, f"{where}.labels")
        notes = _object(alert.get("annotations") or {}, f"{where}.annotations")
        title = (notes.get("summary") or notes.get("title") or notes.get("description")
                 or labels.get("alertname"))
        result.append(Alert(
            fingerprint=str(_text(alert.get("fingerprint"), f"{where}.fingerprint",
                                  FINGERPRINT_CHARS)),
            status=_status(alert.get("status"), f"{where}.status"),
            title=str(_text(title, f"{where}: annotations.summary or labels.alertname",
                            TITLE_CHARS)),
            severity=_text(labels.get("severity"), f"{where}.labels.severity", 32,
                           required=False),
            company=_text(labels.get("company"), f"{where}.labels.company", 200,
                          required=False),
            started=_text(alert.get("startsAt"), f"{where}.startsAt", 64, required=False),
        ))
    return result


def from_generic(payload: object) -> list[Alert]:
    """The generic JSON: one alert (see the module's docstring)."""
    body = _object(payload, "the payload")
    status = _status(body.get("status", "firing"), "status")
    return [Alert(
        fingerprint=str(_text(body.get("fingerprint"), "fingerprint", FINGERPRINT_CHARS)),
        status=status,
        title=_text(body.get("title"), "title", TITLE_CHARS, required=status == "firing") or "",
        severity=_text(body.get("severity"), "severity", 32, required=False),
        company=_text(body.get("company"), "company", 200, required=False),
        started=_text(body.get("started"), "started", 64, required=False),
    )]
