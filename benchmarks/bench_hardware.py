"""Every variant against BP on a neuromorphic chip: latency and energy of one training step.

The digits MLP of ``models/mlp_digits.toml`` (64-128-128-10, tanh) is mapped onto the chip once per
variant (each population on cores of its own) and one training step is costed on the same batch of
scikit-learn digits for every variant, BP included; figures are per sample (a chip has no batch
dimension: samples run one after another). Each variant runs at its registered defaults; those
whose loss differs from BP's squared error say so in the ``loss`` column. IL is also costed under
send-on-delta events. Beside each: the energy of the same multiply-accumulates on a GPU at peak
(``specs/processors.toml``) and the cosine of the variant's weight update to BP's.

Prints JSON and a markdown table; ``--docs`` rewrites the table in ``docs/hardware.md`` and saves
``docs/img/hardware_variants.png``.

    python benchmarks/bench_hardware.py [--chip loihi] [--batch 32] [--out FILE.json] [--docs]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import benchlib  # noqa: E402

VARIANTS = ("bp", "zil", "fpa", "il", "seqil", "ipc", "ilprox", "implicit_sgd", "copi")
EVENT_THRESHOLDS = (0.01, 0.1)
DOCS_MARK = ("<!-- bench_hardware:begin -->", "<!-- bench_hardware:end -->")


def _cosine(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300))


def run(chip: str = "loihi", batch: int = 32, variants=VARIANTS, thresholds=EVENT_THRESHOLDS) -> dict:
    import neurosim as ns
    from neurosim import config as configs
    from neurosim import hardware

    config = configs.load(HERE.parent / "models" / "mlp_digits.toml")
    net = configs.build_model(configs.validate(config)["model"])
    data = ns.datasets.digits()
    x, y = data.x_train[:batch], data.targets(data.y_train[:batch])
    spec = hardware.load_spec(chip)
    bp_grads = np.concatenate([np.ravel(g) for pair in ns.variant("bp").gradients(net, x, y) for g in pair])
    variants = ("bp",) + tuple(name for name in variants if name != "bp")  # BP is the reference row
    cases = [(name, ns.variant(name), None, name) for name in variants]
    cases += [("il", ns.variant("il"), ns.events.SendOnDelta(t), f"il, events {t:g}") for t in thresholds]
    rows = []
    for name, variant, events, label in cases:
        mapping = hardware.map(net, variant, spec)
        cost = mapping.cost(x, y, events=events)
        grads = variant.gradients(net, x, y, events=events)
        flat = np.concatenate([np.ravel(g) for pair in grads for g in pair])
        per = 1.0 / cost.batch
        rows.append({"label": label, "variant": name, "events": None if events is None else events.threshold,
                     "loss": dict(variant.hyper).get("output", "mse"), "ticks": cost.ticks,
                     "timesteps": len(cost.timesteps), "cores": cost.cores,
                     "latency_us": cost.latency_s * per * 1e6,
                     "energy_uj": cost.total_energy_j * per * 1e6,
                     "energy_by_category_uj": {k: v * per * 1e6 for k, v in cost.energy_j.items()},
                     "synaptic_events": cost.synaptic_events * per, "synaptic_updates": cost.synaptic_updates * per,
                     "messages": cost.messages * per,
                     "gpu_energy_uj": cost.processor_energy_j["a100_fp32_peak"] * per * 1e6,
                     "cosine_to_bp": _cosine(flat, bp_grads), "notes": cost.notes})
    bp = next(row for row in rows if row["label"] == "bp")
    for row in rows:
        row["latency_vs_bp"] = row["latency_us"] / bp["latency_us"]
        row["energy_vs_bp"] = row["energy_uj"] / bp["energy_uj"]
    return {"chip": chip, "chip_title": spec.title, "net": "64-128-128-10 tanh (models/mlp_digits.toml)",
            "batch": int(x.shape[0]), "rows": rows}


def markdown(report) -> str:
    lines = [f"One training step per sample on {report['chip_title']}, digits MLP 64-128-128-10, "
             f"averaged over a batch of {report['batch']} (`python benchmarks/bench_hardware.py --chip "
             f"{report['chip']}`).", "",
             "| variant | loss | ticks | timesteps | latency (us) | energy (uJ) | synaptic / update / neuron / message (uJ) "
             "| latency / BP | energy / BP | GPU, same MACs (uJ) | cosine to BP |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        parts = row["energy_by_category_uj"]
        split = " / ".join(f"{parts[k]:.3g}" for k in ("synaptic", "weight_update", "neuron_update", "messages"))
        lines.append(f"| {row['label']} | {row['loss']} | {row['ticks']} | {row['timesteps']} | "
                     f"{row['latency_us']:.4g} | {row['energy_uj']:.4g} | {split} | {row['latency_vs_bp']:.3g} | "
                     f"{row['energy_vs_bp']:.3g} | {row['gpu_energy_uj']:.3g} | {row['cosine_to_bp']:.3f} |")
    return "\n".join(lines)


def figure(report, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurosim.hardware.plots import COLOURS

    rows = report["rows"]
    labels = [row["label"] for row in rows]
    fig, (total, share, latency) = plt.subplots(1, 3, figsize=(14, 4.0))
    positions = np.arange(len(rows))
    total.bar(positions, [row["energy_uj"] for row in rows], color="#4c72b0", label="on the chip")
    total.scatter(positions, [row["gpu_energy_uj"] for row in rows], marker="o", facecolors="none", color="k",
                  zorder=3, label="same MACs on a GPU at peak")
    total.set_yscale("log")
    total.set_ylabel("energy per sample (uJ, log)")
    total.set_title(f"energy of a training step on {report['chip_title']}")
    total.legend(fontsize=7)
    bottom = np.zeros(len(rows))
    for category in ("synaptic", "weight_update", "neuron_update", "messages"):
        fractions = np.array([row["energy_by_category_uj"][category] / row["energy_uj"] for row in rows])
        share.bar(positions, fractions, bottom=bottom, color=COLOURS[category], label=category.replace("_", " "))
        bottom += fractions
    share.set_ylim(0, 1.25)
    share.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    share.set_ylabel("share of the step's energy")
    share.set_title("where the energy goes")
    share.legend(fontsize=7, loc="upper center", ncol=4, frameon=False, handlelength=1.2, columnspacing=0.8)
    latency.bar(positions, [row["latency_us"] for row in rows], color="#55a868")
    latency.set_yscale("log")
    latency.set_ylabel("latency per sample (us, log)")
    latency.set_title("latency of a training step")
    for ax in (total, share, latency):
        ax.set_xticks(positions, labels, rotation=40, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_docs(report, docs: Path) -> None:
    page = docs / "hardware.md"
    text = page.read_text()
    begin, end = DOCS_MARK
    if begin not in text or end not in text:
        raise ValueError(f"{page} has no {begin} ... {end} block to fill")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    page.write_text(head + begin + "\n" + markdown(report) + "\n" + end + tail)
    figure(report, docs / "img" / "hardware_variants.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chip", default="loihi", help="chip spec name or path (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=32, help="digits samples costed (default: %(default)s)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names")
    parser.add_argument("--out", default="", help="write the JSON report here")
    parser.add_argument("--docs", action="store_true", help="rewrite the table in docs/hardware.md and its figure")
    args = parser.parse_args(argv)
    benchlib.one_blas_thread()
    report = run(args.chip, args.batch, tuple(filter(None, args.variants.split(","))))
    print(json.dumps(report, indent=1))
    print()
    print(markdown(report))
    benchlib.write_json(args.out, report)
    if args.docs:
        write_docs(report, HERE.parent / "docs")
    return report


if __name__ == "__main__":
    main()
