"""What the benchmark scripts share: timing a callable and writing the report.

The scripts run as ``python benchmarks/<name>.py``, so this module is importable next to them.
"""
from __future__ import annotations

import argparse
import json
import time


def parse_net(text):
    """'64-128-128-10' -> [64, 128, 128, 10] (an argparse type)."""
    try:
        sizes = [int(part) for part in text.split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"network must look like 64-128-128-10, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"network needs >= 2 positive layer sizes, got {text!r}")
    return sizes


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


def fmt(value, spec: str, suffix: str = "") -> str:
    """``value`` formatted with ``spec`` (and ``suffix``) for a table cell; ``"n/a"`` for ``None``."""
    return "n/a" if value is None else format(value, spec) + suffix


def write_json(path, report) -> None:
    """Write ``report`` to ``path`` as indented JSON (nothing when ``path`` is empty)."""
    if path:
        with open(path, "w") as handle:
            json.dump(report, handle, indent=1)


def one_blas_thread() -> None:
    """Limit every BLAS the kernels may call to one thread for the rest of the run (small matrices:
    a second thread only adds overhead; see neurosim.threads)."""
    from neurosim import threads

    threads.limit(1)  # applied now, left in place (never exited)


def print_and_save(result, path) -> None:
    """Print ``result`` as indented JSON and write it to ``path`` (if given)."""
    print(json.dumps(result, indent=1))
    write_json(path, result)


def two_panels():
    """``(figure, axes)``: a 1x2 matplotlib figure on the non-interactive backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, 2, figsize=(10, 3.6))


def save_figure(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved {path}")
