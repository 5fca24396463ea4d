"""Small in-memory projects for the engine's unit tests."""

from __future__ import annotations

from runner.engine.adapters import adapter_for
from runner.engine.compiler import Manifest, Target, compile_project
from runner.engine.execution import Executor, RunOptions, RunSummary
from runner.engine.project import MappingSource, Project, load_project

PROJECT_YML = "name: shop\nprofile: shop\nconfig-version: 2\n"


def project(files: dict[str, str], dbt_project: str = PROJECT_YML, **vars: object) -> Project:
    return load_project(MappingSource({"dbt_project.yml": dbt_project, **files}), cli_vars=vars or None)


def compile_files(
    files: dict[str, str], dbt_project: str = PROJECT_YML, existing=None, target_type: str = "duckdb"
) -> Manifest:
    return compile_project(project(files, dbt_project), Target(type=target_type), existing)


def build(
    files: dict[str, str],
    warehouse: str,
    command: str = "build",
    threads: int = 2,
    dbt_project: str = PROJECT_YML,
    gate: bool = False,
) -> tuple[Manifest, RunSummary]:
    adapter = adapter_for(warehouse)
    try:
        existing = set(adapter.relations())
        manifest = compile_project(project(files, dbt_project), Target(), existing)
        summary = Executor(manifest, adapter, RunOptions(command=command, threads=threads, gate=gate)).run(
            set(manifest.nodes)
        )
    finally:
        adapter.close()
    return manifest, summary


def statuses(summary: RunSummary) -> dict[str, str]:
    return {r.name: r.status for r in summary.results}
