"""Milliseconds per training step of every variant, against the machine's own GEMM/GEMV rate.

One training step is ``ns.Trainer(net, ns.variant(name, **SETTINGS[name]), SGD(lr)).step(x, y)``:
the variant's inference phase and weight terms plus the optimiser's update, exactly what
``ns.train`` runs per batch. For every variant, network, batch and dtype it reports the median time
per step, relaxation ticks per second, the achieved GFLOP/s and how far the step is from its FLOP
limit:

- FLOPs of a step = 2 x the multiply-accumulates neurosim's own counters record for one step
  (``ns.counting.count()``, one extra untimed step); elementwise work is not included. Variants
  whose arithmetic bypasses the counted ops (``variant.counted`` is False) get no FLOPs and no ratio.
- The BLAS rate is measured in the same run, under the same BLAS-thread policy, on the network's own
  layer shapes with ``np.dot``: at batch 1 the two GEMVs of a layer (``W a`` and ``W^T e``), from
  batch 2 on the three GEMMs a step does per layer (prediction ``A W^T``, feedback ``E W``, weight
  term ``E^T A``). The FLOP limit of a step is its FLOPs at that rate; "x limit" = step time /
  FLOP limit (1.0 would mean the step runs at the speed of its matrix products alone). Below 1 is
  possible: at small shapes ``np.dot`` is call-overhead bound and a fused kernel beats it, and a
  batch-1 step with GEMM-shaped work (copi's ``n_in^3`` decorrelation products) beats the GEMV rate.

Steps cycle through 4 fixed random batches; parameters, optimiser and variant state are reset to
the start between samples (untimed), so repeated steps cannot drift into divergence (SGD lr 0.01;
copi with SGD(lr=1), as its docs prescribe). Everything in one (network, batch, dtype) group, the
BLAS products included, is timed interleaved round by round, so machine noise hits all alike; each
runner is sampled until its time budget is spent (at least one sample), so slow variants
(implicit_sgd, copi at 784/256) cannot stall the run. A variant that raises is reported in its row.
BLAS threads follow ``neurosim.threads.auto_threads`` as in ``ns.train`` (one thread for small
products, the library default for large ones; ``--blas-threads 1`` pins one thread everywhere, which
is far steadier when the 2 cores are shared: two BLAS threads with one core busy elsewhere were
measured 10-50x slower). Progress goes to stderr, the markdown table to stdout, the JSON to
``--json``. The default run takes about 5 minutes on 2 cores; ``--quick`` about 2.

    python benchmarks/bench_training.py [--quick] [--json out.json] [--variants il bp]
        [--nets 64-128-128-10] [--batches 1 32] [--dtypes float32] [--budget 2.0] [--blas-threads 1]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

from benchlib import fmt, parse_net, time_per_call, write_json
import neurosim as ns
from neurosim import counting
from neurosim import threads as blas

NETWORKS = {"64-128-128-10": [64, 128, 128, 10], "784-512-512-10": [784, 512, 512, 10]}
BATCHES = (1, 32, 256)
DTYPES = ("float32", "float64")
# Hyper-parameters per variant: the reference step for il (T = 20, gamma = 0.1, tanh, SGD),
# every other variant at its own defaults (recorded per row in the JSON).
# copi at eta = eta_r = 1e-3 (the paper's regression and decorrelation rate): its defaults (0.1)
# diverge on 784 non-centred random inputs (eta_r lambda_max(<x x^T>) is about 20), and a step's
# work does not depend on its rates.
# ipc at lr_weights = 1e-3: at 0.01 its per-tick LMS step diverges on 784 random inputs at batch 1
# (lr ||x||^2 is about 2.6).
SETTINGS = {"il": {"T": 20, "gamma": 0.1}, "copi": {"eta": 1e-3, "eta_r": 1e-3}, "ipc": {"lr_weights": 1e-3}}
LR = 0.01  # SGD learning rate of the weight step (time per step does not depend on it)
# Variants whose Step.grads is the whole parameter change, applied exactly by SGD(lr=1).
LR_OVERRIDE = {"copi": 1.0, "ilprox": 1.0, "ilprox_fast": 1.0, "ipc": 1e-3}
BLAS_RUNNER = "_blas"


def problem(sizes, batch, dtype, seed=0):
    """A fixed random batch: inputs in [0, 1), one-hot targets."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, sizes[0])).astype(dtype)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    return x, y


class StepRunner:
    """``trainer.step`` on a pool of ``POOL`` fixed batches in turn (not one sample over and over).

    ``reset()`` puts the parameters, the optimiser and any per-network variant state (copi's ``R``)
    back to the start; :func:`interleave` calls it between samples, outside the timed work, so
    hundreds of steps on the same few batches cannot drift into divergence.
    """

    POOL = 4

    def __init__(self, trainer, sizes, batch, dtype):
        self.trainer = trainer
        self.batches = [problem(sizes, batch, dtype, seed) for seed in range(self.POOL)]
        self.start = trainer.net.params.copy()
        self.calls = 0

    def __call__(self):
        x, y = self.batches[self.calls % self.POOL]
        self.calls += 1
        return self.trainer.step(x, y)

    def reset(self):
        trainer = self.trainer
        trainer.net.params[...] = self.start
        trainer.optimizer.reset()
        reset = getattr(trainer.variant, "reset", None)
        if callable(reset):
            reset(trainer.net)
        self.calls = 0


def blas_products(sizes, batch, dtype, seed=0):
    """``(run, flops, kind)``: the network's layer-shaped matrix products through ``np.dot``.

    Batch 1: per layer ``W a`` and ``W^T e`` (GEMV). Batch >= 2: per layer ``A W^T``, ``E W`` and
    ``E^T A`` (GEMM), the prediction, feedback and weight-term products of a training step.
    """
    rng = np.random.default_rng(seed)
    work, flops = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.standard_normal((n_out, n_in)).astype(dtype)
        if batch == 1:
            a, e = rng.standard_normal(n_in).astype(dtype), rng.standard_normal(n_out).astype(dtype)
            work += [(w, a), (w.T, e)]
            flops += 2 * (2 * n_in * n_out)
        else:
            a = rng.standard_normal((batch, n_in)).astype(dtype)
            e = rng.standard_normal((batch, n_out)).astype(dtype)
            work += [(a, w.T), (e, w), (e.T, a)]
            flops += 3 * (2 * batch * n_in * n_out)

    def run():
        for left, right in work:
            np.dot(left, right)
    return run, flops, "GEMV" if batch == 1 else "GEMM"


def step_flops(trainer, x, y):
    """2 x the multiply-accumulates neurosim's counters record for one step (None if not counted)."""
    if not getattr(trainer.variant, "counted", True):
        return None
    with counting.count() as counter:
        trainer.step(x, y)
    return 2 * int(counter.macs)


def interleave(runners, rounds, budget, min_seconds):
    """Sample every runner once per round, back to back; a runner stops once it has used ``budget``
    seconds (after at least one sample). A runner with a ``reset`` method is reset before each sample
    (untimed); one that raises (e.g. diverges) is reset and retried once, then dropped and reported.
    Returns ``({name: [seconds per call, ...]}, {name: error})``."""
    samples = {name: [] for name in runners}
    spent = {name: 0.0 for name in runners}
    errors = {}
    for _ in range(rounds):
        active = [name for name in runners if name not in errors and (not samples[name] or spent[name] < budget)]
        if not active:
            break
        for name in active:
            run = runners[name]
            for attempt in (1, 2):
                if hasattr(run, "reset"):
                    run.reset()
                try:
                    per_call, elapsed, _ = time_per_call(run, min_seconds)
                except Exception as exc:
                    if attempt == 2:
                        errors[name] = f"{type(exc).__name__}: {exc}"
                    continue
                samples[name].append(per_call)
                spent[name] += elapsed
                break
    return {name: values for name, values in samples.items() if name not in errors}, errors


def measure_group(sizes, batch, dtype, variants, rounds=5, budget=2.0, min_seconds=0.05, lr=LR,
                  progress=True, blas_threads="auto"):
    """Rows for every variant on one (network, batch, dtype), plus the BLAS rate measured beside them.

    ``blas_threads``: ``"auto"`` (``neurosim.threads.auto_threads``, as ``ns.train``), an int, or
    ``None`` (the library's default)."""
    label = "-".join(map(str, sizes))
    rows, runners, flops, trainers = [], {}, {}, {}
    probe_net = ns.mlp(sizes, activation="tanh", seed=0, dtype=dtype)
    threads = blas.auto_threads(probe_net, batch) if blas_threads == "auto" else blas_threads
    with blas.limit(threads):
        for name in variants:
            settings = SETTINGS.get(name, {})
            net = ns.mlp(sizes, activation="tanh", seed=0, dtype=dtype)
            try:
                variant = ns.variant(name, **settings)
                trainer = ns.Trainer(net, variant, ns.optim.SGD(lr=LR_OVERRIDE.get(name, lr)))
                runner = StepRunner(trainer, sizes, batch, dtype)
                started = time.perf_counter()
                runner()  # warm-up: compile or load the numba cache
                warmup = time.perf_counter() - started
                flops[name] = step_flops(trainer, *runner.batches[0])
            except Exception as exc:  # a variant that cannot run this case is reported, not fatal
                rows.append(_row(label, batch, dtype, name, settings, threads, error=f"{type(exc).__name__}: {exc}"))
                _log(progress, f"  {name}: {type(exc).__name__}: {exc}")
                continue
            trainers[name] = (trainer, variant, net, warmup)
            runners[name] = runner
        blas_run, blas_flops, blas_kind = blas_products(sizes, batch, dtype)
        blas_run()
        runners[BLAS_RUNNER] = blas_run
        samples, errors = interleave(runners, rounds, budget, min_seconds)
    for name, error in errors.items():
        rows.append(_row(label, batch, dtype, name, SETTINGS.get(name, {}), threads, error=error))
        _log(progress, f"  {name}: {error}")
    blas_seconds = statistics.median(samples.pop(BLAS_RUNNER))  # np.dot itself does not raise here
    blas_gflops = blas_flops / blas_seconds / 1e9
    for name, values in samples.items():
        trainer, variant, net, warmup = trainers[name]
        seconds = statistics.median(values)
        ticks = int(variant.n_ticks(net))
        row = _row(label, batch, dtype, name, dict(variant.hyper), threads)
        row["lr"] = trainer.optimizer.lr
        row.update({
            "ms_per_step": seconds * 1e3, "samples": len(values), "warmup_s": warmup, "ticks": ticks,
            "ticks_per_s": ticks / seconds if ticks > 0 else None,
            "flops": flops[name], "gflops": None if flops[name] is None else flops[name] / seconds / 1e9,
            "blas_kind": blas_kind, "blas_gflops": blas_gflops,
            "flop_limit_ms": None if flops[name] is None else flops[name] / (blas_gflops * 1e9) * 1e3,
        })
        row["x_flop_limit"] = None if flops[name] is None else row["ms_per_step"] / row["flop_limit_ms"]
        rows.append(row)
    rows.sort(key=lambda r: variants.index(r["variant"]))
    blas_row = {"network": label, "batch": batch, "dtype": dtype, "kind": blas_kind,
                "blas_threads": threads or "default", "flops": blas_flops, "ms": blas_seconds * 1e3,
                "gflops": blas_gflops}
    return rows, blas_row


def _row(label, batch, dtype, name, settings, threads, error=None):
    row = {"network": label, "batch": batch, "dtype": dtype, "variant": name, "settings": settings,
           "blas_threads": threads or "default"}
    if error is not None:
        row["error"] = error
    return row


def _log(enabled, message):
    if enabled:
        print(message, file=sys.stderr, flush=True)


def table(rows):
    lines = ["| network | batch | dtype | variant | BLAS threads | ms/step | ticks/s | GFLOP/s | BLAS rate GFLOP/s | x FLOP limit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['network']} | {r['batch']} | {r['dtype']} | {r['variant']} | {r['blas_threads']} | "
                         f"error: {r['error'][:60]} | | | | |")
            continue
        lines.append(f"| {r['network']} | {r['batch']} | {r['dtype']} | {r['variant']} | {r['blas_threads']} | "
                     f"{r['ms_per_step']:.3f} | {fmt(r['ticks_per_s'], '.0f')} | {fmt(r['gflops'], '.2f')} | "
                     f"{r['blas_kind']} {r['blas_gflops']:.2f} | {fmt(r['x_flop_limit'], '.1f')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="float32 only, 3 rounds, 0.3 s budget per runner and case")
    parser.add_argument("--json", help="also write the JSON results to this file")
    parser.add_argument("--variants", nargs="+", default=None, choices=ns.available(), metavar="NAME",
                        help=f"variants to run (default all: {' '.join(ns.available())})")
    parser.add_argument("--nets", nargs="+", type=parse_net, default=None, metavar="SIZES",
                        help="networks as dash-separated sizes (default 64-128-128-10 784-512-512-10)")
    parser.add_argument("--batches", nargs="+", type=int, default=None)
    parser.add_argument("--dtypes", nargs="+", default=None, choices=DTYPES)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; quick 3)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of sampling per runner and case (default 2.0; quick 0.3)")
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--blas-threads", default="auto",
                        help="BLAS threads: auto (ns.train's rule, default), an int, or 0 for the library default")
    args = parser.parse_args(argv)
    blas_threads = args.blas_threads if args.blas_threads == "auto" else (int(args.blas_threads) or None)
    rounds = args.rounds or (3 if args.quick else 5)
    budget = args.budget if args.budget is not None else (0.3 if args.quick else 2.0)
    min_seconds = min(0.2, budget / rounds)
    variants = args.variants or ns.available()
    nets = args.nets or list(NETWORKS.values())
    batches = args.batches or list(BATCHES)
    dtypes = args.dtypes or (["float32"] if args.quick else list(DTYPES))
    rows, rates = [], []
    started = time.perf_counter()
    for sizes in nets:
        for batch in batches:
            for dtype in dtypes:
                label = "-".join(map(str, sizes))
                _log(True, f"[{time.perf_counter() - started:6.1f}s] {label} batch {batch} {dtype}: "
                           f"{len(variants)} variants + BLAS")
                group, rate = measure_group(sizes, batch, dtype, variants, rounds, budget, min_seconds, args.lr,
                                            blas_threads=blas_threads)
                rows += group
                rates.append(rate)
    report = {"benchmark": "training_step", "machine": platform.machine(), "processor": platform.processor(),
              "python": platform.python_version(), "numpy": np.__version__, "rounds": rounds,
              "budget_s": budget, "lr": args.lr, "lr_override": LR_OVERRIDE, "settings": SETTINGS,
              "blas_threads": args.blas_threads,
              "flops": "2 x multiply-accumulates counted by neurosim.counting for one step",
              "x_flop_limit": "ms per step / (FLOPs / measured BLAS rate); GEMV rate at batch 1, GEMM rate above",
              "seconds": time.perf_counter() - started, "blas_rates": rates, "results": rows}
    print(table(rows))
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
