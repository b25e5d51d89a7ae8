"""Loaders fail cleanly: a corrupt, truncated or inconsistent file is a ValueError naming the file
and what is wrong, never a library's own exception (zipfile, zlib, EOFError, KeyError)."""
import gzip

import numpy as np
import pytest

import neurosim as ns
from neurosim import datasets


@pytest.fixture()
def good_npz(tmp_path):
    path = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.random((20, 4)), y_train=rng.integers(0, 3, 20),
             x_test=rng.random((5, 4)), y_test=rng.integers(0, 3, 5))
    return path


def _truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize("damage", ["truncated", "text", "empty", "folder"])
def test_a_damaged_npz_names_the_file(tmp_path, good_npz, damage):
    if damage == "truncated":
        path = _truncate(good_npz)
    elif damage == "text":
        path = tmp_path / "notes.npz"
        path.write_text("not an archive")
    elif damage == "empty":
        path = tmp_path / "empty.npz"
        path.write_bytes(b"")
    else:
        path = tmp_path / "folder.npz"
        path.mkdir()
    with pytest.raises(ValueError, match=path.name):
        datasets.load_npz(path)


def test_missing_keys_and_fractional_labels_are_refused(tmp_path, good_npz):
    with pytest.raises(ValueError, match="missing key 'y_train'"):
        datasets.load_npz(_only(tmp_path, x_train=np.zeros((3, 2))))
    path = _only(tmp_path, x_train=np.zeros((4, 2)), y_train=np.array([0.7, 1.7, 0.7, 1.7]))
    with pytest.raises(ValueError, match="integer class labels"):
        datasets.load_npz(path, task="classification")
    loaded = datasets.load_npz(_only(tmp_path, x_train=np.zeros((10, 2)), y_train=np.array([0.0, 1.0] * 5)),
                               task="classification")
    assert loaded.n_classes == 2
    with pytest.raises(FileNotFoundError):
        datasets.load_npz(tmp_path / "missing.npz")


def _only(tmp_path, **arrays):
    path = tmp_path / f"only-{'-'.join(arrays)}.npz"
    np.savez(path, **arrays)
    return path


def test_a_corrupt_gzip_idx_names_the_file(tmp_path):
    path = tmp_path / "images.idx.gz"
    datasets.write_idx(path, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    raw = bytearray(path.read_bytes())
    raw[20:30] = b"\xff" * 10  # damage the compressed stream itself
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="images.idx.gz"):
        datasets.read_idx(path)
    with pytest.raises(ValueError, match="folder"):
        datasets.read_idx(tmp_path)


@pytest.mark.parametrize("make", [lambda: ns.mlp([4, 5, 3], seed=0), lambda: ns.rnn(3, 5, 2, seed=0)],
                         ids=["mlp", "rnn"])
def test_saved_networks_load_back_and_damaged_ones_are_refused(tmp_path, make):
    net = make()
    path = tmp_path / "net.npz"
    net.save(path)
    back = ns.Network.load(path)
    assert np.array_equal(back.params, net.params)
    state = dict(np.load(path))
    first = "W1" if "W1" in state else "W_xh"
    for name, change in (("nan", lambda a: np.full_like(a, np.nan)), ("shape", lambda a: a.reshape(-1)[:1]),
                         ("missing", None)):
        damaged = dict(state)
        if change is None:
            del damaged[first]
        else:
            damaged[first] = change(state[first])
        bad = tmp_path / f"bad-{name}.npz"
        np.savez(bad, **damaged)
        with pytest.raises(ValueError, match=f"bad-{name}.npz"):
            ns.Network.load(bad)
    with pytest.raises(ValueError, match="net.npz"):
        ns.Network.load(_truncate(path))


def test_saving_is_atomic(tmp_path, monkeypatch):
    net = ns.mlp([4, 5, 3], seed=0)
    path = tmp_path / "net.npz"
    net.save(path)
    before = path.read_bytes()

    def failing(*args, **kwargs):
        raise OSError("disk full")

    import neurosim.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint.os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        ns.mlp([4, 5, 3], seed=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]
