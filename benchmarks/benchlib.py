"""What the benchmark scripts share: timing a callable and writing the report.

The scripts run as ``python benchmarks/<name>.py``, so this module is importable next to them.
"""
from __future__ import annotations

import json
import time


def time_per_call(run, min_seconds: float) -> tuple[float, float, float]:
    """Call ``run`` until ``min_seconds`` of wall time have passed (at least once).

    Returns ``(wall seconds per call, wall seconds in all, CPU seconds / wall seconds)``; the last
    tells how many cores the calls kept busy.
    """
    repeats, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while True:
        run()
        repeats += 1
        elapsed = time.perf_counter() - wall0
        if elapsed >= min_seconds:
            return elapsed / repeats, elapsed, (time.process_time() - cpu0) / elapsed


def write_json(path, report) -> None:
    """Write ``report`` to ``path`` as indented JSON (nothing when ``path`` is empty)."""
    if path:
        with open(path, "w") as handle:
            json.dump(report, handle, indent=1)
