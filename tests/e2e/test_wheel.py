"""The package as a user gets it: the wheel, installed into a fresh venv from the lock, and
the installed `frontdesk` command playing the README's lifecycle plus a /report, from a
folder outside the checkout so nothing can come from the source tree.

Deselect with `-m "not wheel"` (the PostgreSQL pass of .ci/run does: this path never
touches the database backend under test there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import DeskConfig
from tests.conftest import ACT_FORMATS

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ["pyproject.toml", "bot", "handlers", "kb", "storage"]
COMPANY = "Рога и копыта"
WITHOUT_PYTHONPATH = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def run(*command: str | Path, cwd: Path | None = None, timeout: float = 180) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=WITHOUT_PYTHONPATH, check=False)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def tracked() -> list[str]:
    """What git tracks of the build: the wheel must hold every file of it."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", *PACKAGED], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing to compare the wheel with")
    return [name for name in listed.split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tracked: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the tracked files: a stale build/ or egg-info in the checkout
    # would leak files the tree no longer has. The venv's locked setuptools builds it.
    source = tmp_path_factory.mktemp("source")
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes((ROOT / name).read_bytes())
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", dist, source)
    (built,) = dist.glob("frontdesk-*.whl")
    return built


@pytest.fixture(scope="module")
def frontdesk(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The installed command. The venv gets no pip of its own (this venv's uv installs into
    it, from its cache, as make did) and no bytecode up front: the one run below compiles
    only what it imports."""
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    uv = (Path(sys.executable).parent / "uv", "pip", "install", "--quiet", "--python", python)
    run(*uv, "--require-hashes", "-r", ROOT / "requirements.lock")
    run(*uv, "--no-deps", wheel)
    return venv / "bin" / "frontdesk"


def test_the_wheel_holds_every_file_git_tracks_in_the_packages(
    wheel: Path, tracked: list[str]
) -> None:
    packaged = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in tracked if name != "pyproject.toml" and name not in packaged]
    assert not missing, f"not in the wheel (package-data in pyproject.toml?): {missing}"


def test_the_installed_command_plays_the_lifecycle_and_a_report(
    frontdesk: Path, tmp_path: Path
) -> None:
    # The act is for this month in the desk's time zone (the sandbox keeps the default).
    zone = ZoneInfo(DeskConfig().timezone)
    month = datetime.now(zone).strftime("%Y-%m")
    script = tmp_path / "lifecycle-and-report.txt"
    script.write_text(
        (ROOT / "examples" / "sandbox-lifecycle.txt").read_text(encoding="utf-8")
        + f"staff> /org add {COMPANY}\nstaff> /org link 1 {COMPANY}\n"
        + f"staff> /report {COMPANY} {month}\n",
        encoding="utf-8",
    )
    where = run(frontdesk.parent / "python", "-c",
                "import importlib.util as u; "
                "print(*(u.find_spec(p).origin for p in ('bot', 'handlers', 'kb', 'storage')))",
                cwd=tmp_path)
    assert all(path.startswith(str(frontdesk.parents[1])) for path in where.split()), where

    shown = run(frontdesk, "sandbox", "--script", script, cwd=tmp_path)

    assert "Обращение #1 — закрыто" in shown  # the lifecycle's last line: /status 1
    act_name = f"act-{COMPANY.replace(' ', '_')}-{month}"
    # The PDF first (WeasyPrint is in the lock) where Pango is, the caption on the first file;
    # then HTML and CSV.
    first = ACT_FORMATS[0]
    assert f"[document: {act_name}.{first}] 📄 Акт выполненных работ: {COMPANY}" in shown
    assert f"[document: {act_name}.html]" in shown
    acts = tmp_path / "reports" / "acts" / month  # [reports] directory: relative to the cwd
    assert COMPANY in (acts / f"{act_name}.html").read_text(encoding="utf-8")
    rows = (acts / f"{act_name}.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[1].startswith("1,") and "Анна" in rows[1]
