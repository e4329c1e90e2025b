"""The pure parts of problems: reading alerts, grouping similar reports by their words."""

from __future__ import annotations

import pytest

from bot.domain.alerts import AlertError, from_alertmanager, from_generic
from bot.services.problems import Candidate, clusters, lexical_overlap


def test_alertmanager_alerts_take_the_summary_severity_and_company() -> None:
    alerts = from_alertmanager({"version": "4", "alerts": [
        {"status": "firing", "fingerprint": "f1", "startsAt": "2026-12-03T09:00:00Z",
         "labels": {"alertname": "UplinkDown", "severity": "critical", "company": "Рога"},
         "annotations": {"summary": "Канал упал"}},
        {"status": "resolved", "fingerprint": "f2", "labels": {"alertname": "DiskFull"}},
    ]})
    assert [(a.fingerprint, a.status, a.title, a.severity, a.company) for a in alerts] == [
        ("f1", "firing", "Канал упал", "critical", "Рога"),
        ("f2", "resolved", "DiskFull", None, None)]
    assert alerts[0].started == "2026-12-03T09:00:00Z"


@pytest.mark.parametrize(("payload", "reason"), [
    (None, "the payload must be an object"),
    ({"alerts": "x"}, "alerts must be a non-empty list"),
    ({"alerts": [{"status": "firing", "fingerprint": 3, "labels": {"alertname": "X"}}]},
     "alerts[0].fingerprint must be a string"),
    ({"alerts": [{"status": "firing", "fingerprint": "f"}]}, "labels.alertname"),
])
def test_alertmanager_refusals_say_why(payload: object, reason: str) -> None:
    with pytest.raises(AlertError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        from_alertmanager(payload)


def test_the_generic_form_needs_a_title_only_when_firing() -> None:
    assert from_generic({"fingerprint": "m", "status": "resolved"})[0].title == ""
    with pytest.raises(AlertError, match="title is missing"):
        from_generic({"fingerprint": "m"})


def test_similar_reports_from_enough_clients_make_one_group() -> None:
    reports = [Candidate(1, 10, "Не работает интернет в офисе"),
               Candidate(2, 11, "Принтер не печатает"),
               Candidate(3, 12, "С утра не работает интернет"),
               Candidate(4, 10, "Интернет не работает совсем"),
               Candidate(5, 13, "Интернет не работает, срочно")]
    assert [[c.number for c in g] for g in clusters(reports, None, 3)] == [[1, 3, 4, 5]]
    assert clusters(reports[:4], None, 3) == []  # two of the three are one client's
    assert lexical_overlap("Нет интернета", "Интернета нет с утра") == 1.0
