"""Everything that executes or compiles: the engine, validation, runs, schedules, incidents, SLA.

Kept free of Django imports: runner.engine is plain Python and is imported through this package
by the `dmaas` command-line tool, which runs without Django.
"""
