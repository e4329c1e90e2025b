"""The act as the client signs it: a company with 30 incidents and 5 planned works in a
month, rendered to PDF; prints the pages, and writes page 1 as a PNG (pdftoppm).

    .venv/bin/python tests/bench/act_pdf.py [--out docs/act-page1.png]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.domain.enums import Severity
from bot.domain.periods import Period
from bot.services.ratings import Distribution
from bot.services.reports.act import Act, ActIncident, ActWork
from bot.services.reports.render import render_act_html, render_pdf
from bot.services.reports.stats import Compliance, Durations
from storage.models import Company

ROOT = Path(__file__).resolve().parents[2]
SUBJECTS = [
    ("Не печатает принтер в бухгалтерии", "Переустановили драйвер, очистили очередь печати"),
    ("Не открывается 1С у кладовщика", "Восстановили права пользователя в базе"),
    ("Медленно работает интернет", "Перезагрузили маршрутизатор, заменили патч-корд"),
    ("Не приходит почта на общий ящик", "Исправили правило пересылки на сервере"),
    ("Новый сотрудник: учётная запись", "Создали учётную запись, выдали доступ к 1С и почте"),
    ("Сломалась клавиатура", "Заменили клавиатуру из резерва"),
]
WORKS = [("Проверка антивирусных баз", "weekly"), ("Тест восстановления из бэкапа", "monthly"),
         ("Обновление 1С", "monthly"), ("Аудит прав доступа", "quarterly"),
         ("Замена картриджей", "months:2")]


def sample_act(count: int = 30) -> Act:
    zone = ZoneInfo("Europe/Moscow")
    period = Period.month_of(2026, 11, zone)
    company = Company(name="ООО «Рога и копыта»", services="1С:Бухгалтерия; почта; принтеры",
                      maintenance=[{"work": w, "every": e} for w, e in WORKS], contacts=None,
                      hours_included=10.0, fee=30000.0)
    start = period.start + timedelta(hours=7)
    incidents = []
    for n in range(count):
        subject, done = SUBJECTS[n % len(SUBJECTS)]
        opened = start + timedelta(hours=n * 23)
        incidents.append(ActIncident(
            number=100 + n, opened_at=opened, resolved_at=opened + timedelta(hours=3),
            subject=subject, severity=[Severity.NORMAL, Severity.LOW, Severity.CRITICAL][n % 3],
            client=["Анна Смирнова", "Борис Ким", "Вера Орлова"][n % 3], assignee="Иван Петров",
            response=timedelta(minutes=25), resolution=timedelta(hours=3), rating=5 - n % 2,
            resolution_text=done, deflected=n == 7, sla_met=n != 11, minutes=15 + 15 * (n % 4),
            out_of_scope="настройка домашнего ноутбука директора" if n == 20 else None))
    day = datetime(2026, 11, 9, 10, tzinfo=UTC)
    works = [ActWork(WORKS[0][0], "weekly", [(day + timedelta(days=7 * i), "Иван Петров")
                                            for i in range(3)]),
             ActWork(WORKS[1][0], "monthly", [(day, "Мария Ли")]),
             ActWork(WORKS[2][0], "monthly", [], planned_for=datetime(2026, 12, 1).date()),
             ActWork(WORKS[3][0], "quarterly", [(day - timedelta(days=30), "Иван Петров")]),
             ActWork(WORKS[4][0], "months:2", [], planned_for=datetime(2026, 11, 1).date())]
    ratings = Distribution()
    for incident in incidents:
        if incident.rating:
            ratings.add(incident.rating)
    return Act(desk="ИТ-Сервис", company=company, period=period,
               generated_at=datetime(2026, 12, 1, 9, tzinfo=UTC), incidents=incidents,
               works=works, opened=31, response=Durations.of([1500.0] * 30),
               resolution=Durations.of([10800.0] * 29), ratings=ratings,
               sla=Compliance(29, 30), place="Москва")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "act-page1.png")
    args = parser.parse_args()
    html = render_act_html(sample_act(), "ru")
    pdf = render_pdf(html, ROOT)
    if pdf is None:
        print("no PDF: WeasyPrint is not available (see the log line above)")
        return 1
    from weasyprint import HTML

    pages = len(HTML(string=html).render().pages)
    print(f"act of 30 incidents and 5 planned works: {len(pdf)} bytes of PDF, {pages} page(s)")
    for count in (10, 15, 20):
        usual = len(HTML(string=render_act_html(sample_act(count), "ru")).render().pages)
        print(f"act of {count} incidents and 5 planned works: {usual} page(s)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "act.pdf"
        path.write_bytes(pdf)
        stem = args.out.with_suffix("")
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                        str(path), str(stem)], check=True)
    print(f"page 1: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
