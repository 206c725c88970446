"""Benchmark: how long the code location takes to load (target under 3 s), without heavy ML imports.

Times a fresh interpreter importing `pipelines.definitions` and resolving the asset graph, against
a fresh interpreter importing only `dagster` (the floor), median of several runs each.

    .venv/bin/python -m benchmarks.code_location_load
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

LOAD = ("import sys, pipelines.definitions as d; d.defs.resolve_asset_graph(); "
        "assert not {'torch', 'transformers', 'datasets'} & set(sys.modules)")
FLOOR = "import dagster"


def median_seconds(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    runs = 7
    load, floor = median_seconds(LOAD, runs), median_seconds(FLOOR, runs)
    report = {
        "benchmark": "fresh interpreter: import pipelines.definitions + resolve asset graph (no torch/transformers/datasets)",
        "load_seconds_median": round(load, 3), "import_dagster_seconds_median": round(floor, 3),
        "ratio": round(load / floor, 2), "target_seconds": 3, "runs": runs,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores", "date": date.today().isoformat(),
    }
    Path("benchmarks/results/code_location_load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
