"""Oracle: the documented contract of runs, checked on its exact numbers.

- Checkpoints: ``checkpoint.save`` keeps the newest ``keep`` checkpoints (JSON and arrays) and
  removes the older ones, whatever the order they were written in.
- Command line exit codes: 0 done, 1 a training run diverged (what it had is saved, and
  ``results.json`` says so), 2 bad input.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import neurosim as ns
from neurosim import checkpoint, cli

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "models" / "mlp_digits.toml"


def test_save_keeps_exactly_the_newest_checkpoints(tmp_path):
    net = ns.mlp([2, 3, 2], seed=0)
    variant, optimizer = ns.variant("bp"), ns.optim.SGD(lr=0.1)
    positions = [(0, 5), (1, 0), (0, 10), (1, 5), (2, 0), (1, 10)]  # not written in order
    for epoch, batch in positions:
        checkpoint.save(tmp_path, epoch=epoch, batch=batch, net=net, optimizer=optimizer, variant=variant,
                        history={}, epoch_progress={}, keep=3)
    kept = sorted(path.name for path in tmp_path.iterdir())
    stems = ["checkpoint-0001-000010", "checkpoint-0002-000000"]
    assert len(kept) == 2 * checkpoint.KEEP == 6
    for stem in stems:
        assert f"{stem}.json" in kept and f"{stem}.npz" in kept
    # the newest three positions of those written: (2, 0), (1, 10) and (1, 5)
    assert [p.name for p in checkpoint._listed(tmp_path)] == [
        "checkpoint-0002-000000.json", "checkpoint-0001-000010.json", "checkpoint-0001-000005.json"]
    assert checkpoint.latest(tmp_path).epoch == 2


def test_cli_exit_codes_done_diverged_bad_input(tmp_path, capsys):
    small = ["--quiet", "--set", "model.sizes=[64, 8, 10]", "--set", "train.epochs=1",
             "--set", "variant.T=3"]
    assert cli.main(["train", str(MLP), "--out", str(tmp_path / "done"), *small]) == 0
    code = cli.main(["train", str(MLP), "--out", str(tmp_path / "diverged"), *small,
                     "--set", "optimizer.lr=1000000.0"])
    assert code == 1
    results = json.loads((tmp_path / "diverged" / "results.json").read_text())
    assert results["status"] == "diverged" and "restored" in results["message"]
    assert (tmp_path / "diverged" / "weights.npz").exists()
    assert np.all(np.isfinite(ns.Network.load(tmp_path / "diverged" / "weights.npz").params))
    assert cli.main(["train", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "bad")]) == 2
    assert "missing.toml" in capsys.readouterr().err
