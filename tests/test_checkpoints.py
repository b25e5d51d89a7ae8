"""Trustworthy runs: divergence caught when it starts, checkpoints and exact resume.

Oracles: an uninterrupted run with the same seed (a resumed run must end bitwise equal to it); the
loss of the kept state against the best seen; the checkpoint files themselves (corrupted on
purpose).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import neurosim as ns
from neurosim import checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return ns.datasets.digits()


def _small(data, n=300):
    return data.subset(np.arange(n)) if hasattr(data, "subset") else data


def test_a_diverging_il_run_stops_within_a_few_steps_and_keeps_a_sound_state(digits):
    net = ns.mlp([64, 128, 128, 10], activation="tanh", seed=0)
    losses = []
    original = ns.Trainer.step

    def recording(self, x, y):
        step = original(self, x, y)
        losses.append(step.loss)
        return step

    ns.Trainer.step = recording
    try:
        with pytest.raises(ns.DivergenceError) as info:
            ns.train(net, ns.variant("il"), digits, ns.optim.SGD(lr=1e3), epochs=2, progress=False)
    finally:
        ns.Trainer.step = original
    exc = info.value
    assert exc.epoch == 1 and exc.step <= 5  # caught a few batches in, not at overflow
    assert "epoch 1, batch" in str(exc) and "restored" in str(exc)
    assert np.all(np.isfinite(net.params))
    best = min(losses[:-1])
    kept = ns.evaluate(net, digits, "train")["loss"]
    assert kept <= 2 * best


def test_skip_batch_carries_on_from_the_last_sound_state(digits):
    net = ns.mlp([64, 32, 10], activation="tanh", seed=0)

    class Spiky(ns.optim.SGD):
        """SGD whose 5th update is scaled 1e4 (a single bad batch)."""

        calls = 0

        def _propose(self, net, params, grads):
            Spiky.calls += 1
            scale = 1e4 if Spiky.calls == 5 else 1.0
            return params - self.lr * scale * grads, {}

    history = ns.train(net, ns.variant("bp"), digits, Spiky(lr=0.05), epochs=2, progress=False,
                       on_divergence="skip_batch")
    assert history.skipped >= 1
    assert history.test_accuracy[-1] > 0.5 and np.all(np.isfinite(net.params))


@pytest.mark.parametrize("bad, match", [
    ({"divergence_factor": 1.0}, "divergence_factor"), ({"divergence_factor": float("nan")}, "divergence_factor"),
    ({"on_divergence": "ignore"}, "on_divergence"), ({"checkpoint_every": 5}, "checkpoint_dir"),
    ({"resume": True}, "checkpoint_dir"), ({"checkpoint_every": 0, "checkpoint_dir": "x"}, "checkpoint_every")])
def test_bad_training_options_are_refused(digits, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ns.train(ns.mlp([64, 8, 10]), ns.variant("bp"), digits, epochs=1, progress=False, **bad)


def _run(digits, folder, epochs, variant="il", optimizer=None, dtype="float64", **kwargs):
    net = ns.mlp([64, 24, 10], activation="tanh", seed=3, dtype=dtype)
    optimizer = optimizer or ns.optim.SGD(lr=0.05)
    history = ns.train(net, ns.variant(variant, T=5) if variant == "il" else ns.variant(variant), digits,
                       optimizer, epochs=epochs, batch_size=64, seed=1, progress=False,
                       checkpoint_dir=folder, checkpoint_every=7, **kwargs)
    return net, history


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make", [lambda: ns.optim.SGD(lr=0.05), lambda: ns.optim.Adam(lr=1e-3)], ids=["sgd", "adam"])
def test_resuming_from_any_checkpoint_ends_bitwise_where_an_uninterrupted_run_does(digits, tmp_path, dtype, make):
    reference, reference_history = _run(digits, tmp_path / "reference", 2, optimizer=make(), dtype=dtype)
    saved = sorted((tmp_path / "reference").glob("checkpoint-*.json"))
    assert saved  # mid-epoch and end-of-epoch checkpoints, the newest kept
    # resume from a mid-epoch checkpoint: copy it alone into a fresh folder
    middle = next(p for p in saved if not p.name.endswith("-000000.json"))
    folder = tmp_path / "resumed"
    folder.mkdir()
    for suffix in (".json", ".npz"):
        (folder / middle.with_suffix(suffix).name).write_bytes(middle.with_suffix(suffix).read_bytes())
    resumed, history = _run(digits, folder, 2, optimizer=make(), dtype=dtype, resume=True)
    assert np.array_equal(resumed.params, reference.params)
    assert history.epoch == reference_history.epoch
    assert history.test_accuracy == reference_history.test_accuracy


def test_learned_feedback_and_copi_state_survive_a_resume(digits, tmp_path):
    for name, variant in (("kolen_pollack", ns.variant("il", T=4, feedback="learned")), ("copi", ns.variant("copi"))):
        def run(folder, epochs, resume=False):
            net = ns.mlp([64, 16, 10], seed=2)
            chosen = ns.variant(variant.name, **dict(variant.hyper))
            ns.train(net, chosen, digits, ns.optim.SGD(lr=0.02), epochs=epochs, batch_size=128, progress=False,
                     checkpoint_dir=folder, checkpoint_every=4, resume=resume)
            return net, chosen
        reference, reference_variant = run(tmp_path / f"{name}-a", 2)
        run(tmp_path / f"{name}-b", 1)
        resumed, resumed_variant = run(tmp_path / f"{name}-b", 2, resume=True)
        assert np.array_equal(resumed.params, reference.params), name
        for key, value in reference_variant.learned_state(reference).items():
            assert np.array_equal(value, resumed_variant.learned_state(resumed)[key]), (name, key)


def test_a_corrupted_newest_checkpoint_is_reported_and_the_previous_one_used(digits, tmp_path):
    reference, _ = _run(digits, tmp_path / "reference", 2)
    folder = tmp_path / "run"
    _run(digits, folder, 1)
    newest, older = checkpoint._listed(folder)[:2]
    archive = newest.with_suffix(".npz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # truncated
    found = checkpoint.latest(folder)
    assert found.path == older and "checksum mismatch" in found.skipped[0][1]
    with pytest.warns(RuntimeWarning, match="skipped checkpoint"):
        resumed, _ = _run(digits, folder, 2, resume=True)
    assert np.array_equal(resumed.params, reference.params)


def test_unreadable_checkpoints_are_refused_by_name(digits, tmp_path):
    folder = tmp_path / "run"
    _run(digits, folder, 1)
    for path in folder.glob("checkpoint-*.json"):
        path.write_text("{not json")
    with pytest.raises(ValueError, match="no readable checkpoint.*unreadable"):
        checkpoint.latest(folder)
    assert checkpoint.latest(tmp_path / "empty") is None
    other = tmp_path / "other"
    _run(digits, other, 1)
    with pytest.raises(ValueError, match="written for"):
        ns.train(ns.mlp([64, 25, 10]), ns.variant("il", T=5), digits, ns.optim.SGD(lr=0.05), epochs=2,
                 batch_size=64, seed=1, progress=False, checkpoint_dir=other, checkpoint_every=7, resume=True)


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "neurosim.cli", *map(str, args)], capture_output=True, text=True,
                          **kwargs)


def _checkpoints_written(out) -> int:
    """How many checkpoints the run has passed, from the newest one's position."""
    newest = checkpoint._listed(out / "checkpoints")
    if not newest:
        return 0
    epoch, batch = (int(part) for part in newest[0].stem.split("-")[1:3])
    return epoch * 9 + batch // 20  # 180 batches an epoch: 8 mid-epoch checkpoints and one at the end


def _config(tmp_path, dtype, optimizer):
    text = (ROOT / "models" / "mlp_digits.toml").read_text()
    text = text.replace("sizes = [64, 128, 128, 10]", "sizes = [64, 32, 10]")
    text = text.replace('dtype = "float64"', f'dtype = "{dtype}"').replace("T = 20", "T = 4")
    text = text.replace('name = "sgd"\nlr = 0.05', optimizer)
    text = text.replace("epochs = 10", "epochs = 3").replace("batch_size = 32", "batch_size = 8")
    path = tmp_path / f"config-{dtype}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("dtype, optimizer", [("float64", 'name = "sgd"\nlr = 0.05'),
                                              ("float32", 'name = "adam"\nlr = 0.001')], ids=["f64-sgd", "f32-adam"])
def test_a_killed_cli_run_resumes_to_the_same_weights(tmp_path, dtype, optimizer):
    config = _config(tmp_path, dtype, optimizer)
    straight = _cli("train", config, "--out", tmp_path / "straight", "--quiet")
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "neurosim.cli", "train", str(config), "--out", str(out),
                                "--checkpoint-every", "20", "--quiet"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    # 3 epochs x 180 batches, a checkpoint every 20: kill right after a randomly chosen one appears,
    # wherever the run then is (mid-batch, mid-write, between epochs)
    target = int(np.random.default_rng().integers(1, 20))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "checkpoints").glob("checkpoint-*.json"))) and _checkpoints_written(out) >= target:
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (out / "results.json").exists()  # it really died mid-run
    resumed = _cli("train", config, "--out", out, "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    with np.load(tmp_path / "straight" / "weights.npz") as a, np.load(out / "weights.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert np.array_equal(a[key], b[key]), key
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "completed" and len(results["history"]["epoch"]) == 3


def test_the_cli_refuses_to_overwrite_a_run_unless_asked(tmp_path):
    config = _config(tmp_path, "float64", 'name = "sgd"\nlr = 0.05')
    first = _cli("train", config, "--out", tmp_path / "run", "--quiet", "--set", "train.epochs=1")
    assert first.returncode == 0, first.stderr
    again = _cli("train", config, "--out", tmp_path / "run", "--quiet", "--set", "train.epochs=1")
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    forced = _cli("train", config, "--out", tmp_path / "run", "--quiet", "--set", "train.epochs=1", "--overwrite")
    assert forced.returncode == 0, forced.stderr
    a_file = tmp_path / "file"
    a_file.write_text("x")
    bad = _cli("train", config, "--out", a_file, "--quiet")
    assert bad.returncode == 2 and "not a folder" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    folder_as_config = _cli("train", ROOT / "models", "--out", tmp_path / "x", "--quiet")
    assert folder_as_config.returncode == 2 and "is a folder" in folder_as_config.stderr
    assert "Traceback" not in folder_as_config.stderr
    missing = _cli("train", tmp_path / "nothing.toml", "--out", tmp_path / "x", "--quiet")
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    leftovers = [p for p in (tmp_path / "run").rglob("*") if ".partial" in p.name]
    assert not leftovers


def test_ctrl_c_stops_within_a_second_checkpoints_and_resumes_exactly(tmp_path):
    config = _config(tmp_path, "float64", 'name = "sgd"\nlr = 0.05')
    straight = _cli("train", config, "--out", tmp_path / "straight", "--quiet")
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-m", "neurosim.cli", "train", str(config), "--out", str(out),
                                "--checkpoint-every", "50", "--quiet"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _checkpoints_written(out) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    sent, sent_wall = time.monotonic(), time.time()
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=30)[1]
    assert time.monotonic() - sent < 1.0
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    newest = checkpoint._listed(out / "checkpoints")[0]
    assert newest.stat().st_mtime >= sent_wall - 0.05  # written on the way out, where it stopped
    resumed = _cli("train", config, "--out", out, "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    with np.load(tmp_path / "straight" / "weights.npz") as a, np.load(out / "weights.npz") as b:
        assert all(np.array_equal(a[key], b[key]) for key in a.files)


def test_a_loss_that_overflows_is_never_accepted(digits):
    """BP's gradient can stay finite while its loss overflows: neither the trainer nor train()
    applies such a step."""
    net = ns.mlp([64, 8, 10], seed=0)
    start = net.params.copy()
    x, y = digits.x_train[:4], np.full((4, 10), 1e200)
    with pytest.raises(ns.DivergenceError, match="overflow"):
        ns.Trainer(net, ns.variant("bp"), ns.optim.Adam()).step(x, y)
    assert np.array_equal(net.params, start)
    huge = ns.datasets.Dataset("huge", digits.x_train[:64], np.full((64, 10), 1e200), digits.x_test[:8],
                               np.zeros((8, 10)), "regression")
    with pytest.raises(ns.DivergenceError, match="epoch 1, batch 1"):
        ns.train(net, ns.variant("bp"), huge, ns.optim.SGD(lr=0.01), epochs=1, progress=False)
    assert np.array_equal(net.params, start)
