"""Ticks per second of IL's inference on the compiled schedule loop against the NumPy reference.

Both run the same inference phase (feed-forward init, output clamp, T ticks of parallel relaxation)
on the same network and data, interleaved round by round so machine noise hits both alike. Reports
medians and the numba/NumPy speed ratio; prints a markdown table and writes JSON.

    python benchmarks/bench_inference.py [--quick] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics

import numpy as np

from benchlib import time_per_call, write_json
import neurosim as ns
from neurosim.circuit.schedule import Run
from neurosim.kernels import reference
from neurosim import threads as blas

NETWORKS = {"64-128-128-10": [64, 128, 128, 10], "784-512-512-10": [784, 512, 512, 10]}
BATCHES = (1, 32, 256)
DTYPES = ("float32", "float64")


def numba_inference(net, x, y, T, gamma):
    # IL's schedule without its Hebbian terms, in one compiled call (feed-forward, clamp, T ticks).
    schedule = ns.variant("il", T=T, gamma=gamma).schedule(net).inference_only()
    ws = net.workspace(x.shape[0])

    def run():
        Run(schedule, net, ws, y).step(x, y)
    return run


def numpy_inference(net, x, y, T, gamma):
    weights, biases = list(net.weights), list(net.biases)
    update = np.full(net.n_layers + 1, T + 1)  # no Hebbian term: inference only, as on the numba side

    def run():
        state = reference.feedforward(weights, biases, net.activation, x)
        state.values[-1] = y.copy()
        state.acts[-1] = y.copy()
        reference.predict_errors(weights, biases, state)
        reference.relax(weights, biases, net.activation, gamma, T, state, update, -1.0 / x.shape[0])
    return run


def measure(sizes, batch, dtype, T, gamma, rounds, min_seconds):
    net = ns.mlp(sizes, activation="tanh", seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.random((batch, sizes[0])).astype(dtype)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    runners = {"numba": numba_inference(net, x, y, T, gamma), "numpy": numpy_inference(net, x, y, T, gamma)}
    for run in runners.values():
        run()  # warm-up (compile or load the numba cache)
    samples = {name: [] for name in runners}
    # Both sides get the BLAS thread count ns.train would use for this shape (one thread for small
    # products: two threads on 32x128x128 GEMMs are several times slower on this machine).
    threads = blas.auto_threads(net, batch)
    with blas.limit(threads):
        for _ in range(rounds):
            _round(runners, samples, min_seconds)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "network": "-".join(map(str, sizes)), "batch": batch, "dtype": dtype, "T": T,
        "blas_threads": threads or "default",
        "numba_ms": medians["numba"] * 1e3, "numpy_ms": medians["numpy"] * 1e3,
        "numba_ticks_per_s": T / medians["numba"], "numpy_ticks_per_s": T / medians["numpy"],
        "speedup": medians["numpy"] / medians["numba"],
    }


def _round(runners, samples, min_seconds):
    """One sample of each runner, back to back, so machine noise hits both alike."""
    for name, run in runners.items():
        samples[name].append(time_per_call(run, min_seconds)[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter samples")
    parser.add_argument("--json", help="also write the JSON results to this file")
    parser.add_argument("--T", type=int, default=20)
    parser.add_argument("--gamma", type=float, default=0.1)
    args = parser.parse_args(argv)
    rounds, min_seconds = (3, 0.05) if args.quick else (5, 0.2)
    rows = []
    for name, sizes in NETWORKS.items():
        for batch in BATCHES:
            for dtype in DTYPES:
                rows.append(measure(sizes, batch, dtype, args.T, args.gamma, rounds, min_seconds))
    report = {"benchmark": "il_inference", "machine": platform.machine(), "python": platform.python_version(),
              "numpy": np.__version__, "rounds": rounds, "results": rows}
    print(json.dumps(report, indent=1))
    print()
    print("| network | batch | dtype | BLAS threads | numba ms | NumPy ms | numba ticks/s | NumPy ticks/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['network']} | {r['batch']} | {r['dtype']} | {r['blas_threads']} | {r['numba_ms']:.3f} | {r['numpy_ms']:.3f} | "
              f"{r['numba_ticks_per_s']:.0f} | {r['numpy_ticks_per_s']:.0f} | {r['speedup']:.2f}x |")
    write_json(args.json, report)


if __name__ == "__main__":
    main()
