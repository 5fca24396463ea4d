"""Fixtures for the engine tests: fixture projects copied where a build may write, and the dmaas CLI.

The CLI is run as a subprocess (`python -m runner.engine.cli`), exactly as a person or a worker runs it,
so a crash, a stray print or a wrong exit code shows up here as it would in production.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
DMAAS_CLI = REPO_ROOT / "runner" / "engine" / "cli.py"


def copy_project(name: str, dest: Path) -> Path:
    """Copy the fixture project `tests/fixtures/<name>` to `dest` (which must not exist) and return it."""
    shutil.copytree(
        FIXTURES_DIR / name,
        dest,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "__pycache__", "*.duckdb*"),
    )
    return dest


@pytest.fixture(scope="session")
def fixture_project() -> Callable[[str, Path], Path]:
    """`fixture_project(name, dest)` copies a project from tests/fixtures/ to dest, so builds can write in it."""
    return copy_project


@pytest.fixture
def full_project(tmp_path: Path) -> Path:
    """A fresh copy of the shop project that uses every feature the engine supports."""
    return copy_project("dbt_project_full", tmp_path / "dbt_project_full")


@dataclass
class DmaasRun:
    """One run of the dmaas CLI: its exit code, its output and the run_results.json it wrote."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    run_results: dict[str, Any] | None

    def describe(self, tail: int = 60) -> str:
        lines = (self.stdout + self.stderr).splitlines()
        shown = "\n".join(lines[-tail:])
        return f"$ {' '.join(self.argv)}\n(exit {self.exit_code})\n{shown}"


class DmaasCli:
    """Runs `python -m runner.engine.cli` from the repository root."""

    def available(self) -> bool:
        return DMAAS_CLI.exists()

    @staticmethod
    def duckdb_url(path: Path) -> str:
        """The warehouse URL of a DuckDB file: `duckdb:///` followed by the absolute path."""
        return f"duckdb:///{Path(path).resolve()}"

    def run(
        self,
        command: str,
        project: Path,
        warehouse: str,
        *extra: str,
        target_path: Path,
        schema: str = "analytics",
        threads: int = 2,
        timeout: float = 600,
    ) -> DmaasRun:
        argv = [
            sys.executable,
            "-m",
            "runner.engine.cli",
            command,
            "--project",
            str(project),
            "--warehouse",
            warehouse,
            "--schema",
            schema,
            "--threads",
            str(threads),
            "--target-path",
            str(target_path),
            *extra,
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        proc = subprocess.run(
            argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        results_file = Path(target_path) / "run_results.json"
        run_results = json.loads(results_file.read_text()) if results_file.exists() else None
        return DmaasRun(argv, proc.returncode, proc.stdout, proc.stderr, run_results)


@pytest.fixture(scope="session")
def dmaas() -> DmaasCli:
    return DmaasCli()
