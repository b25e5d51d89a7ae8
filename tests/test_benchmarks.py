"""Smoke tests of the benchmark scripts: their measuring functions on a tiny network, tiny budgets.

The numbers are not checked against targets (the machine is shared and noisy), only that every
script runs end to end and reports what it promises.
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
TINY = [8, 16, 4]


def load(name):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # as when run as ``python benchmarks/<name>.py``: benchlib
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def training():
    return load("bench_training")


@pytest.fixture(scope="module")
def peers():
    return load("compare_peers")


@pytest.fixture(scope="module")
def startup():
    return load("bench_startup")


def test_bench_training_group(training, monkeypatch):
    import neurosim as ns
    # A variant whose arithmetic bypasses the counters gets no FLOPs and no ratio.
    monkeypatch.setattr(ns.variants.REGISTRY["bp"], "counted", False)
    rows, rate = training.measure_group(TINY, 4, "float64", ["il", "bp", "implicit_sgd"], rounds=2, budget=0.01,
                                        min_seconds=0.001, progress=False)
    by_name = {row["variant"]: row for row in rows}
    assert set(by_name) == {"il", "bp", "implicit_sgd"}
    il = by_name["il"]
    assert il["settings"]["T"] == 20 and il["settings"]["gamma"] == 0.1
    assert il["ms_per_step"] > 0 and il["ticks"] == 20 and il["ticks_per_s"] > 0
    assert il["flops"] > 0 and il["gflops"] > 0 and il["x_flop_limit"] > 0
    assert il["blas_kind"] == "GEMM" and rate["gflops"] > 0
    assert by_name["bp"]["flops"] is None and by_name["bp"]["x_flop_limit"] is None
    assert by_name["bp"]["ms_per_step"] > 0 and by_name["implicit_sgd"]["ms_per_step"] > 0
    assert "| il |" in training.table(rows)


def test_bench_training_cli(training, tmp_path, capsys):
    out = tmp_path / "training.json"
    training.main(["--quick", "--variants", "zil", "--nets", "8-16-4", "--batches", "1", "--budget", "0.01",
                   "--rounds", "1", "--json", str(out)])
    report = json.loads(out.read_text())
    assert [r["variant"] for r in report["results"]] == ["zil"]
    assert report["blas_rates"][0]["kind"] == "GEMV"
    assert "| 8-16-4 | 1 | float32 | zil |" in capsys.readouterr().out


def test_compare_peers_without_pcx(peers):
    mods, reason = peers.load_pcx()
    assert (mods is None) == (reason is not None)
    if mods is None:
        assert "pcx column skipped" in reason
    # pcx itself is left out even where installed: its jit compile alone takes ~15 s.
    row = peers.measure(TINY, 2, None, threads=1, rounds=1, min_seconds=0.001, warmup=1)
    assert row["neurosim_ms"] > 0 and row["numpy_ms"] > 0 and row["numpy_over_neurosim"] > 0
    assert row["pcx_ms"] is None and row["pcx_over_neurosim"] is None
    accuracy = peers.accuracy_check(None, max_steps=3)
    assert accuracy["steps"] == 3
    # Same init, same batches, same equations: the implementations agree to float32 rounding.
    assert accuracy["numpy_max_weight_diff"] < 1e-4
    assert abs(accuracy["numpy_accuracy"] - accuracy["neurosim_accuracy"]) < 0.02
    assert "neurosim" in peers.tables([row], accuracy)


def test_compare_peers_cli_skips_pcx(peers, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(peers.NETWORKS, "8-16-4", TINY)
    for key in ("XLA_FLAGS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # main sets them; restored after
        monkeypatch.delenv(key, raising=False)
    out = tmp_path / "peers.json"
    cpus = os.sched_getaffinity(0)  # main pins the process to --threads CPUs
    try:
        peers.main(["--quick", "--no-pcx", "--nets", "8-16-4", "--batches", "1", "--accuracy-epochs", "0",
                    "--json", str(out)])
        assert len(os.sched_getaffinity(0)) == 1
    finally:
        os.sched_setaffinity(0, cpus)
    report = json.loads(out.read_text())
    assert report["pcx_skipped"] and report["results"][0]["pcx_ms"] is None
    assert "pcx column skipped" in capsys.readouterr().out


def test_bench_startup(startup):
    warm = startup.first_step(runs=1, warm=False)
    assert 0 < warm["child_s"] <= warm["spawn_to_step_s"] + 0.05 and warm["wall_s"] > 0
    # The cold path's plumbing on the warm cache (a real cold compile takes tens of seconds).
    cold = startup.cold_compile(variants=("bp",), dtypes=("float64",), batches=(1,), fresh_cache=False)
    assert cold["total_s"] > 0 and [c["variant"] for c in cold["cases"]] == ["bp"]
    assert "cold compile, fresh NUMBA_CACHE_DIR" in startup.table(0.01, warm, cold)


def test_bench_events_quick(tmp_path, capsys):
    events = load("bench_events")
    out = tmp_path / "events.json"
    events.main(["--quick", "--out", str(out)])
    report = json.loads(out.read_text())
    for net in ("mlp", "cnn"):
        for variant in ("il", "seqil"):
            rows = [r for r in report["accuracy"] if r["net"] == net and r["variant"] == variant]
            assert rows[0]["label"] == "dense" and rows[0]["active_fraction"] == 1.0
            assert rows[1]["threshold"] == 0.0 and 0.9 < rows[1]["active_fraction"] <= 1.0
            assert all(0 <= r["active_fraction"] <= 1 and -1 <= r["cosine_to_bp"] <= 1 for r in rows)
            assert all(r["messages"] <= rows[0]["messages"] for r in rows[1:])
    assert report["cost"] and all(r["speedup"] > 0 and r["dense_ms"] > 0 for r in report["cost"])
    assert all(0 < r["fixed_ms"] <= r["one_tick_ms"] and r["ceiling"] == pytest.approx(r["dense_ms"] / r["fixed_ms"])
               for r in report["cost"])
    assert len(report["verdicts"]) == len({(r["case"], r["T"], r["batch"]) for r in report["cost"]})
    assert all("ceiling" in line for line in report["verdicts"])
    assert out.with_suffix(".png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "| mlp | il | dense |" in printed and "verdict: " in printed


def test_bench_hardware(tmp_path, capsys):
    hardware = load("bench_hardware")
    out = tmp_path / "hardware.json"
    report = hardware.main(["--variants", "bp,zil,il", "--batch", "2", "--out", str(out)])
    rows = {row["label"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"bp", "zil", "il", "il, events 0.01", "il, events 0.1"}
    assert rows["bp"]["energy_vs_bp"] == 1 and rows["zil"]["cosine_to_bp"] > 0.999999
    assert rows["zil"]["synaptic_events"] == rows["bp"]["synaptic_events"]
    assert rows["il, events 0.1"]["synaptic_events"] < rows["il"]["synaptic_events"]
    for row in rows.values():
        assert row["energy_uj"] == pytest.approx(sum(row["energy_by_category_uj"].values()))
    assert "| il, events 0.01 | mse |" in capsys.readouterr().out
    hardware.figure(report, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 0


def test_bench_memory_quick(tmp_path):
    memory = load("bench_memory")
    out = tmp_path / "memory.json"
    report = memory.main(["--quick", "--variants", "bp,il", "--out", str(out)])
    rows = {row["variant"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"bp", "il"}
    for row in rows.values():
        assert "error" not in row, row
        # every run holds at least its weights; the minimum counts them twice plus the activity
        assert row["traced_bytes"] >= row["params_bytes"]
        assert row["minimum_bytes"] > 2 * row["params_bytes"]
    assert rows["bp"]["traced_vs_bp"] == 1.0
    assert "| il |" in memory.table(report)


def test_reproduce_alonso2022_minibatch_claim_runs_like_with_like():
    alonso = load("reproduce_alonso2022")
    import neurosim as ns

    table = alonso.claim_batch_sizes(ns.datasets.digits(), [1, 64], n_train=64, passes=1)
    assert set(table) == {"bp", "il", "ilprox"}
    for accuracies in table.values():
        assert set(accuracies) == {"1", "64"}
        assert all(0.0 <= value <= 1.0 or value != value for value in accuracies.values())


def test_bench_step_parts(tmp_path, capsys):
    parts = load("bench_step_parts")
    out = tmp_path / "parts.json"
    parts.main(["--nets", "8-16-4", "--variants", "fpa", "copi", "--quick", "--budget", "0.02", "--json", str(out)])
    rows = {row["variant"]: row for row in json.loads(out.read_text())["results"]}
    assert list(rows) == ["il", "fpa", "copi"]  # IL, the reference, is always measured
    il, fpa, copi = rows["il"], rows["fpa"], rows["copi"]
    # il and fpa take one compiled call per step; copi's step is not one call
    assert il["call_us"] > 0 and fpa["call_us"] > 0 and copi["call_us"] is None and copi["python_us"] is None
    assert fpa["python_us"] == pytest.approx(fpa["trainer_us"] - fpa["call_us"])
    assert il["vs_il"] == 1.0 and il["verdict"] == "the reference"
    assert fpa["vs_il"] == pytest.approx(fpa["gflops"] / il["gflops"])
    # the time a step may take at 2/3 of IL's rate, from IL's rate in the same run
    assert fpa["allowed_us"] == pytest.approx(fpa["flops"] / (2 / 3 * il["gflops"] * 1e3))
    assert fpa["verdict"].startswith("meets" if fpa["vs_il"] >= 2 / 3 else "below")
    assert fpa["ticks"] == 2  # fpa's default T = L
    assert "| 8-16-4 | 1 | fpa | 2 |" in capsys.readouterr().out


def test_bench_step_parts_captures_the_call_a_step_makes():
    import numpy as np

    import neurosim as ns

    parts = load("bench_step_parts")
    net = ns.mlp(TINY, activation="tanh", seed=0)
    trainer = ns.Trainer(net, ns.variant("fpa"), ns.optim.SGD(lr=0.1))
    x, y = np.full((1, 8), 0.5), np.eye(4)[[1]]
    start = net.params.copy()
    kernel, arguments = parts.captured_call(trainer, x, y)
    after_step = net.params.copy()
    assert not np.array_equal(after_step, start)
    net.params[...] = start
    assert kernel(*arguments)[0] == 0  # the captured call is the step: the same update, bit for bit
    assert np.array_equal(net.params, after_step)
    # the copi step makes no single compiled call
    assert parts.captured_call(ns.Trainer(net, ns.variant("copi"), ns.optim.SGD(lr=1.0)), x, y) is None
