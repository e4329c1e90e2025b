"""What reports look like: the /stats chart (PNG), the act as HTML and CSV, and their files.

Nothing here reads the database: the figures come from .stats and .act.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import BaseLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from bot.config import Config
from bot.messaging.texts import Texts, age
from bot.services.ratings import SCORES
from bot.services.reports.act import Act
from bot.services.reports.stats import SEVERITIES, Compliance, Stats
from storage.models import Company

log = logging.getLogger(__name__)

COLOURS = {"critical": "#d64545", "normal": "#e5b73b", "low": "#4caf50"}


def render_chart(stats: Stats, labels: dict[str, Any]) -> bytes:
    """A PNG: incidents per day stacked by severity, SLA compliance per severity, the
    rating distribution. Rendered off-screen (the Agg canvas, no pyplot state), so it can
    run in a worker thread.

    `labels`: "title", "per_day", "sla", "ratings", "response", "resolution",
    "severity" ({severity: name}), "rating" ({score: name})."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = 4 if stats.contracts else 3
    height = 10 + 3 * (panels - 3)
    # Fixed margins, not layout="constrained": its solver measured every tick label's
    # extent twice over and took a third of the chart's time (issue 15). The left margin
    # makes room for the longest company name of the hours panel (about 0.075 in a
    # character at fontsize 10).
    longest = max((len(row.name) for row in stats.contracts), default=0)
    left = min(0.45, max(0.08, (0.3 + 0.075 * min(longest, 40)) / 10))
    figure = Figure(figsize=(10, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(panels, 1, height_ratios=[1.3, 1, 1, 1.1][:panels],
                           gridspec_kw={"left": left, "right": 0.98, "bottom": 0.6 / height,
                                        "top": 1 - 0.8 / height, "hspace": 0.45})
    figure.suptitle(labels["title"], fontsize=14, y=1 - 0.25 / height)

    per_day, sla, ratings = axes[:3]
    for counts_axis in (per_day, ratings):  # counts: whole numbers on the axis
        counts_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    days = [day for day, _ in stats.per_day]
    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for severity in SEVERITIES:
        values = [counts.get(severity, 0) for _, counts in stats.per_day]
        per_day.bar(positions, values, bottom=bottom, color=COLOURS[severity],
                    label=labels["severity"][severity])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    per_day.set_title(labels["per_day"])
    step = max(1, len(days) // 15)
    per_day.set_xticks(positions[::step], [f"{d:%d.%m}" for d in days[::step]])
    per_day.legend(loc="upper left", fontsize=8)
    per_day.set_ylim(bottom=0)

    width = 0.38
    names = [labels["severity"][s] for s in SEVERITIES]
    for offset, (which, table) in zip((-width / 2, width / 2),
                                      (("response", stats.sla_response),
                                       ("resolution", stats.sla_resolution)), strict=True):
        percents = [float(table.get(s, Compliance()).percent or 0) for s in SEVERITIES]
        bars = sla.bar([i + offset for i in range(len(SEVERITIES))], percents, width,
                       label=labels[which], color="#4a78c2" if which == "response" else "#8fb0e0")
        for bar, severity in zip(bars, SEVERITIES, strict=True):
            compliance = table.get(severity, Compliance())
            if compliance.total:
                sla.annotate(f"{compliance.met}/{compliance.total}",
                             (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                             ha="center", va="bottom", fontsize=8)
    sla.set_xticks(range(len(SEVERITIES)), names)
    sla.set_ylim(0, 110)
    sla.set_ylabel("%")
    sla.set_title(labels["sla"])
    sla.legend(loc="lower right", fontsize=8)

    counts = [stats.ratings.counts.get(s, 0) for s in SCORES]
    bars = ratings.bar([labels["rating"][s] for s in SCORES], counts,
                       color=["#2e7d32", "#7cb342", "#fdd835", "#fb8c00", "#c62828"])
    for bar, score in zip(bars, SCORES, strict=True):
        share = f"{stats.ratings.percent[score]:g}".replace(".", labels["decimal"])
        ratings.annotate(f"{share}%",
                         (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                         ha="center", va="bottom", fontsize=8)
    average = stats.ratings.average
    ratings.set_title(labels["no_ratings"] if average is None else labels["ratings_of"].format(
        total=stats.ratings.total, average=f"{average:.1f}".replace(".", labels["decimal"])))
    ratings.set_ylim(bottom=0, top=max([*counts, 1]) * 1.2)
    if stats.contracts:
        _hours_panel(axes[3], stats, labels)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _hours_panel(axis: Any, stats: Stats, labels: dict[str, Any]) -> None:
    """Hours logged per company, each bar with its cost against its fee; red: at a loss."""
    rows = list(reversed(stats.contracts))  # the costliest on top
    hours = [row.hours for row in rows]
    bars = axis.barh([row.name for row in rows], hours,
                     color=["#c62828" if (row.ratio or 0) > 1 else "#4a78c2" for row in rows])

    def money(value: float) -> str:
        return f"{value:,.0f}".replace(",", " ")

    for bar, row in zip(bars, rows, strict=True):
        text = f"{row.hours:g} {labels['hours_unit']}".replace(".", labels["decimal"])
        if row.cost is not None and row.fee:
            text += " · " + labels["cost_of_fee"].format(
                cost=money(row.cost), fee=money(row.fee), share=round((row.ratio or 0) * 100))
        axis.annotate(text, (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                      xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    axis.set_xlim(0, max([*hours, 1]) * 1.6)
    axis.set_title(labels["hours"])


def chart_labels(texts: Texts, language: str, stats: Stats) -> dict[str, Any]:
    """The chart's words from the desk's templates (labels.j2)."""
    words = texts.label(language, "chart")
    return {
        **words,
        "title": f"{words['title']} {stats.period.label}"
                 + (f" · {stats.company.name}" if stats.company is not None else ""),
        "severity": texts.label(language, "severity"),
        "rating": texts.label(language, "rating"),
    }


def _hm(minutes: int, language: str) -> str:
    """Minutes as people read them: "1 ч 30 мин", "45 min"."""
    hours, rest = divmod(int(minutes), 60)
    h, m = ("ч", "мин") if language == "ru" else ("h", "min")
    parts = ([f"{hours} {h}"] if hours else []) + ([f"{rest} {m}"] if rest or not hours else [])
    return " ".join(parts)


def _act_environment(loader: BaseLoader, zone: ZoneInfo, language: str) -> Environment:
    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["hm"] = lambda minutes: _hm(minutes, language)
    env.filters["span"] = lambda d: "—" if d is None else _hm(round(d.total_seconds() / 60),
                                                                language)
    env.filters["local"] = lambda m: m.astimezone(zone).strftime("%d.%m.%Y %H:%M")
    env.filters["day"] = lambda m: m.astimezone(zone).strftime("%d.%m.%Y")
    env.filters["short"] = lambda m: m.astimezone(zone).strftime("%d.%m")
    env.filters["age"] = lambda d: age(d) if d is not None else "—"
    return env


def _beside_config(config: Config, path: Path) -> Path:
    """A path of the config file, relative to that file (or to the working directory)."""
    base = config.source.parent if config.source is not None else Path.cwd()
    return path if path.is_absolute() else base / path


def template_path(config: Config, company: Company | None = None) -> Path | None:
    """The act template of the company's contract (`act_template` of its `[[companies]]`
    entry), else the desk's (`[reports] act_template`), if there is one."""
    own = company.act_template if company is not None else None
    path = Path(own) if own else config.reports.act_template
    return _beside_config(config, path) if path is not None else None


def render_act_html(act: Act, language: str, template: Path | None = None) -> str:
    """The act as a printable HTML document (A4, one page per month); `template`: a desk's
    own Jinja2 file, else the bundled bot/messaging/templates/reports/act_<language>.html."""
    if template is not None:
        env = _act_environment(FileSystemLoader(str(template.parent)), act.period.zone, language)
        return env.get_template(template.name).render(act=act, language=language)
    env = _act_environment(PackageLoader("bot.messaging", "templates"), act.period.zone,
                           language)
    return env.get_template(f"reports/act_{language}.html").render(act=act, language=language)


CSV_HEADER = {
    "ru": ["Номер", "Открыто", "Решено", "Тема", "Что сделано", "Важность",
           "Сотрудник клиента", "Исполнитель", "Реакция, мин", "Решение, мин", "Затрачено, мин",
           "Оценка", "В срок", "Вне договора"],
    "en": ["Number", "Opened", "Resolved", "Subject", "What was done", "Severity",
           "Client employee", "Engineer", "Response, min", "Resolution, min", "Time spent, min",
           "Rating", "On time", "Outside the contract"],
}
# The act's words in its language (the CSV is read by the client as the act is).
CSV_WORDS = {
    "ru": {"critical": "критическая", "normal": "обычная", "low": "низкая", True: "да",
           False: "нет", "total": "Итого", "minutes": "Затрачено по договору, мин",
           "outside": "Вне договора, мин", "included": "Включено в абонплату, ч",
           "faq": "решено по инструкции"},
    "en": {"critical": "critical", "normal": "normal", "low": "low", True: "yes",
           False: "no", "total": "Total", "minutes": "Time spent under the contract, min",
           "outside": "Outside the contract, min", "included": "Included in the fee, h",
           "faq": "solved by following the instructions"},
}


# What a spreadsheet takes for the start of a formula (or DDE call) when it opens a CSV.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell as written to any CSV file: text a spreadsheet would run as a formula gets a
    leading apostrophe (OWASP's "CSV injection" advice); numbers are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class SafeCsvWriter:
    """The one CSV writer of the product: every cell passes through `csv_cell`."""

    def __init__(self, out: io.StringIO) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Sequence[object]) -> None:
        self._writer.writerow([csv_cell(cell) for cell in row])


def act_csv(act: Act, language: str) -> str:
    """The act's incidents as CSV (UTF-8; a header row, an incident per row, then totals)."""
    zone = act.period.zone
    out = io.StringIO()
    writer = SafeCsvWriter(out)
    writer.writerow(CSV_HEADER[language])

    def minutes(delta: timedelta | None) -> str:
        return "" if delta is None else str(round(delta.total_seconds() / 60))

    words = CSV_WORDS[language]
    for i in act.incidents:
        done = i.resolution_text or (words["faq"] if i.deflected else "")
        writer.writerow([
            i.number, i.opened_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            i.resolved_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), i.subject, done,
            words[i.severity], i.client, i.assignee or "", minutes(i.response),
            minutes(i.resolution), i.minutes, i.rating or "",
            "" if i.sla_met is None else words[i.sla_met], i.out_of_scope or "",
        ])
    writer.writerow([])
    writer.writerow([words["total"], len(act.incidents)])
    for severity, count in act.by_severity.items():
        writer.writerow([words[severity], count])
    writer.writerow([words["minutes"], act.minutes_total])
    if act.out_of_scope:
        writer.writerow([words["outside"], act.minutes_outside])
    if act.hours_included is not None:
        writer.writerow([words["included"], f"{act.hours_included:g}"])
    return out.getvalue()


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name, flags=re.UNICODE).strip("_")[:80] or "company"


_NO_PDF: list[str] = []  # why there is no PDF, once found (logged once per process)


def pdf_available() -> bool:
    """Whether acts get a PDF on this machine (WeasyPrint and the system's Pango load)."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def render_pdf(html: str, base: Path) -> bytes | None:
    """The act's HTML as PDF (WeasyPrint, on the system's Pango); None, logged once, when
    the engine or its libraries are missing."""
    if _NO_PDF:
        return None
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: libpango / libgobject not found
        _NO_PDF.append(str(exc))
        log.warning("acts go out as HTML and CSV only, no PDF: WeasyPrint cannot be used "
                    "(%s); install it with its system libraries (Pango)", exc)
        return None
    pdf: bytes = HTML(string=html, base_url=str(base)).write_pdf()
    return pdf


def write_act(act: Act, directory: Path, language: str,
              template: Path | None = None) -> list[Path]:
    """The act's files in `directory`, the PDF first (when it can be made), then the HTML
    and the CSV; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"act-{_slug(act.company.name)}-{act.period.label}"
    html = directory / f"{stem}.html"
    text = render_act_html(act, language, template)
    html.write_text(text, encoding="utf-8")
    table = directory / f"{stem}.csv"
    table.write_text(act_csv(act, language), encoding="utf-8-sig")
    pdf = render_pdf(text, template.parent if template is not None else directory)
    if pdf is None:
        return [html, table]
    document = directory / f"{stem}.pdf"
    document.write_bytes(pdf)
    return [document, html, table]


def reports_directory(config: Config) -> Path:
    return _beside_config(config, config.reports.directory)


def write_chart(png: bytes, directory: Path, label: str, keep_days: int = 7) -> Path:
    """Save a chart for the outbox to upload; charts older than `keep_days` are removed."""
    folder = directory / "charts"
    folder.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - keep_days * 86400
    for old in folder.glob("stats-*.png"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    path = folder / f"stats-{_slug(label)}-{time.time_ns()}.png"
    path.write_bytes(png)
    return path


