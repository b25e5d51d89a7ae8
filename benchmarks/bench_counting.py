"""Overhead of counting: an IL training step with counting off, with the always-on totals (the
default), and inside a detailed ``count()`` block (every event with its tick and layer).

Interleaved rounds, medians, ratios to "off"; prints JSON and a table.

    python benchmarks/bench_counting.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import neurosim as ns
from neurosim import counting

CASES = [([64, 128, 128, 10], 1), ([64, 128, 128, 10], 32), ([784, 512, 512, 10], 1)]


def timed(step, seconds):
    repeats, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        repeats += 1
    return (time.perf_counter() - started) / repeats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds, seconds = (3, 0.1) if args.quick else (7, 0.3)
    rows = []
    for sizes, batch in CASES:
        net = ns.mlp(sizes, seed=0, dtype="float32")
        rng = np.random.default_rng(0)
        x = rng.random((batch, sizes[0])).astype("float32")
        y = np.eye(sizes[-1], dtype="float32")[rng.integers(0, sizes[-1], batch)]
        variant = ns.variant("il", T=20, gamma=0.1)

        def off():
            counting.set_enabled(False)
            try:
                variant.compute(net, x, y)
            finally:
                counting.set_enabled(True)

        def totals():
            variant.compute(net, x, y)

        def detailed():
            with counting.count():
                variant.compute(net, x, y)

        modes = {"off": off, "totals (default)": totals, "count() events": detailed}
        for step in modes.values():
            step()
        samples = {name: [] for name in modes}
        with threadpool_limits(1, user_api="blas"):
            for _ in range(rounds):
                for name, step in modes.items():
                    samples[name].append(timed(step, seconds))
        medians = {name: statistics.median(v) for name, v in samples.items()}
        for name, value in medians.items():
            rows.append({"network": "-".join(map(str, sizes)), "batch": batch, "mode": name,
                         "us_per_step": value * 1e6, "vs_off": value / medians["off"]})
    print(json.dumps({"benchmark": "counting_overhead", "rows": rows}, indent=1))
    print()
    print("| network | batch | counting | us per IL step (T=20) | x off |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['network']} | {r['batch']} | {r['mode']} | {r['us_per_step']:.1f} | {r['vs_off']:.3f} |")


if __name__ == "__main__":
    main()
