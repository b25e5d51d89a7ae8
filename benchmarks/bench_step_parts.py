"""Where a training step's time goes: the compiled call against the Python around it, per variant.

A training step on a dense network with plain SGD is one compiled call (the feed-forward sweep, every
tick and the update) plus the Python of ``ns.Trainer.step`` around it (argument checks, the
workspace, the counters, the call's own dispatch of some thirty arguments). This benchmark times,
in the same interleaved rounds (float32, one BLAS thread, medians):

- ``trainer``: ``ns.Trainer(net, variant, SGD(lr)).step(x, y)``, what a user pays per step;
- ``call``: the compiled whole-step kernel alone, called with the very arguments that step passed
  it (captured once from a real step; the parameters are reset between samples, as in
  ``bench_training.py``). Variants whose step is not one compiled call (copi, implicit_sgd, bp)
  have no ``call``.

The step's FLOPs are 2 x the multiply-accumulates neurosim's counters record (as in
``bench_training.py``). Against IL's rate in the same run it reports each variant's rate as a
fraction of IL's, both for the whole step and for the compiled calls alone, and the time a step
may take to run at ``--fraction`` (default 2/3) of IL's rate. The verdict says which part stands in
the way: the compiled call alone taking longer than that (no change to the Python can help), or
the Python around it (the kernel would be fast enough alone).

    python benchmarks/bench_step_parts.py [--nets 64-128-128-10 784-512-512-10] [--batch 1]
        [--variants il seqil fpa ipc ilprox copi] [--fraction 0.6667] [--json out.json] [--quick]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

from bench_training import LR, LR_OVERRIDE, SETTINGS, StepRunner, interleave, step_flops
from benchlib import fmt, one_blas_thread, parse_net, write_json
import neurosim as ns
from neurosim.kernels import schedule as schedule_kernels

NETWORKS = ([64, 128, 128, 10], [784, 512, 512, 10])
VARIANTS = ("il", "seqil", "fpa", "ipc", "ilprox", "copi")
FRACTION = 2 / 3
REFERENCE = "il"


def _log(message):
    print(message, file=sys.stderr, flush=True)


def captured_call(trainer, x, y):
    """``(kernel, arguments)`` of the one compiled whole-step call that ``trainer.step(x, y)`` makes,
    or ``None`` where the step makes no such call (or several). The kernel is looked up on its module
    at every step, so wrapping that attribute for one step sees what the step passes."""
    kernel = schedule_kernels.run_step
    calls = []

    def recording(*arguments):
        calls.append(arguments)
        return kernel(*arguments)

    schedule_kernels.run_step = recording
    try:
        trainer.step(x, y)
    finally:
        schedule_kernels.run_step = kernel
    return (kernel, calls[0]) if len(calls) == 1 else None


class CallRunner:
    """The captured kernel with its captured arguments; ``reset`` resets the step runner's state
    (the parameters the kernel updates in place are the network's own)."""

    def __init__(self, kernel, arguments, step_runner):
        self.kernel, self.arguments, self.step_runner = kernel, arguments, step_runner

    def __call__(self):
        status = self.kernel(*self.arguments)[0]
        if status != 0:
            raise RuntimeError(f"the compiled step returned status {status}")

    def reset(self):
        self.step_runner.reset()


def measure(sizes, batch, variants, rounds, budget, min_seconds):
    """Rows ``{variant, flops, trainer_us, call_us, ...}`` of one network, sampled in the same rounds."""
    runners, flops, ticks = {}, {}, {}
    for name in variants:
        net = ns.mlp(sizes, activation="tanh", seed=0, dtype="float32")
        trainer = ns.Trainer(net, ns.variant(name, **SETTINGS.get(name, {})),
                             ns.optim.SGD(lr=LR_OVERRIDE.get(name, LR)))
        step_runner = StepRunner(trainer, sizes, batch, "float32")
        step_runner()  # compile or load the numba cache
        flops[name] = step_flops(trainer, *step_runner.batches[0])
        ticks[name] = int(trainer.variant.n_ticks(net))
        runners[name] = step_runner
        step_runner.reset()
        call = captured_call(trainer, *step_runner.batches[0])
        step_runner.reset()
        if call is not None:
            runners[name + "/call"] = CallRunner(*call, step_runner)
    samples, errors = interleave(runners, rounds, budget, min_seconds)
    for name, error in errors.items():
        _log(f"  {name}: {error}")
    label = "-".join(map(str, sizes))
    rows = []
    for name in variants:
        if name not in samples:
            continue
        trainer_s = statistics.median(samples[name])
        call_s = statistics.median(samples[name + "/call"]) if name + "/call" in samples else None
        rows.append({"network": label, "batch": batch, "variant": name, "ticks": ticks[name], "flops": flops[name],
                     "trainer_us": trainer_s * 1e6, "call_us": None if call_s is None else call_s * 1e6,
                     "python_us": None if call_s is None else (trainer_s - call_s) * 1e6,
                     "gflops": None if flops[name] is None else flops[name] / trainer_s / 1e9,
                     "call_gflops": None if call_s is None or flops[name] is None else flops[name] / call_s / 1e9,
                     "samples": len(samples[name])})
    return rows


def judge(rows, fraction):
    """Add each row's rate relative to IL's (whole step and compiled call), the time allowed for
    ``fraction`` of IL's rate, and a verdict."""
    by_network = {}
    for row in rows:
        by_network.setdefault(row["network"], []).append(row)
    for group in by_network.values():
        reference = next((r for r in group if r["variant"] == REFERENCE), None)
        for row in group:
            row.update({"vs_il": None, "call_vs_il": None, "allowed_us": None, "verdict": "no FLOPs counted"})
            if reference is None or row["gflops"] is None or reference["gflops"] is None:
                continue
            row["vs_il"] = row["gflops"] / reference["gflops"]
            if row["call_gflops"] is not None and reference["call_gflops"] is not None:
                row["call_vs_il"] = row["call_gflops"] / reference["call_gflops"]
            row["allowed_us"] = row["flops"] / (fraction * reference["gflops"] * 1e9) * 1e6
            if row["variant"] == REFERENCE:
                row["verdict"] = "the reference"
            elif row["vs_il"] >= fraction:
                row["verdict"] = f"meets {fraction:.2f} of IL's rate"
            elif row["call_us"] is None:
                row["verdict"] = "below; its step is not one compiled call"
            elif row["call_us"] > row["allowed_us"]:
                row["verdict"] = (f"below; the compiled call alone takes {row['call_us']:.1f} us where the whole "
                                  f"step may take {row['allowed_us']:.1f} us")
            else:
                row["verdict"] = (f"below; the call fits ({row['call_us']:.1f} of {row['allowed_us']:.1f} us), "
                                  f"the {row['python_us']:.1f} us of Python around it does not")
    return rows


def table(rows):
    lines = ["| network | batch | variant | ticks | step us | compiled call us | Python us | x IL rate (step) | "
             "x IL rate (calls) | allowed us | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['batch']} | {r['variant']} | {r['ticks']} | {r['trainer_us']:.1f} | "
                     f"{fmt(r['call_us'], '.1f')} | {fmt(r['python_us'], '.1f')} | {fmt(r['vs_il'], '.2f')} | "
                     f"{fmt(r['call_vs_il'], '.2f')} | {fmt(r['allowed_us'], '.1f')} | {r['verdict']} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", type=parse_net, default=None, metavar="SIZES",
                        help="networks as dash-separated sizes (default 64-128-128-10 784-512-512-10)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=ns.available(), metavar="NAME")
    parser.add_argument("--fraction", type=float, default=FRACTION, help="of IL's rate (default 2/3)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7; quick 3)")
    parser.add_argument("--budget", type=float, default=None, help="seconds per runner (default 2.0; quick 0.2)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 0.2 s per runner")
    parser.add_argument("--json", help="also write the JSON results to this file")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error("--batch must be >= 1")
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must be in (0, 1]")
    variants = list(dict.fromkeys([REFERENCE] + args.variants))
    rounds = args.rounds or (3 if args.quick else 7)
    budget = args.budget if args.budget is not None else (0.2 if args.quick else 2.0)
    min_seconds = min(0.1, budget / rounds)
    one_blas_thread()
    started, rows = time.perf_counter(), []
    for sizes in args.nets or NETWORKS:
        _log(f"[{time.perf_counter() - started:6.1f}s] {'-'.join(map(str, sizes))} batch {args.batch}: "
             f"{len(variants)} variants, step and compiled call")
        rows += measure(sizes, args.batch, variants, rounds, budget, min_seconds)
    judge(rows, args.fraction)
    report = {"benchmark": "step_parts", "machine": platform.machine(), "processor": platform.processor(),
              "python": platform.python_version(), "numpy": np.__version__, "dtype": "float32", "blas_threads": 1,
              "rounds": rounds, "budget_s": budget, "fraction": args.fraction, "reference": REFERENCE,
              "flops": "2 x multiply-accumulates counted by neurosim.counting for one step",
              "seconds": time.perf_counter() - started, "results": rows}
    print(table(rows))
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
