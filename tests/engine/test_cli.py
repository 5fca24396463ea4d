"""The dmaas command line: one line per node, a summary, and dbt's exit codes."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dmaas(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "runner.engine.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in {"dbt_project.yml": "name: shop\nprofile: shop\n", **files}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_build_prints_a_line_per_node_and_exits_0(tmp_path):
    proj = write(
        tmp_path / "p", {"models/a.sql": "select 1 as x", "models/b.sql": "select * from {{ ref('a') }}"}
    )
    out = dmaas("build", "--project", str(proj), "--warehouse", f"duckdb:///{tmp_path}/w.duckdb")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(" OK " in line and line.rstrip().endswith("s]") and " a " in line for line in lines)
    assert "PASS=2 WARN=0 ERROR=0 SKIP=0" in out.stdout
    assert (proj / "target" / "run_results.json").exists()


def test_a_failing_node_exits_1(tmp_path):
    proj = write(
        tmp_path / "p", {"models/a.sql": "{{ config(materialized='table') }}select cast('x' as int) as x"}
    )
    out = dmaas("run", "--project", str(proj), "--warehouse", f"duckdb:///{tmp_path}/w.duckdb")
    assert out.returncode == 1
    assert "ERROR=1" in out.stdout


def test_a_project_error_exits_2_with_file_and_line(tmp_path):
    proj = write(
        tmp_path / "p", {"models/a.sql": "select 1 as x", "models/b.sql": "select *\nfrom {{ ref('aa') }}"}
    )
    out = dmaas("compile", "--project", str(proj), "--warehouse", f"duckdb:///{tmp_path}/w.duckdb")
    assert out.returncode == 2
    assert "models/b.sql:2" in out.stderr and "Did you mean ref('a')" in out.stderr
    assert not (tmp_path / "w.duckdb").exists()  # compile creates no warehouse


def test_usage_errors_exit_2(tmp_path):
    assert dmaas("build", "--project", str(tmp_path), "--warehouse", "duckdb:///x.duckdb").returncode == 2
    proj = write(tmp_path / "p", {"models/a.sql": "select 1 as x"})
    out = dmaas("build", "--project", str(proj), "--warehouse", "mysql://nope")
    assert out.returncode == 2 and "unknown warehouse URL" in out.stderr


def test_select_and_ls(tmp_path):
    proj = write(
        tmp_path / "p",
        {
            "models/a.sql": "select 1 as x",
            "models/b.sql": "select * from {{ ref('a') }}",
            "models/c.sql": "select 2 as y",
        },
    )
    out = dmaas("ls", "--project", str(proj), "--select", "+b")
    assert out.stdout.split() == ["shop.a", "shop.b"]
    out = dmaas(
        "compile", "--project", str(proj), "--warehouse", f"duckdb:///{tmp_path}/w.duckdb", "--select", "b"
    )
    assert 'select * from "analytics"."a"' in out.stdout


def test_compile_sees_what_exists_when_a_model_is_incremental(tmp_path):
    """compile opens the warehouse only for is_incremental(); an incremental model still gets it right."""
    inc = ("{{ config(materialized='incremental') }}select 1 as x\n"
           "{% if is_incremental() %}where x > (select max(x) from {{ this }}){% endif %}")
    proj = write(tmp_path / "p", {"models/inc.sql": inc, "models/v.sql": "select 1 as y"})
    warehouse = f"duckdb:///{tmp_path}/w.duckdb"
    first = dmaas("compile", "--project", str(proj), "--warehouse", warehouse, "--select", "inc")
    assert first.returncode == 0 and "where x >" not in first.stdout
    assert dmaas("build", "--project", str(proj), "--warehouse", warehouse).returncode == 0
    again = dmaas("compile", "--project", str(proj), "--warehouse", warehouse, "--select", "inc")
    assert again.returncode == 0 and "where x > (select max(x)" in again.stdout, again.stdout
