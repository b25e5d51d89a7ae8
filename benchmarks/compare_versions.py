"""Training-step time of this working tree against another commit, side by side in one run.

For a change to the core, "no slower than before" must be measured, not assumed: this script checks
out ``--baseline`` (any git revision, default ``HEAD~1``) into a temporary git worktree and times
``ns.Trainer(net, ns.variant(name), SGD(lr)).step(x, y)`` in both trees. Each tree runs in its own
child process (its own numba cache, warmed before timing); the children alternate round by round,
so machine noise hits both alike, and every row reports the median over rounds of each side's
median step time and the ratio ``current / baseline`` (below 1: faster now).

One BLAS thread (steady on shared cores), float32 by default, 64-128-128-10 and 784-512-512-10 at
batch 1 and 32. Prints a markdown table; JSON with ``--json``.

    python benchmarks/compare_versions.py [--baseline REV] [--variants il bp zil fpa]
        [--nets 64-128-128-10] [--batches 1 32] [--dtypes float32] [--rounds 5] [--budget 0.3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import parse_net, write_json

ROOT = Path(__file__).resolve().parent.parent

# Run inside a child: times every case for ``budget`` seconds and prints {case: seconds per step}.
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import neurosim as ns
from neurosim import threads
threads.limit(1)
cases, budget = json.loads(sys.argv[2]), float(sys.argv[3])
out = {}
for key, (name, sizes, batch, dtype) in cases.items():
    net = ns.mlp(sizes, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, sizes[0])).astype(dtype)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    start = net.params.copy()
    trainer = ns.Trainer(net, ns.variant(name), ns.optim.SGD(lr=1e-4))
    for _ in range(3):
        trainer.step(x, y)
    times = []
    spent = 0.0
    while spent < budget or len(times) < 5:
        net.params[...] = start
        t0 = time.perf_counter()
        trainer.step(x, y)
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    out[key] = sorted(times)[len(times) // 2]
print(json.dumps(out))
"""


def worktree(revision: str) -> Path:
    """A detached git worktree of ``revision`` in a fresh temporary directory."""
    path = Path(tempfile.mkdtemp(prefix="neurosim-baseline-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), revision],
                   check=True, capture_output=True)
    return path


def remove_worktree(path: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                   capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def run_child(tree: Path, cases: dict, budget: float) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tree / ".numba-cache"))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tree), json.dumps(cases), str(budget)],
                          check=True, capture_output=True, text=True, env=env, cwd=str(tree))
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD~1", help="git revision to compare against")
    parser.add_argument("--variants", nargs="+", default=["il", "bp", "zil", "fpa"])
    parser.add_argument("--nets", nargs="+", type=parse_net,
                        default=[[64, 128, 128, 10], [784, 512, 512, 10]])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of steps per case and round")
    parser.add_argument("--json", help="also write the JSON results to this file")
    args = parser.parse_args(argv)
    cases = {f"{name}|{'-'.join(map(str, sizes))}|{batch}|{dtype}": (name, sizes, batch, dtype)
             for sizes in args.nets for batch in args.batches for dtype in args.dtypes
             for name in args.variants}
    baseline = worktree(args.baseline)
    try:
        samples = {"baseline": [], "current": []}
        trees = {"baseline": baseline, "current": ROOT}
        for side in trees:  # warm both numba caches (compiles; not timed)
            run_child(trees[side], cases, 0.0)
        for round_index in range(args.rounds):
            order = ("baseline", "current") if round_index % 2 == 0 else ("current", "baseline")
            for side in order:
                print(f"round {round_index + 1}/{args.rounds}: {side}", file=sys.stderr, flush=True)
                samples[side].append(run_child(trees[side], cases, args.budget))
    finally:
        remove_worktree(baseline)
    rows = []
    for key in cases:
        before = statistics.median(sample[key] for sample in samples["baseline"])
        after = statistics.median(sample[key] for sample in samples["current"])
        name, net, batch, dtype = key.split("|")
        rows.append({"variant": name, "network": net, "batch": int(batch), "dtype": dtype,
                     "baseline_ms": before * 1e3, "current_ms": after * 1e3, "ratio": after / before})
    print(f"| variant | network | batch | dtype | {args.baseline} ms | current ms | current / baseline |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['network']} | {row['batch']} | {row['dtype']} | "
              f"{row['baseline_ms']:.3f} | {row['current_ms']:.3f} | {row['ratio']:.2f} |")
    write_json(args.json, {"baseline": args.baseline, "rounds": args.rounds, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
