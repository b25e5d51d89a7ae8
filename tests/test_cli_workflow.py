"""The command line as a researcher uses it: own data, switching variants, unsetting keys,
``python -m neurosim``, ``--version``, and arguments that are wrong named in one line."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurosim import cli, config as configs

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "models" / "mlp_digits.toml"


def _main(*args):
    return cli.main([str(a) for a in args])


def test_training_on_your_own_npz_from_the_cli(tmp_path, capsys):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 3
    labels = rng.integers(0, 3, 240)
    np.savez(tmp_path / "own.npz", x_train=centres[labels] + rng.normal(size=(240, 6)), y_train=labels)
    code = _main("train", MLP, "--out", tmp_path / "run", "--quiet", "--set", 'data.name="npz"',
                 "--set", f'data.path="{tmp_path / "own.npz"}"', "--set", "model.sizes=[6, 16, 3]",
                 "--set", "train.epochs=3")
    assert code == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["data"] == {"name": "npz", "path": str(tmp_path / "own.npz")}
    assert results["history"]["test_accuracy"][-1] > 0.8  # separable clusters: a real fit


def test_idx_files_and_missing_paths(tmp_path):
    from neurosim import datasets

    datasets.write_idx(tmp_path / "images.idx", (np.arange(40 * 4) % 255).astype(np.uint8).reshape(40, 2, 2))
    datasets.write_idx(tmp_path / "labels.idx", (np.arange(40) % 2).astype(np.uint8))
    data = datasets.load("idx", images=tmp_path / "images.idx", labels=tmp_path / "labels.idx")
    assert data.n_inputs == 4 and data.n_classes == 2
    with pytest.raises(ValueError, match="needs images"):
        datasets.load("idx", images=tmp_path / "images.idx")
    with pytest.raises(ValueError, match="needs path"):
        datasets.load("npz")


def test_switching_the_variant_drops_what_it_does_not_take():
    config = configs.load(MLP)
    switched = configs.override(config, "variant.name=zil")
    assert switched["variant"] == {"name": "zil"}
    assert configs.override(config, "variant.name=fpa")["variant"] == {"name": "fpa", "T": 20, "gamma": 0.1}
    adam = configs.override(configs.override(config, "optimizer.name=adam"), "optimizer.lr=0.001")
    assert adam["optimizer"] == {"name": "adam", "lr": 0.001}
    assert configs.build(switched)[1].name == "zil"
    assert "gamma" not in configs.unset(config, "variant.gamma")["variant"]
    with pytest.raises(ValueError, match="has no variant.beta"):
        configs.unset(config, "variant.beta")
    with pytest.raises(ValueError, match="needs a name"):
        configs.unset(config, "variant.name")


@pytest.mark.parametrize("args, message", [
    (["complexity", "--depths", "5:2"], "need 1 <= START <= STOP"),
    (["complexity", "--depths", "a:b"], "START:STOP"),
    (["complexity", "--variants", "il:T"], "name=value"),
    (["train", MLP, "--out", "x", "--unset", "variant"], "section.key"),
    (["train", MLP, "--out", "x", "--checkpoint-every", "0"], "--checkpoint-every"),
])
def test_bad_arguments_are_named(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _main(*args) == 2
    assert message in capsys.readouterr().err


def test_variant_hyper_parameters_on_the_complexity_command_take_strings(tmp_path, capsys):
    code = _main("complexity", "--variants", "bp,il:T=3:feedback=random", "--depths", "2:3", "--width", "8",
                 "--out", tmp_path, "--quiet")
    assert code == 0, capsys.readouterr().err
    assert "feedback=random" in capsys.readouterr().out


def test_python_dash_m_and_version():
    run = subprocess.run([sys.executable, "-m", "neurosim", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("neurosim ")
    helped = subprocess.run([sys.executable, "-m", "neurosim", "--help"], capture_output=True, text=True)
    assert "exit codes" in helped.stdout and "sweep" in helped.stdout and "map" in helped.stdout


def test_a_diverged_run_says_where_it_stopped(tmp_path, capsys):
    code = _main("train", MLP, "--out", tmp_path / "run", "--quiet", "--set", "optimizer.lr=1000.0",
                 "--set", "model.sizes=[64, 16, 10]", "--set", "variant.T=5")
    assert code == 1
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "diverged" and results["stopped_at"]["epoch"] == 1
    assert results["stopped_at"]["batch"] >= 1 and "epoch 1, batch" in results["message"]
    assert (tmp_path / "run" / "weights.npz").exists()


@pytest.mark.filterwarnings("always::UserWarning")
def test_a_warning_is_one_line_naming_the_fix(tmp_path, capsys):
    """copi with the config's SGD 0.05: the CLI says so in one line, with what to write instead."""
    code = _main("train", MLP, "--out", tmp_path / "run", "--quiet", "--set", 'variant.name="copi"',
                 "--set", "train.epochs=1", "--set", "model.sizes=[64, 16, 10]")
    assert code == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    warned = [line for line in err if line.startswith("neurosim: warning: variant 'copi' returns its whole")]
    assert len(warned) == 1 and 'lr = 1.0' in warned[0]
    assert not any("UserWarning" in line or ".py:" in line for line in err)
