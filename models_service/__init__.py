"""What is stored and decided by people: the git store, the dbt project's files, change requests.

Kept free of Django imports: plain-Python submodules (project_files) are imported through it by
code that runs without Django, such as the engine and the `dmaas` command-line tool.
"""
