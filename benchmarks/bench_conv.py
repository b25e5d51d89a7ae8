"""Milliseconds per training step of Z-IL against BP on a CNN and an RNN, side by side.

A training step is one ``variant.compute`` on a mini-batch plus the SGD update, exactly what
``neurosim.train`` runs per batch. Z-IL and BP see the same network, batch and optimiser, and are
timed interleaved round by round so machine noise hits both alike; medians are reported with the
Z-IL/BP ratio. Salvatori et al. (AAAI 2022, arXiv 2103.04689) report Z-IL within ~3% of BP per
update with an implementation that computes only the terms the update needs; so does ours: Z-IL's
``compute`` is the event-driven wavefront of ``neurosim/variants/zil.py`` (on tick L - l only layer l
updates, feeds back and takes its Hebbian term; the layers above have retired), BP's work plus
O(neurons). The full circuit (``ns.Simulator``), which re-predicts every population the error wave
has reached on every tick, does O(T^2) layer evaluations on an unrolled RNN of T steps where BP does
O(T), as Zahid et al. 2023 predict for a simulated PC circuit. ``benchmarks/bench_zil.py`` adds MLPs
and more batch sizes. BLAS is limited to ``--blas-threads`` threads (default 1; 0 leaves it alone),
including the OpenBLAS numba's kernels call (SciPy's, loaded before the limit is set so that it is
reached): on a small shared machine multi-threaded GEMMs of these sizes cost more than they save and
make the timings erratic. Prints JSON and a markdown table.

    python benchmarks/bench_conv.py [--quick] [--json out.json] [--batch 1 32 128] [--blas-threads 1]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics

import numpy as np

from benchlib import time_per_call, write_json
import neurosim as ns
from neurosim import threads as blas
from neurosim.layers import AvgPool2d, Conv2d, Dense, Flatten


def cnn(dtype):
    """The models/cnn_digits.toml network: conv 1->8 3x3, pool 2, conv 8->16 3x3, pool 2, dense 64->10."""
    return ns.Network([Conv2d(1, 8, 3, padding=1), AvgPool2d(2), Conv2d(8, 16, 3, padding=1), AvgPool2d(2),
                       Flatten(), Dense(64, 10)], activation="tanh", input_shape=(1, 8, 8), seed=0, dtype=dtype)


def rnn(dtype):
    """The models/rnn_digits.toml network: Elman RNN 8 -> 64 -> 10 over 8 steps."""
    return ns.rnn(8, 64, 10, activation="tanh", seed=0, dtype=dtype)


MODELS = {"cnn_digits": (cnn, (1, 8, 8)), "rnn_digits": (rnn, (8, 8))}


def measure(model, batch, dtype, rounds, min_seconds):
    make, sample_shape = MODELS[model]
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + sample_shape).astype(dtype)
    y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
    runners = {}
    for name in ("bp", "zil"):
        net, variant, optimizer = make(dtype), ns.variant(name), ns.optim.SGD(lr=1e-6)

        def step(net=net, variant=variant, optimizer=optimizer):
            optimizer.step(net, variant.compute(net, x, y).grads)
        runners[name] = step
    for run in runners.values():
        run()  # warm-up (numba cache)
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            samples[name].append(time_per_call(run, min_seconds)[0])
    bp, zil = (statistics.median(samples[name]) for name in ("bp", "zil"))
    net = make(dtype)
    net.check_input(x)
    return {"model": model, "batch": batch, "dtype": dtype, "layers_L": net.n_layers,
            "zil_ticks": ns.variant("zil").n_ticks(net), "bp_ms": bp * 1e3, "zil_ms": zil * 1e3,
            "zil_over_bp": zil / bp}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter samples")
    parser.add_argument("--json", help="also write the JSON results to this file")
    parser.add_argument("--batch", type=int, nargs="+", default=[32])
    parser.add_argument("--dtype", nargs="+", default=["float64"], choices=["float64", "float32"])
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (0: library default)")
    args = parser.parse_args(argv)
    rounds, min_seconds = (3, 0.1) if args.quick else (7, 0.3)
    # neurosim.threads also limits the SciPy BLAS that numba's kernels call.
    limit = blas.limit(args.blas_threads if args.blas_threads > 0 else None)
    with limit:
        rows = [measure(model, batch, dtype, rounds, min_seconds)
                for model in MODELS for batch in args.batch for dtype in args.dtype]
    report = {"benchmark": "zil_vs_bp_training_step", "machine": platform.machine(),
              "blas_threads": args.blas_threads or "default",
              "processor": platform.processor(), "python": platform.python_version(),
              "numpy": np.__version__, "rounds": rounds, "paper_claim": "Z-IL within ~3% of BP per update "
              "(Salvatori et al., AAAI 2022, arXiv 2103.04689)", "results": rows}
    print(json.dumps(report, indent=1))
    print()
    print("| model | batch | dtype | L | Z-IL ticks | BP ms/step | Z-IL ms/step | Z-IL / BP |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['dtype']} | {r['layers_L']} | {r['zil_ticks']} | "
              f"{r['bp_ms']:.3f} | {r['zil_ms']:.3f} | {r['zil_over_bp']:.2f}x |")
    write_json(args.json, report)


if __name__ == "__main__":
    main()
