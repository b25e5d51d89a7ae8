"""Parameter sweeps on Dask (neurosim.sweep): runs on a real LocalCluster of worker processes,
resume without recomputation, a worker killed mid-sweep, bad input, divergence, the plot.

One cluster of 2 single-threaded workers is shared by the tests that need one (started once,
about a second); the runs are tiny (one epoch of a 64-32-10 network on the digits)."""
from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import neurosim as ns
from neurosim import sweep

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "models" / "sweep_smoke.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TINY_BASE = {
    "model": {"sizes": [64, 32, 10], "activation": "tanh", "seed": 0},
    "variant": {"name": "il", "T": 20, "gamma": 0.1},
    "optimizer": {"name": "sgd", "lr": 0.05},
    "data": {"name": "digits"},
    "train": {"epochs": 1, "batch_size": 32, "seed": 0},
}


def tiny_sweep(**grid) -> dict:
    return {"base": copy.deepcopy(TINY_BASE), "grid": grid}


def cli(*argv) -> int:
    """``neurosim sweep ARGV`` through a parser built the way neurosim/cli.py builds its own."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sweep.add_parser(sub)
    args = parser.parse_args(["sweep", *map(str, argv)])
    return args.run(args)


def snapshot(folder: Path) -> dict:
    """Every file under ``folder``: relative path -> (mtime in ns, bytes)."""
    return {str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.read_bytes())
            for path in sorted(folder.rglob("*")) if path.is_file()}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A LocalCluster of 2 single-threaded worker processes, shared by this module's tests."""
    import dask
    from distributed import LocalCluster

    scratch = tmp_path_factory.mktemp("dask-scratch")
    quiet = {"temporary-directory": str(scratch), "distributed.scheduler.http.routes": [],
             "distributed.worker.http.routes": []}
    with dask.config.set(quiet):  # as neurosim.sweep starts its own: no HTTP ports, scratch in tmp
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          worker_dashboard_address=None, local_directory=str(scratch),
                          scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"}) as local:
            yield local


# -- planning: no cluster --------------------------------------------------------------------


def test_plan_resolves_the_grid_and_drops_what_a_switched_variant_does_not_take():
    runs = sweep.plan(SMOKE)
    assert [run.swept for run in runs] == [
        {"variant.name": "il", "optimizer.lr": 0.02}, {"variant.name": "il", "optimizer.lr": 0.1},
        {"variant.name": "bp", "optimizer.lr": 0.02}, {"variant.name": "bp", "optimizer.lr": 0.1}]
    assert runs[0].config["variant"] == {"name": "il", "T": 20, "gamma": 0.1}
    assert runs[2].config["variant"] == {"name": "bp"}  # T and gamma came from the base: dropped
    assert runs[3].config["optimizer"] == {"name": "sgd", "lr": 0.1}
    for run in runs:
        canonical = json.dumps(run.config, sort_keys=True, separators=(",", ":"))
        assert run.key == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    # [[runs]] and TOML's unquoted dotted keys (nested tables) give the same runs
    listed = {"base": TINY_BASE, "runs": [{"variant": {"name": "bp"}}, {"optimizer.lr": 0.5}]}
    first, second = sweep.plan(listed)
    assert first.config["variant"] == {"name": "bp"} and second.config["optimizer"]["lr"] == 0.5


def test_a_base_file_is_read_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.toml").write_text((ROOT / "models" / "mlp_digits.toml").read_text())
    (tmp_path / "sweep.toml").write_text('base = "configs/base.toml"\n[grid]\n"train.seed" = [0, 1]\n')
    runs = sweep.plan(tmp_path / "sweep.toml")
    assert [run.config["train"]["seed"] for run in runs] == [0, 1]
    assert runs[0].config["model"]["sizes"] == [64, 128, 128, 10]


def test_the_lr_stability_sweep_resolves():
    runs = sweep.plan(ROOT / "models" / "sweep_lr_stability.toml")
    assert len(runs) == 36
    assert {run.config["variant"]["name"] for run in runs} == {"il", "ilprox", "bp"}


BAD_SWEEPS = [
    ({"base": TINY_BASE, "grid": {"train.seed": [0]}, "gird": {}}, "unknown top-level key 'gird'"),
    ({"grid": {"train.seed": [0]}}, "no base"),
    (tiny_sweep(), r"\[grid\] is empty"),
    (tiny_sweep(**{"optimizer.lr": 0.1}), "grid key 'optimizer.lr' must be a non-empty list"),
    (tiny_sweep(**{"optimizer.lr": []}), "grid key 'optimizer.lr' must be a non-empty list"),
    (tiny_sweep(**{"modle.sizes": [[64, 10]]}), r"'modle.sizes': unknown section \[modle\]"),
    (tiny_sweep(**{"train.epoch": [1]}), r"'train.epoch': unknown key 'epoch' in \[train\]"),
    (tiny_sweep(lr=[0.1]), "expected a dotted name section.key"),
    (tiny_sweep(**{"optimizer.lr": [0.1, -1.0]}), r"run 2 of 2 \(optimizer.lr=-1.0\).*lr must be > 0"),
    (tiny_sweep(**{"variant.name": ["il", "nope"]}), "run 2 of 2.*unknown variant 'nope'"),
    (tiny_sweep(**{"variant.name": ["il", "bp"], "variant.T": [5]}),
     "variant.T is not a hyper-parameter of variant 'bp'"),
    (tiny_sweep(**{"model.sizes": [[40, 10]]}), "run 1 of 1.*64 inputs but the network expects 40"),
    (tiny_sweep(**{"train.epochs": [0]}), "epochs must be >= 1"),
    (tiny_sweep(**{"data.test_fractoin": [0.5]}), r"config \[data\].*test_fractoin"),
    ({"base": TINY_BASE, "runs": [{"optimizer.lr": 0.1}, {"optimizer.lr": 0.1}]},
     "run 2 of 2.*same config as run 1"),
    ({"base": TINY_BASE, "grid": {"train.seed": [0]}, "runs": [{}]}, "either"),
]


@pytest.mark.parametrize("bad, message", BAD_SWEEPS, ids=[message for _, message in BAD_SWEEPS])
def test_bad_sweeps_are_refused_before_anything_runs(bad, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        sweep.run(bad, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "runs").exists() or not any((tmp_path / "out" / "runs").iterdir())


def test_errors_in_a_sweep_file_name_the_file_and_the_cli_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('base = "nowhere.toml"\n[grid]\n"train.seed" = [0]\n')
    with pytest.raises(ValueError, match=f"{path}: base = 'nowhere.toml': no such file"):
        sweep.plan(path)
    path.write_text(SMOKE.read_text().replace('"optimizer.lr"', '"optimizer.lr.x"'))
    assert cli(path, "--out", tmp_path / "out", "--quiet") == 2
    error = capsys.readouterr().err
    assert str(path) in error and "'optimizer.lr.x'" in error
    assert cli(tmp_path / "missing.toml", "--out", tmp_path / "out") == 2
    assert "sweep file not found" in capsys.readouterr().err


def test_an_unreachable_scheduler_is_a_value_error_naming_it(tmp_path, capsys):
    address = f"tcp://127.0.0.1:{closed_port()}"
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"cannot reach the Dask scheduler at '{address}'"):
        sweep.run(SMOKE, tmp_path, scheduler=address, connect_timeout=1, progress=False)
    assert cli(SMOKE, "--out", tmp_path, "--scheduler", address, "--connect-timeout", "1") == 2
    assert address in capsys.readouterr().err
    assert time.perf_counter() - started < 10
    with pytest.raises(ValueError, match="workers applies to the local cluster"):
        sweep.run(SMOKE, tmp_path, scheduler=address, workers=2)


def test_the_cli_exits_2_in_a_separate_process(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\n")
    code = ("import sys; from neurosim import sweep; import argparse; p = argparse.ArgumentParser(); "
            "s = p.add_subparsers(dest='command', required=True); sweep.add_parser(s); "
            f"a = p.parse_args(['sweep', {str(bad)!r}, '--out', {str(tmp_path / 'out')!r}]); sys.exit(a.run(a))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"{bad}: no base" in done.stderr


# -- on the shared cluster -------------------------------------------------------------------


def test_smoke_sweep_on_two_workers_then_a_second_run_changes_nothing(cluster, tmp_path, capsys):
    out = tmp_path / "smoke"
    address = cluster.scheduler_address
    assert cli(SMOKE, "--out", out, "--scheduler", address, "--plot", "--quiet") == 0
    printed = capsys.readouterr().out
    keys = {run.key for run in sweep.plan(SMOKE)}
    assert all(key in printed for key in keys) and "optimizer.lr" in printed

    records = sweep.load(out)
    assert len(records) == 4 and {row["key"] for row in records} == keys
    assert all(row["status"] == "completed" and row["error"] is None for row in records)
    assert {(row["variant.name"], row["optimizer.lr"]) for row in records} == {
        ("il", 0.02), ("il", 0.1), ("bp", 0.02), ("bp", 0.1)}
    for row in records:
        assert 0.0 <= row["test_accuracy"] <= row["best_test_accuracy"] <= 1.0
        assert row["epochs"] == 1 and row["seconds"] > 0 and row["test_loss"] > 0
    net = ns.Network.load(out / "runs" / f"{records[0]['key']}.npz")
    assert list(net.sizes) == [64, 32, 10]
    assert sorted(snapshot(out)) == sorted(
        ["summary.json", "sweep.png"] + [f"runs/{key}.{ext}" for key in keys for ext in ("json", "npz")])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"completed": 4, "diverged": 0, "failed": 0}
    assert (out / "sweep.png").read_bytes().startswith(PNG_MAGIC)

    # a second run trains nothing, starts no cluster and touches no file
    before = snapshot(out)
    assert cli(SMOKE, "--out", out, "--scheduler", address, "--plot", "--quiet") == 0
    assert "4 recorded already" in capsys.readouterr().out
    assert snapshot(out) == before
    again = sweep.run(SMOKE, out, scheduler=f"tcp://127.0.0.1:{closed_port()}", progress=False)
    assert [record["key"] for record in again] == [run.key for run in sweep.plan(SMOKE)]
    assert snapshot(out) == before

    # a damaged record is trained again, and only that one
    damaged = out / "runs" / f"{records[0]['key']}.json"
    damaged.write_text('{"key": "trunc')
    sweep.run(SMOKE, out, scheduler=address, progress=False)
    after = snapshot(out)
    assert json.loads(damaged.read_text())["status"] == "completed"
    changed = {name for name in after if after[name] != before[name]}
    assert changed <= {f"runs/{damaged.name}", f"runs/{damaged.stem}.npz"}


def test_a_worker_killed_mid_sweep_still_records_every_run_exactly_once(cluster, tmp_path):
    from distributed import Client

    # six runs of about half a second each on 2 workers, so that some are in flight at the kill
    spec = {"base": {**copy.deepcopy(TINY_BASE), "model": {"sizes": [64, 128, 128, 10]},
                     "variant": {"name": "il", "T": 100}, "train": {"epochs": 2}},
            "grid": {"train.seed": list(range(6))}}
    expected = {run.key for run in sweep.plan(spec)}
    out, runs_dir = tmp_path / "killed", tmp_path / "killed" / "runs"
    writes, stop, result = {}, threading.Event(), {}

    def watch_writes():  # every (inode, mtime) each record had: more than one means written twice
        while True:
            finished = stop.is_set()  # one more look after the sweep ended, so no last write is missed
            for path in list(runs_dir.glob("*.json")):
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                writes.setdefault(path.stem, set()).add((stat.st_ino, stat.st_mtime_ns))
            if finished:
                return
            time.sleep(0.005)

    def sweep_in_background():
        try:
            result["records"] = sweep.run(spec, out, scheduler=cluster.scheduler_address, progress=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    with Client(cluster.scheduler_address, set_as_default=False) as watcher:
        watcher.wait_for_workers(2, timeout=60)
        threads = [threading.Thread(target=watch_writes), threading.Thread(target=sweep_in_background)]
        for thread in threads:
            thread.start()
        victim, deadline = None, time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and threads[1].is_alive():
            busy = [worker for worker, tasks in watcher.processing().items()
                    if any(str(task).startswith(sweep.TASK_PREFIX) for task in tasks)]
            # once a run has finished the workers are warm and their next runs are under way
            if busy and runs_dir.is_dir() and any(runs_dir.glob("*.json")):
                victim = busy[0]
            time.sleep(0.01)
        assert victim is not None, "no run was in flight to kill"
        pid = watcher.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        hit, deadline = {}, time.monotonic() + 30
        while not hit and time.monotonic() < deadline and threads[1].is_alive():
            # the scheduler marks the runs that were on the worker when it died as suspicious
            hit = watcher.run_on_scheduler(lambda dask_scheduler: {
                str(task.key): task.suspicious for task in dask_scheduler.tasks.values()
                if task.suspicious and str(task.key).startswith(sweep.TASK_PREFIX)})
            time.sleep(0.01)
        threads[1].join(timeout=120)
        stop.set()
        threads[0].join()
        assert "error" not in result, result.get("error")
        assert hit, "the killed worker had no run in flight"
        watcher.wait_for_workers(2, timeout=60)  # the nanny restarted it, for the tests after this one

    records = result["records"]
    assert [record["status"] for record in records] == ["completed"] * 6
    assert {record["key"] for record in records} == expected
    assert {path.stem for path in runs_dir.glob("*.json")} == expected
    assert {path.stem for path in runs_dir.glob("*.npz")} == expected
    assert not list(runs_dir.glob(".*")), "temporary files left behind"
    for key in expected:
        stat = (runs_dir / f"{key}.json").stat()
        assert writes[key] == {(stat.st_ino, stat.st_mtime_ns)}, f"{key} written more than once"


# -- on a cluster of its own -----------------------------------------------------------------


def test_a_diverged_run_is_recorded_and_the_others_complete_exit_1(tmp_path, capsys):
    sweep_file = tmp_path / "diverging.toml"
    sweep_file.write_text(SMOKE.read_text().replace('"variant.name" = ["il", "bp"]', '"variant.name" = ["il"]')
                          .replace("[0.02, 0.1]", "[0.1, 1000.0]"))
    out = tmp_path / "out"
    assert cli(sweep_file, "--out", out, "--workers", "2", "--quiet") == 1  # its own LocalCluster
    captured = capsys.readouterr()
    assert "diverged" in captured.out and "1 completed, 1 diverged, 0 failed" in captured.out
    by_lr = {row["optimizer.lr"]: row for row in sweep.load(out)}
    assert by_lr[0.1]["status"] == "completed" and by_lr[0.1]["test_accuracy"] > 0.5
    diverged = by_lr[1000.0]
    assert diverged["status"] == "diverged" and "epoch 1" in diverged["error"]
    assert diverged["test_accuracy"] is None and diverged["epochs"] == 0
    record = json.loads((out / "runs" / f"{diverged['key']}.json").read_text())
    assert record["history"]["epoch"] == [] and record["history"]["variant"] == "il"
    assert (out / "runs" / f"{diverged['key']}.npz").exists()  # the last sound weights
    # the local cluster's scratch space is gone with it
    assert sorted(path.name for path in out.iterdir()) == ["runs", "summary.json"]


# -- results ---------------------------------------------------------------------------------


def test_load_names_a_corrupt_record(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "0123456789abcdef.json").write_text("{not json")
    with pytest.raises(ValueError, match="0123456789abcdef.json"):
        sweep.load(tmp_path)
    with pytest.raises(ValueError, match="no sweep results"):
        sweep.load(tmp_path / "elsewhere")


def test_plot_renders_accuracy_against_lr_per_variant_to_png():
    rows = []
    for variant, accuracy in (("il", 0.8), ("bp", 0.7)):
        for lr in (1e-3, 1e-2, 1e-1, 1.0):
            for seed in range(3):
                diverged = variant == "bp" and lr == 1.0
                rows.append({"key": f"{variant}{lr}{seed}", "variant": variant,
                             "status": "diverged" if diverged else "completed", "optimizer.lr": lr,
                             "train.seed": seed, "test_accuracy": None if diverged else accuracy + 0.01 * seed})
    rows.append({"key": "lost", "variant": "bp", "status": "failed", "optimizer.lr": 0.1, "test_accuracy": None})
    figure = sweep.plot(rows)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log" and ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["il", "bp", "diverged before epoch 1"]
    assert ax.get_lines()[0].get_marker() == "o"
    assert np.allclose(ax.get_lines()[0].get_ydata(), 0.81)  # mean over the 3 seeds
    image = io.BytesIO()
    figure.savefig(image, format="png")
    assert image.getvalue().startswith(PNG_MAGIC)
    import matplotlib.pyplot as plt

    plt.close(figure)
    with pytest.raises(ValueError, match="optimizer.lr"):
        sweep.plot([{"status": "completed", "variant": "il", "test_accuracy": 0.5}])
