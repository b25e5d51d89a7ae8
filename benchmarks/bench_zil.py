"""Milliseconds per training step of Z-IL against BP on MLPs, a CNN and an RNN, side by side.

A training step is ``ns.Trainer(net, variant, ns.optim.SGD(lr=1e-6)).step(x, y)``: the variant's
``compute`` on a mini-batch plus the SGD update, exactly what ``neurosim.train`` runs per batch. Z-IL
and BP see the same network, batch and optimiser, on the same kernels, and are timed interleaved round
by round so machine noise hits both alike; medians are reported with the Z-IL/BP ratio of the
medians (the target's measure) and of the best rounds (least disturbed by other processes).
``--counting off`` switches the always-on work totals off, timing the kernels alone: BP's generic
(conv/RNN) backward pass rebuilds its count templates on every call, which counting-on charges to
BP (on the RNN about half of its step).

Z-IL's ``compute`` is the event-driven wavefront (see ``neurosim/variants/zil.py``): on tick ``L - l``
only layer ``l`` updates its value and error, feeds back and takes its Hebbian term; the layers above
have retired. Its arithmetic is BP's (``2 S + R`` MACs, critical path ``2 L``) plus ``O(neurons)``
elementwise work, so the target is Z-IL <= 1.1x BP (Salvatori et al., AAAI 2022, arXiv 2103.04689,
report ~3%). The networks: MLPs 64-128-128-10 and 784-512-512-10 (tanh), and the CNN and RNN of
``models/cnn_digits.toml`` and ``models/rnn_digits.toml``. BLAS is limited
to ``--blas-threads`` threads (default 1; 0 leaves it alone), including the OpenBLAS that numba's
``np.dot`` uses inside the kernels (SciPy's, loaded here before the limit is set: a library loaded
after ``threadpool_limits`` is entered escapes it). ``--clock cpu`` (the default) times process CPU
time, which on a shared machine is far less disturbed by other processes than wall time (with one
BLAS thread the step runs on one thread, so CPU time is its run time); ``--clock wall`` for
``perf_counter``. Prints JSON and a markdown table.

    python benchmarks/bench_zil.py [--quick] [--json out.json] [--batch 1 32 256] [--blas-threads 1]
                                   [--clock cpu|wall] [--counting on|off] [--models ...]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from benchlib import write_json
import neurosim as ns
from neurosim import threads as blas_threads

from neurosim.layers import AvgPool2d, Conv2d, Dense, Flatten


def cnn(dtype):
    """The models/cnn_digits.toml network: conv 1->8 3x3, pool 2, conv 8->16 3x3, pool 2, dense 64->10."""
    return ns.Network([Conv2d(1, 8, 3, padding=1), AvgPool2d(2), Conv2d(8, 16, 3, padding=1), AvgPool2d(2),
                       Flatten(), Dense(64, 10)], activation="tanh", input_shape=(1, 8, 8), seed=0, dtype=dtype)


def rnn(dtype):
    """The models/rnn_digits.toml network: Elman RNN 8 -> 64 -> 10 over 8 steps."""
    return ns.rnn(8, 64, 10, activation="tanh", seed=0, dtype=dtype)


def mlp_small(dtype):
    return ns.mlp([64, 128, 128, 10], activation="tanh", seed=0, dtype=dtype)


def mlp_large(dtype):
    return ns.mlp([784, 512, 512, 10], activation="tanh", seed=0, dtype=dtype)


MODELS = {"mlp_64-128-128-10": (mlp_small, (64,)), "mlp_784-512-512-10": (mlp_large, (784,)),
          "cnn_digits": (cnn, (1, 8, 8)), "rnn_digits": (rnn, (8, 8))}


def measure(model, batch, dtype, rounds, min_seconds, clock=time.process_time):
    make, sample_shape = MODELS[model]
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + sample_shape).astype(dtype)
    y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
    runners = {}
    for name in ("bp", "zil"):
        trainer = ns.Trainer(make(dtype), ns.variant(name), ns.optim.SGD(lr=1e-6))
        runners[name] = lambda trainer=trainer: trainer.step(x, y)
    for run in runners.values():
        run()  # warm-up (numba cache, workspaces)
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            repeats, started = 0, clock()
            while True:
                run()
                repeats += 1
                elapsed = clock() - started
                if elapsed >= min_seconds:
                    break
            samples[name].append(elapsed / repeats)
    bp, zil = (statistics.median(samples[name]) for name in ("bp", "zil"))
    best = {name: min(values) for name, values in samples.items()}
    ratios = [z / b for b, z in zip(samples["bp"], samples["zil"])]
    net = make(dtype)
    net.check_input(x)
    return {"model": model, "batch": batch, "dtype": dtype, "layers_L": net.n_layers,
            "bp_ms": bp * 1e3, "zil_ms": zil * 1e3, "zil_over_bp": zil / bp,
            "bp_best_ms": best["bp"] * 1e3, "zil_best_ms": best["zil"] * 1e3,
            "zil_over_bp_best": best["zil"] / best["bp"],
            "zil_over_bp_per_round": ratios, "met": zil / bp <= 1.1}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="batches 1 and 32, fewer rounds, shorter samples")
    parser.add_argument("--json", help="also write the JSON results to this file")
    parser.add_argument("--batch", type=int, nargs="+", default=None, help="default 1 32 256 (quick: 1 32)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--dtype", nargs="+", default=["float64"], choices=["float64", "float32"])
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (0: library default)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="process CPU time (default) or wall time")
    parser.add_argument("--counting", choices=["on", "off"], default="on",
                        help="the always-on work totals (default on, as users run) or off (kernels only)")
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    from threadpoolctl import threadpool_info
    rounds, min_seconds = (7, 0.05) if args.quick else (21, 0.1)
    batches = args.batch or ([1, 32] if args.quick else [1, 32, 256])
    # neurosim.threads also limits the SciPy BLAS that numba's kernels call.
    limit = blas_threads.limit(args.blas_threads if args.blas_threads > 0 else None)
    ns.counting.set_enabled(args.counting == "on")
    with limit:
        rows = [measure(model, batch, dtype, rounds, min_seconds, clock)
                for model in args.models for batch in batches for dtype in args.dtype]
        blas = [(os.path.basename(lib["filepath"]), lib["num_threads"]) for lib in threadpool_info()
                if lib["user_api"] == "blas"]
    report = {"benchmark": "zil_wavefront_vs_bp_training_step", "machine": platform.machine(),
              "cpus": os.cpu_count(), "blas_threads": args.blas_threads or "default", "blas": blas,
              "clock": args.clock, "counting": args.counting,
              "processor": platform.processor(), "python": platform.python_version(),
              "numpy": np.__version__, "rounds": rounds, "target": "Z-IL / BP <= 1.1",
              "paper_claim": "Z-IL within ~3% of BP per update (Salvatori et al., AAAI 2022, "
              "arXiv 2103.04689)", "results": rows}
    print(json.dumps(report, indent=1))
    print()
    print("| model | batch | dtype | L | BP ms/step | Z-IL ms/step | Z-IL / BP (medians) | best of rounds | "
          "rounds' ratios | <= 1.1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        spread = r["zil_over_bp_per_round"]
        print(f"| {r['model']} | {r['batch']} | {r['dtype']} | {r['layers_L']} | {r['bp_ms']:.3f} | "
              f"{r['zil_ms']:.3f} | {r['zil_over_bp']:.2f}x | {r['zil_over_bp_best']:.2f}x | "
              f"{min(spread):.2f}-{max(spread):.2f} | {'yes' if r['met'] else '**no**'} |")
    write_json(args.json, report)


if __name__ == "__main__":
    main()
