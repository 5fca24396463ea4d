"""What the portal writes is a dbt project that dbt-core (the oracle) and the engine both accept."""

import io
import os
import subprocess
import tarfile

import pytest
import yaml

from models_service import changes, merging
from models_service.project_files import ColumnSpec, ModelSpec
from models_service.project_files import TestSpec as Check
from models_service.repo import PROJECT_NAME, get_store

from .conftest import approve, git_dir

pytestmark = pytest.mark.django_db


def portal_project(analyst, reviewer):
    """A few models saved through the service and merged into main, the way analysts would."""
    change = changes.open_change(analyst, "Shop models")
    changes.save_model(analyst, change, "stg_orders", "select 1 as order_id, 10 as amount, 'paid' as status\n",
                       ModelSpec("stg_orders", "Orders as loaded", columns=[
                           ColumnSpec("order_id", "The key", tests=[Check("unique"), Check("not_null")]),
                           ColumnSpec("status", tests=[Check("accepted_values", {"values": ["paid", "open"]})]),
                       ]))
    changes.save_model(analyst, change, "orders", "select * from {{ ref('stg_orders') }}\n",
                       ModelSpec("orders", "Orders: one row per order", config={"materialized": "table"}, columns=[
                           ColumnSpec("order_id", tests=[Check("relationships", {"to": "ref('stg_orders')",
                                                                                   "field": "order_id"})]),
                       ]), folder="marts")
    changes.save_model(analyst, change, "revenue", "select sum(amount) as total from {{ ref('orders') }}\n",
                       ModelSpec("revenue", "Total revenue", columns=[ColumnSpec("total", data_type="numeric")]))
    changes.rename_model(analyst, change, "revenue", "total_revenue")
    changes.submit_change(analyst, change)
    approve(change)
    return merging.merge_change(reviewer, change).sha


def export(repo, rev, dest):
    """`git archive` of a commit into a folder: a checkout without a work tree in the repository."""
    data = subprocess.run(["git", "--git-dir", str(repo), "archive", "--format=tar", rev], capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def test_the_engine_loads_what_the_portal_wrote(analyst, reviewer, repo):
    from runner.engine.project import MappingSource, load_project

    sha = portal_project(analyst, reviewer)
    store = get_store()
    files = {path: store.git.read_text(entry.oid) for path, entry in store.snapshot(sha).walk()}
    project = load_project(MappingSource(files))
    models = {n.name: n for n in project.nodes.values() if n.resource_type == "model"}
    assert set(models) == {"stg_orders", "orders", "total_revenue"}
    assert models["orders"].config["materialized"] == "table"
    assert models["total_revenue"].description == "Total revenue"
    tests = [n.name for n in project.nodes.values() if n.resource_type == "test"]
    assert "unique_stg_orders_order_id" in tests and any(t.startswith("relationships_orders") for t in tests)


@pytest.mark.dbt
def test_dbt_core_parses_main_after_portal_saves(analyst, reviewer, repo, tmp_path, monkeypatch):
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as exc:  # pragma: no cover
        from tests import services

        services.unavailable(f"dbt-core, the compatibility oracle, is not installed: {exc}")
    sha = portal_project(analyst, reviewer)
    assert git_dir(repo, "rev-parse", "main") == sha
    project = export(repo, "main", tmp_path / "checkout")
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(yaml.safe_dump({PROJECT_NAME: {"target": "dev", "outputs": {
        "dev": {"type": "duckdb", "path": ":memory:", "schema": "analytics", "threads": 1}}}}))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    monkeypatch.chdir(tmp_path)
    result = dbtRunner().invoke(["parse", "--project-dir", str(project), "--profiles-dir", str(profiles),
                                 "--no-partial-parse", "--quiet"])
    assert result.success, result.exception
    manifest = result.result
    models = {n.name: n for n in manifest.nodes.values() if n.resource_type == "model"}
    assert set(models) == {"stg_orders", "orders", "total_revenue"}
    assert models["orders"].config.materialized == "table"
    assert models["orders"].description == "Orders: one row per order"
    assert models["total_revenue"].columns["total"].data_type == "numeric"
    tests = {n.name for n in manifest.nodes.values() if n.resource_type == "test"}
    assert {"unique_stg_orders_order_id", "not_null_stg_orders_order_id"} <= tests
    assert any(t.startswith("accepted_values_stg_orders_status") for t in tests)
    assert any(t.startswith("relationships_orders_order_id") for t in tests)
    assert not os.path.exists(repo / "index")  # the bare repository never had an index
