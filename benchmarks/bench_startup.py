"""Start-up time: a new process to its first training step (warm numba cache), and a cold compile.

The start-up goals:

(a) with numba's on-disk cache warm, a NEW process (``sys.executable`` in a subprocess) that imports
    neurosim, builds 64-128-128-10 (float32) and runs one ``ns.Trainer`` IL step (T = 20,
    gamma = 0.1, SGD) gets there in < 0.8 s. Reported per run, medians over ``--runs``:
    ``spawn_to_step_s`` (wall clock from just before the parent starts the child to the child's
    first completed step: interpreter start-up included; the target is judged on this),
    ``child_s`` (inside the child, from ``import time`` on its first line to the step),
    ``child_import_s`` (of which ``import neurosim``), ``wall_s`` (subprocess wall time, exit
    included) and ``python -c pass`` as the bare interpreter's start-up for reference. One
    unmeasured run first makes sure the cache is warm.
(b) cold compile of every kernel training uses < 30 s: the child runs with ``NUMBA_CACHE_DIR`` set
    to a fresh temporary directory, so nothing is cached, and trains one step of each of il, bp,
    zil and fpa on a dense 64-128-128-10 network in float32 and float64, at batch 1 and batch 32,
    and its feed-forward pass (what ``ns.evaluate`` runs)
    (below and above ``BLAS_MIN_BATCH``, so both code paths compile). ``total_s`` is the child's
    time from its first line to the last step (import included), with a per-case breakdown and the
    number of compiled kernel signatures.

Prints a markdown table; JSON with ``--json``.

    python benchmarks/bench_startup.py [--quick] [--json out.json] [--runs 7] [--no-cold]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import write_json

FIRST_STEP_GOAL_S = 0.8
COLD_COMPILE_GOAL_S = 30.0
COLD_VARIANTS = ("il", "bp", "zil", "fpa")
COLD_DTYPES = ("float32", "float64")
COLD_BATCHES = (1, 32)

# The child: ``import time`` is its first statement, so ``child_s`` counts everything after the
# interpreter itself is up. It prints one JSON line.
FIRST_STEP_CHILD = """\
import time
t0 = time.perf_counter()
import json
import numpy as np
t_numpy = time.perf_counter()
import neurosim as ns
t_import = time.perf_counter()
net = ns.mlp([64, 128, 128, 10], activation="tanh", seed=0, dtype="float32")
rng = np.random.default_rng(0)
x = rng.random((1, 64)).astype("float32")
y = np.eye(10, dtype="float32")[[3]]
trainer = ns.Trainer(net, ns.variant("il", T=20, gamma=0.1), ns.optim.SGD(lr=0.05))
trainer.step(x, y)
t_step = time.perf_counter()
stamp = time.time()
print(json.dumps({"child_s": t_step - t0, "child_import_s": t_import - t_numpy,
                  "child_numpy_s": t_numpy - t0, "step_done_at": stamp}))
"""

COLD_CHILD = """\
import time
t0 = time.perf_counter()
import json, sys
import numpy as np
import neurosim as ns
t_import = time.perf_counter()
variants, dtypes, batches = json.loads(sys.argv[1])
cases = []
for dtype in dtypes:
    for name in variants:
        for batch in batches:
            started = time.perf_counter()
            net = ns.mlp([64, 128, 128, 10], activation="tanh", seed=0, dtype=dtype)
            rng = np.random.default_rng(0)
            x = rng.random((batch, 64)).astype(dtype)
            y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
            ns.Trainer(net, ns.variant(name), ns.optim.SGD(lr=0.01)).step(x, y)
            net.forward(x)  # the evaluation after each epoch
            cases.append({"variant": name, "dtype": dtype, "batch": batch, "s": time.perf_counter() - started})
total = time.perf_counter() - t0
from numba.core.registry import CPUDispatcher
signatures = 0
for module in list(sys.modules.values()):
    if getattr(module, "__name__", "").startswith("neurosim"):
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher):
                signatures += len(value.signatures)
print(json.dumps({"total_s": total, "import_s": t_import - t0, "cases": cases, "signatures": signatures}))
"""


def _child_env(cache_dir=None):
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return env


def _run_child(code, args=(), env=None, timeout=300):
    """``(parsed JSON of the child's last line, wall seconds, parent time.time() at spawn)``."""
    spawned = time.time()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall, spawned


def bare_interpreter(runs=5):
    """Median wall seconds of ``python -c pass`` (the interpreter's own start-up and exit)."""
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def first_step(runs=7, warm=True):
    """New processes to their first completed training step with the numba cache warm."""
    if warm:
        _run_child(FIRST_STEP_CHILD)  # fills the cache if the kernels changed since the last run
    samples = []
    for _ in range(runs):
        child, wall, spawned = _run_child(FIRST_STEP_CHILD)
        samples.append({"spawn_to_step_s": child["step_done_at"] - spawned, "child_s": child["child_s"],
                        "child_import_s": child["child_import_s"], "child_numpy_s": child["child_numpy_s"],
                        "wall_s": wall})
    result = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    result.update({"runs": runs, "samples": samples, "target_s": FIRST_STEP_GOAL_S,
                   "met": result["spawn_to_step_s"] < FIRST_STEP_GOAL_S})
    return result


def cold_compile(variants=COLD_VARIANTS, dtypes=COLD_DTYPES, batches=COLD_BATCHES, fresh_cache=True):
    """One child with an empty ``NUMBA_CACHE_DIR`` compiles every kernel those steps use."""
    with tempfile.TemporaryDirectory(prefix="neurosim-numba-cold-") as cache_dir:
        env = _child_env(cache_dir if fresh_cache else None)
        child, wall, _ = _run_child(COLD_CHILD, (json.dumps([list(variants), list(dtypes), list(batches)]),), env=env,
                                    timeout=900)
    child.update({"wall_s": wall, "fresh_cache": fresh_cache, "variants": list(variants), "dtypes": list(dtypes),
                  "batches": list(batches), "target_s": COLD_COMPILE_GOAL_S,
                  "met": child["total_s"] < COLD_COMPILE_GOAL_S})
    return child


def table(bare, warm, cold):
    lines = ["| measure | seconds | target | met |", "|---|---|---|---|"]
    if bare is not None:
        lines.append(f"| `python -c pass` wall (interpreter alone) | {bare:.3f} | | |")
    if warm is not None:
        lines += [
            f"| spawn to first IL step done (warm cache, median of {warm['runs']}) | "
            f"{warm['spawn_to_step_s']:.3f} | < {warm['target_s']:g} | {'met' if warm['met'] else 'not met'} |",
            f"| of which in the child from `import time` | {warm['child_s']:.3f} | | |",
            f"| of which `import numpy` | {warm['child_numpy_s']:.3f} | | |",
            f"| of which `import neurosim` | {warm['child_import_s']:.3f} | | |",
            f"| child wall to exit | {warm['wall_s']:.3f} | | |",
        ]
    if cold is not None:
        lines += [
            f"| cold compile, fresh NUMBA_CACHE_DIR ({'/'.join(cold['variants'])} x "
            f"{'/'.join(cold['dtypes'])} x batch {'/'.join(map(str, cold['batches']))}; "
            f"{cold['signatures']} kernel signatures) | {cold['total_s']:.2f} | < {cold['target_s']:g} | "
            f"{'met' if cold['met'] else 'not met'} |",
            f"| of which `import neurosim` | {cold['import_s']:.2f} | | |",
            f"| child wall to exit | {cold['wall_s']:.2f} | | |",
        ]
        lines += ["", "| cold case | batch | dtype | first step s (compile included) |", "|---|---|---|---|"]
        lines += [f"| {c['variant']} | {c['batch']} | {c['dtype']} | {c['s']:.2f} |" for c in cold["cases"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 warm runs instead of 7")
    parser.add_argument("--json", help="also write the JSON results to this file")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold compile (about 10-60 s)")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    print("interpreter start-up ...", file=sys.stderr, flush=True)
    bare = bare_interpreter(runs)
    print("first step, warm cache ...", file=sys.stderr, flush=True)
    warm = first_step(runs)
    cold = None
    if not args.no_cold:
        print("cold compile, fresh NUMBA_CACHE_DIR ...", file=sys.stderr, flush=True)
        cold = cold_compile()
    report = {"benchmark": "startup", "machine": platform.machine(), "processor": platform.processor(),
              "python": platform.python_version(), "executable": sys.executable,
              "python_c_pass_s": bare, "first_step": warm, "cold_compile": cold}
    print(table(bare, warm, cold))
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
