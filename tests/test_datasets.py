"""Tests for neurosim.datasets (all offline)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neurosim import datasets as ds
from neurosim.datasets import Dataset

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


# --------------------------------------------------------------------------- digits
@pytest.fixture(scope="module")
def digits_flat():
    return ds.digits()


def test_digits_shapes_and_range(digits_flat):
    d = digits_flat
    assert d.name == "digits"
    assert d.task == "classification" and d.n_classes == 10
    assert d.n_train + d.n_test == 1797
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    assert d.feature_shape == (64,) and d.n_inputs == 64 and d.n_outputs == 10
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64
    for x in (d.x_train, d.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert d.x_train.max() == 1.0
    # stratified: every class in test, roughly proportional
    counts = np.bincount(d.y_test, minlength=10)
    assert np.all(counts >= 30)


def test_digits_deterministic_and_seeded(digits_flat):
    again = ds.digits()
    np.testing.assert_array_equal(again.x_train, digits_flat.x_train)
    np.testing.assert_array_equal(again.y_test, digits_flat.y_test)
    other = ds.digits(seed=1)
    assert not np.array_equal(other.y_train, digits_flat.y_train)


def test_digits_images(digits_flat):
    d = ds.digits(flat=False)
    assert d.x_train.shape == (1437, 1, 8, 8)
    assert d.feature_shape == (1, 8, 8) and d.n_inputs == 64
    np.testing.assert_array_equal(d.x_train.reshape(len(d.x_train), -1), digits_flat.x_train)


def test_digits_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        ds.digits(test_fraction=1.5)


# --------------------------------------------------------------------------- mnist1d
# Generation takes ~3-4 s, so it runs once per module (and is lru-cached in-process).
@pytest.fixture(scope="module")
def mnist1d_ds():
    return ds.mnist1d(seed=0)


def test_mnist1d_shapes(mnist1d_ds):
    d = mnist1d_ds
    assert d.name == "mnist1d" and d.n_classes == 10
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    assert d.y_train.shape == (4000,) and d.y_test.shape == (1000,)
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64
    assert set(np.unique(d.y_train)) == set(range(10))
    # standardised with train statistics
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(d.x_train.std(axis=0), 1.0, atol=1e-10)


def test_mnist1d_deterministic_and_cached(mnist1d_ds):
    state = np.random.get_state()
    again = ds.mnist1d(seed=0)  # served from the lru cache
    np.testing.assert_array_equal(again.x_train, mnist1d_ds.x_train)
    np.testing.assert_array_equal(again.y_test, mnist1d_ds.y_test)
    # global RNG untouched
    assert np.array_equal(np.random.get_state()[1], state[1])
    img = ds.mnist1d(seed=0, flat=False)
    assert img.x_train.shape == (4000, 1, 40) and img.feature_shape == (1, 40)
    np.testing.assert_array_equal(img.x_test[:, 0, :], mnist1d_ds.x_test)


# --------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("dtype", IDX_DTYPES)
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_dtypes(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / ("a.idx" + (".gz" if gz else ""))
    ds.write_idx(path, arr)
    out = ds.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    if gz:
        with gzip.open(path, "rb") as fh:
            assert fh.read(2) == b"\x00\x00"


def test_idx_header_layout(tmp_path):
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    path = tmp_path / "h.idx"
    ds.write_idx(path, arr)
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert struct.unpack(">2I", raw[4:12]) == (2, 3)
    assert raw[12:14] == b"\x00\x00" and raw[14:16] == b"\x00\x01"  # big-endian data


@settings(max_examples=25, deadline=None)
@given(
    arr=st.sampled_from(IDX_DTYPES).flatmap(
        lambda dt: hnp.arrays(
            dtype=dt,
            shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
            elements=(
                {"allow_nan": False, "allow_infinity": False}
                if np.issubdtype(dt, np.floating)
                else None
            ),
        )
    ),
    gz=st.booleans(),
)
def test_idx_round_trip_property(tmp_path_factory, arr, gz):
    path = tmp_path_factory.mktemp("idx") / ("p.idx" + (".gz" if gz else ""))
    ds.write_idx(path, arr)
    out = ds.read_idx(path)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_write_idx_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="unsupported dtype"):
        ds.write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="magic"):
        ds.read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")  # bad type code
    with pytest.raises(ValueError, match="magic"):
        ds.read_idx(path)


def test_read_idx_truncated(tmp_path):
    path = tmp_path / "t.idx"
    ds.write_idx(path, np.arange(20, dtype=np.uint8).reshape(4, 5))
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(path)
    path.write_bytes(raw[:6])  # header cut short
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(path)
    path.write_bytes(raw[:2])
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(path)


def test_read_idx_missing_file(tmp_path):
    missing = tmp_path / "nope.idx"
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        ds.read_idx(missing)


def _fake_mnist(tmp_path, n=60, gz=False, prefix="train"):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8)
    labels = (np.arange(n) % 3).astype(np.uint8)
    suf = ".gz" if gz else ""
    ip = tmp_path / f"{prefix}-images-idx3-ubyte{suf}"
    lp = tmp_path / f"{prefix}-labels-idx1-ubyte{suf}"
    ds.write_idx(ip, imgs)
    ds.write_idx(lp, labels)
    return ip, lp, imgs, labels


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_split(tmp_path, gz):
    ip, lp, imgs, labels = _fake_mnist(tmp_path, gz=gz)
    d = ds.load_idx(ip, lp, test_fraction=0.25, seed=0)
    assert d.task == "classification" and d.n_classes == 3
    assert d.n_train == 45 and d.n_test == 15
    assert d.x_train.shape == (45, 16) and d.x_train.dtype == np.float64
    assert d.x_train.min() >= 0.0 and d.x_train.max() <= 1.0
    assert np.array_equal(np.bincount(d.y_test, minlength=3), [5, 5, 5])
    # scaling is exactly /255 of the stored bytes
    all_x = np.sort(np.concatenate([d.x_train, d.x_test]).ravel())
    np.testing.assert_allclose(all_x, np.sort(imgs.ravel() / 255.0))


def test_load_idx_with_test_files(tmp_path):
    ip, lp, imgs, labels = _fake_mnist(tmp_path, n=30)
    tip, tlp, timgs, tlabels = _fake_mnist(tmp_path, n=12, prefix="t10k")
    d = ds.load_idx(ip, lp, tip, tlp, flat=False)
    assert d.x_train.shape == (30, 4, 4) and d.x_test.shape == (12, 4, 4)
    np.testing.assert_allclose(d.x_train, imgs / 255.0)
    np.testing.assert_array_equal(d.y_test, tlabels)


def test_load_idx_count_mismatch(tmp_path):
    ip, _, _, _ = _fake_mnist(tmp_path, n=10)
    lp = tmp_path / "short-labels.idx"
    ds.write_idx(lp, np.zeros(9, dtype=np.uint8))
    with pytest.raises(ValueError, match="mismatch"):
        ds.load_idx(ip, lp)


# --------------------------------------------------------------------------- npz
def test_load_npz_with_test_keys(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.standard_normal((20, 3)),
        y_train=np.arange(20) % 4,
        x_test=rng.standard_normal((8, 3)),
        y_test=np.arange(8) % 4,
    )
    d = ds.load_npz(path)
    assert d.name == "mine" and d.task == "classification" and d.n_classes == 4
    assert d.n_train == 20 and d.n_test == 8 and d.n_inputs == 3


def test_load_npz_split_classification(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, x_train=np.random.default_rng(0).random((50, 2)), y_train=np.arange(50) % 5)
    d = ds.load_npz(path, name="custom")
    assert d.name == "custom"
    assert d.n_train == 40 and d.n_test == 10
    assert np.array_equal(np.bincount(d.y_test, minlength=5), [2] * 5)  # stratified
    d2 = ds.load_npz(path)
    np.testing.assert_array_equal(d.x_test, d2.x_test)  # fixed seed


def test_load_npz_regression(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "r.npz"
    np.savez(path, X=rng.random((30, 4)), Y=rng.random((30, 2)))
    d = ds.load_npz(path, x_key="X", y_key="Y")
    assert d.task == "regression" and d.n_classes is None
    assert d.n_outputs == 2 and d.n_train == 24 and d.n_test == 6
    np.testing.assert_array_equal(d.targets(d.y_test), d.y_test)


def test_load_npz_missing_key(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, features=np.zeros((4, 2)), labels=np.zeros(4, dtype=int))
    with pytest.raises(ValueError) as info:
        ds.load_npz(path)
    msg = str(info.value)
    assert "x_train" in msg and "features" in msg and "labels" in msg


# --------------------------------------------------------------------------- teacher
def test_teacher_shapes_and_determinism():
    a = ds.teacher(n_inputs=7, n_outputs=3, hidden=(11, 5), n_train=50, n_test=10, seed=3)
    b = ds.teacher(n_inputs=7, n_outputs=3, hidden=(11, 5), n_train=50, n_test=10, seed=3)
    c = ds.teacher(n_inputs=7, n_outputs=3, hidden=(11, 5), n_train=50, n_test=10, seed=4)
    assert a.task == "regression" and a.n_classes is None
    assert a.x_train.shape == (50, 7) and a.y_train.shape == (50, 3)
    assert a.x_test.shape == (10, 7) and a.y_test.shape == (10, 3)
    assert a.n_inputs == 7 and a.n_outputs == 3
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.allclose(a.y_train, c.y_train)


def test_teacher_noise_and_activations():
    clean = ds.teacher(n_train=100, noise=0.0)
    noisy = ds.teacher(n_train=100, noise=0.5)
    np.testing.assert_array_equal(clean.x_train, noisy.x_train)
    resid = noisy.y_train - clean.y_train
    assert 0.3 < resid.std() < 0.7
    for act in ("tanh", "relu", "sigmoid", "linear"):
        d = ds.teacher(n_train=20, n_test=5, activation=act)
        assert np.all(np.isfinite(d.y_train))
    lin = ds.teacher(n_train=200, n_test=5, hidden=(), activation="linear")
    # a linear teacher is recovered exactly by least squares
    xa = np.hstack([lin.x_train, np.ones((200, 1))])
    coef, res, *_ = np.linalg.lstsq(xa, lin.y_train, rcond=None)
    np.testing.assert_allclose(xa @ coef, lin.y_train, atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_inputs": 0}, "n_inputs"),
        ({"n_outputs": -1}, "n_outputs"),
        ({"n_train": 2.5}, "n_train"),
        ({"n_test": 0}, "n_test"),
        ({"hidden": (4, 0)}, "hidden"),
        ({"noise": -0.1}, "noise"),
        ({"activation": "gelu"}, "activation"),
    ],
)
def test_teacher_bad_args(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ds.teacher(**kwargs)


# --------------------------------------------------------------------------- Dataset
def _small(**over):
    kw = dict(
        name="s",
        x_train=np.zeros((4, 2)),
        y_train=np.array([0, 1, 2, 1]),
        x_test=np.ones((2, 2)),
        y_test=np.array([2, 0]),
        task="classification",
        n_classes=3,
    )
    kw.update(over)
    return Dataset(**kw)


def test_one_hot_targets():
    d = _small()
    t = d.targets(d.y_train, np.float32)
    assert t.dtype == np.float32 and t.shape == (4, 3)
    np.testing.assert_array_equal(t, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(t.argmax(1), d.y_train)
    np.testing.assert_array_equal(t.sum(1), 1.0)


def test_dataset_validation():
    x = np.zeros((4, 2))
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match="x_train contains NaN or Inf"):
        _small(x_train=x)
    with pytest.raises(ValueError, match="x_test contains NaN or Inf"):
        _small(x_test=np.array([[np.inf, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="y_train"):
        _small(y_train=np.array([0, 1, 3, 1]))
    with pytest.raises(ValueError, match="y_test"):
        _small(y_test=np.array([-1, 0]))
    with pytest.raises(ValueError, match="x_train and y_train"):
        _small(y_train=np.array([0, 1]))
    with pytest.raises(ValueError, match="task"):
        _small(task="clustering")


def test_dataset_astype_subset_repr():
    d = _small()
    f = d.astype(np.float32)
    assert f.x_train.dtype == np.float32 and f.x_test.dtype == np.float32
    assert d.x_train.dtype == np.float64  # original untouched
    s = d.subset(n_train=2, n_test=1)
    assert s.n_train == 2 and s.n_test == 1
    np.testing.assert_array_equal(s.y_train, [0, 1])
    r = repr(d)
    assert "s" in r and "train=4" in r and "test=2" in r and len(r) < 200


# --------------------------------------------------------------------------- registry
def test_load_and_available():
    assert {"digits", "mnist1d", "teacher"} <= set(ds.available())
    d = ds.load("teacher", n_train=10, n_test=5)
    assert d.name == "teacher" and d.n_train == 10
    with pytest.raises(ValueError, match="digits"):
        ds.load("cifar10")
