"""Peak memory of training, per variant against BP, beside the theoretical minimum.

Each variant trains a few steps in a fresh process (so one variant's buffers never count against
another's) on random data for a 784-1000x4-10 MLP (float64, batch 32, SGD or the variant's own
optimiser state). Reported per variant, all in MB:

- ``traced``: the peak of NumPy's and Python's allocations from building the network to the end
  of the steps (tracemalloc): weights, workspaces, caches and every temporary (the kernels are
  compiled beforehand on a tiny network of the same depth, so compiling does not count);
- ``rss``: the growth of the process's peak resident memory over the same span (numba's own
  allocations and BLAS buffers included, which tracemalloc does not see);
- ``minimum``: what any implementation must hold: the weights, the gradient or update (one more
  copy), the optimiser's state, and the activity of every population for the batch (values and
  errors, ``2 * B * sum n_l`` numbers; BP holds activations and deltas, the same count).

Prints JSON and a markdown table with each variant's ratio to BP.

    python benchmarks/bench_memory.py [--quick] [--variants bp,il,...] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import benchlib  # noqa: E402

VARIANTS = ("bp", "zil", "il", "fpa", "seqil", "ipc", "ilprox", "copi")
FULL = {"sizes": [784, 1000, 1000, 1000, 1000, 10], "batch": 32, "steps": 3}
QUICK = {"sizes": [64, 48, 48, 10], "batch": 8, "steps": 2}

_CHILD = r"""
import json, resource, sys, tracemalloc
import numpy as np
import neurosim as ns
from neurosim import threads
spec = json.loads(sys.argv[1])
threads.limit(1)
rng = np.random.default_rng(0)
# compile on a tiny network of the same depth first: compiling allocates far more than training
tiny = [4] * (len(spec["sizes"]) - 1) + [spec["sizes"][-1]]
ns.Trainer(ns.mlp(tiny, seed=0), ns.variant(spec["variant"]), ns.optim.SGD(lr=1e-4)).step(
    rng.normal(size=(2, 4)), rng.normal(size=(2, spec["sizes"][-1])))
x = rng.normal(size=(spec["batch"], spec["sizes"][0]))
y = rng.normal(size=(spec["batch"], spec["sizes"][-1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
net = ns.mlp(spec["sizes"], seed=0)
variant = ns.variant(spec["variant"])
trainer = ns.Trainer(net, variant, ns.optim.SGD(lr=1e-4))
for _ in range(spec["steps"]):
    trainer.step(x, y)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
state = trainer.optimizer.state_bytes() + sum(v.nbytes for v in variant.learned_state(net).values())
print(json.dumps({"traced_bytes": peak, "rss_growth_bytes": (after - before) * 1024,
                  "params_bytes": net.params.nbytes, "state_bytes": state}))
"""


def minimum_bytes(sizes, batch, params_bytes, state_bytes, itemsize=8) -> int:
    """Weights, one gradient-sized buffer, the optimiser's and variant's state, and values and
    errors of every population for the batch."""
    return 2 * params_bytes + state_bytes + 2 * batch * sum(sizes) * itemsize


def measure(variant: str, spec: dict) -> dict:
    result = subprocess.run([sys.executable, "-c", _CHILD, json.dumps({**spec, "variant": variant})],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return {"variant": variant, "error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["variant"] = variant
    row["minimum_bytes"] = minimum_bytes(spec["sizes"], spec["batch"], row["params_bytes"], row["state_bytes"])
    return row


def run(variants=VARIANTS, quick: bool = False) -> dict:
    spec = QUICK if quick else FULL
    rows = [measure(name, spec) for name in (("bp",) + tuple(v for v in variants if v != "bp"))]
    bp = rows[0]
    for row in rows:
        if "error" not in row and "error" not in bp:
            row["traced_vs_bp"] = row["traced_bytes"] / max(bp["traced_bytes"], 1)
    return {"net": "-".join(map(str, spec["sizes"])), "batch": spec["batch"], "steps": spec["steps"],
            "optimizer": "SGD (no state)", "rows": rows}


def table(report) -> str:
    mb = 1 / 2 ** 20
    lines = [f"Peak memory of a training step, {report['net']}, batch {report['batch']}, float64 (MB)", "",
             "| variant | traced peak | RSS growth | minimum | traced / minimum | traced / BP |",
             "|---|---|---|---|---|---|"]
    for row in report["rows"]:
        if "error" in row:
            lines.append(f"| {row['variant']} | failed: {row['error']} | | | | |")
            continue
        lines.append(f"| {row['variant']} | {row['traced_bytes'] * mb:.1f} | {row['rss_growth_bytes'] * mb:.1f} | "
                     f"{row['minimum_bytes'] * mb:.1f} | {row['traced_bytes'] / row['minimum_bytes']:.2f} | "
                     f"{row.get('traced_vs_bp', float('nan')):.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small network (for tests)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names")
    parser.add_argument("--out", default="", help="write the JSON report here")
    args = parser.parse_args(argv)
    report = run(tuple(filter(None, args.variants.split(","))), quick=args.quick)
    print(json.dumps(report, indent=1))
    print()
    print(table(report))
    benchlib.write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
