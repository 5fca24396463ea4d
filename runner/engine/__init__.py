"""The engine: load, compile, plan, run and test a dbt project. Plain Python: no Django import here.

    project = load_project("path/to/project")
    manifest = compile_project(project, Target(schema="analytics", type="duckdb"))
    summary = Executor(manifest, adapter_for("duckdb:///wh.duckdb"), RunOptions(threads=2)).run(set(manifest.nodes))
"""
