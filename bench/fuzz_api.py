"""B11 at full strength: Schemathesis over every operation of /api/v1/ with >= 500 examples each.

    .venv/bin/python bench/fuzz_api.py [--examples 500] [--only "POST /api/v1/preview"]

It runs tests/security/test_schemathesis.py (the same portal with data, the same admin token and
checks: not_a_server_error, response_schema_conformance) with DMAAS_FUZZ_EXAMPLES set, so the test
database, repository and warehouse are made the way the CI test makes them. The figure line
(`SECURITY B11: ...`) is printed and appended to bench/out/security.json. Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="examples per operation (default 500)")
    parser.add_argument("--only", default="", help="only operations whose label contains this text")
    args = parser.parse_args()
    env = {**os.environ, "DMAAS_FUZZ_EXAMPLES": str(args.examples), "DMAAS_FUZZ_ONLY": args.only,
           "DJANGO_ALLOW_ASYNC_UNSAFE": "true"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging", "-s",
               "tests/security/test_schemathesis.py"]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
