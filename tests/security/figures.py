"""Each security case prints its figure in one line (`SECURITY Bn: ...`) and appends it to
bench/out/security.json (a list of {case, figure, data, at}; the newest last), which
docs/security.md quotes."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "bench" / "out" / "security.json"
_lock = threading.Lock()


def report(case: str, figure: str, **data: Any) -> str:
    line = f"SECURITY {case}: {figure}"
    print(line)  # noqa: T201 - the figure is the point of the run
    record = {"case": case, "figure": figure, "data": data,
              "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    with _lock:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        try:
            records = json.loads(OUT.read_text()) if OUT.exists() else []
        except ValueError:
            records = []
        records.append(record)
        tmp = OUT.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(records, indent=1, default=str) + "\n")
        tmp.replace(OUT)
    return line
