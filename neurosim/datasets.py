"""Small, offline datasets for training and testing predictive-coding circuits.

Nothing in this module ever downloads anything: every dataset is either bundled
with an installed package, generated locally, or read from a file supplied by
the user.

Available sets
--------------
``digits``
    scikit-learn's bundled 8x8 handwritten digits (``sklearn.datasets.load_digits``,
    a copy of the UCI ML "optical recognition of handwritten digits" test set):
    1797 samples, 10 classes, 64 pixel features with integer values 0..16,
    scaled here to [0, 1].  Split into train/test with a fixed stratified split
    (default 80/20 -> 1437 / 360).
``mnist1d``
    MNIST-1D (Greydanus, 2020, "Scaling down deep learning"), generated locally
    with the ``mnist1d`` package's ``make_dataset`` (the package's
    ``get_dataset`` downloads a pickle and is never used).  4000 train / 1000
    test sequences of length 40, 10 classes.  Features are standardised with the
    per-feature mean and standard deviation of the *training* set (the same
    affine map is applied to the test set).
``teacher``
    Synthetic regression: inputs are standard normal and targets are the output
    of a fixed random "teacher" MLP, optionally plus Gaussian noise.

Loaders for user data
---------------------
``load_idx`` / ``read_idx`` / ``write_idx``
    MNIST-style IDX files (optionally gzip-compressed), e.g. the original
    MNIST / Fashion-MNIST files if you already have them on disk.
``load_npz``
    A user ``.npz`` archive holding ``x_train``/``y_train`` (and optionally
    ``x_test``/``y_test``) arrays.

All loaders return a :class:`Dataset`.  Use :func:`load` to get a built-in set
by name and :func:`available` for the list of names.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import zlib
import os
import random
import struct
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = [
    "Dataset",
    "digits",
    "mnist1d",
    "teacher",
    "read_idx",
    "write_idx",
    "load_idx",
    "load_npz",
    "load",
    "available",
]

_TASKS = ("classification", "regression")


# --------------------------------------------------------------------------- #
# Dataset container
# --------------------------------------------------------------------------- #
@dataclass
class Dataset:
    """A train/test dataset held in memory.

    Attributes
    ----------
    name : str
    x_train : ndarray, shape (N_train, *feature_shape)
    y_train : ndarray
        Classification: int64 labels, shape (N_train,), values in [0, n_classes).
        Regression: float array, shape (N_train, n_out).
    x_test : ndarray, shape (N_test, *feature_shape)
    y_test : ndarray, like ``y_train`` with N_test rows.
    task : {"classification", "regression"}
    n_classes : int or None (None for regression)
    feature_shape : tuple
        Shape of one sample; defaults to ``x_train.shape[1:]``.

    Instances are validated on construction and should be treated as
    immutable (use :meth:`astype` / :meth:`subset` to derive new ones).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str = "classification"
    n_classes: int | None = None
    feature_shape: tuple = ()

    def __post_init__(self) -> None:
        if self.task not in _TASKS:
            raise ValueError(f"task must be one of {_TASKS}, got {self.task!r}")
        for field in ("x_train", "y_train", "x_test", "y_test"):
            setattr(self, field, np.asarray(getattr(self, field)))
        for field in ("x_train", "x_test"):
            arr = getattr(self, field)
            if arr.ndim < 1:
                raise ValueError(f"{field} must have a sample axis, got a scalar")
            if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
                raise ValueError(f"{field} must be a real numeric array, got dtype {arr.dtype}")
            if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
                raise ValueError(f"{field} contains NaN or Inf")
        if len(self.x_train) != len(self.y_train):
            raise ValueError(
                f"x_train and y_train lengths differ: {len(self.x_train)} vs {len(self.y_train)}"
            )
        if len(self.x_test) != len(self.y_test):
            raise ValueError(
                f"x_test and y_test lengths differ: {len(self.x_test)} vs {len(self.y_test)}"
            )
        fshape = tuple(int(s) for s in self.x_train.shape[1:])
        if self.feature_shape in ((), None) and fshape:
            self.feature_shape = fshape
        else:
            self.feature_shape = tuple(int(s) for s in self.feature_shape)
        if self.feature_shape != fshape:
            raise ValueError(
                f"feature_shape {self.feature_shape} does not match x_train.shape[1:] = {fshape}"
            )
        if tuple(self.x_test.shape[1:]) != fshape:
            raise ValueError(
                f"x_test feature shape {tuple(self.x_test.shape[1:])} does not match "
                f"x_train feature shape {fshape}"
            )

        if self.task == "classification":
            if self.n_classes is None or int(self.n_classes) < 1:
                raise ValueError(
                    f"n_classes must be a positive int for classification, got {self.n_classes!r}"
                )
            self.n_classes = int(self.n_classes)
            for field in ("y_train", "y_test"):
                y = getattr(self, field)
                if y.ndim != 1:
                    raise ValueError(f"{field} must be 1-D labels for classification, got shape {y.shape}")
                if y.size and not np.issubdtype(y.dtype, np.integer):
                    if not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
                        raise ValueError(f"{field} must contain integer class labels")
                y = y.astype(np.int64)
                if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                    raise ValueError(
                        f"{field} labels must be in [0, {self.n_classes}), "
                        f"got range [{y.min()}, {y.max()}]"
                    )
                setattr(self, field, y)
        else:
            if self.n_classes is not None:
                raise ValueError("n_classes must be None for regression")
            for field in ("y_train", "y_test"):
                y = getattr(self, field)
                if y.ndim == 1:
                    y = y[:, None]
                if y.ndim != 2:
                    raise ValueError(f"{field} must have shape (N, n_out) for regression, got {y.shape}")
                if not np.issubdtype(y.dtype, np.floating):
                    y = y.astype(np.float64)
                if not np.all(np.isfinite(y)):
                    raise ValueError(f"{field} contains NaN or Inf")
                setattr(self, field, y)
            if self.y_train.shape[1] != self.y_test.shape[1]:
                raise ValueError(
                    f"y_train and y_test output widths differ: "
                    f"{self.y_train.shape[1]} vs {self.y_test.shape[1]}"
                )

    # ----------------------------------------------------------------- props
    @property
    def n_inputs(self) -> int:
        """Number of input features, ``prod(feature_shape)``."""
        return int(np.prod(self.feature_shape, dtype=np.int64))

    @property
    def n_outputs(self) -> int:
        """``n_classes`` for classification, else ``y_train.shape[1]``."""
        if self.task == "classification":
            return int(self.n_classes)  # type: ignore[arg-type]
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(len(self.x_train))

    @property
    def n_test(self) -> int:
        return int(len(self.x_test))

    # --------------------------------------------------------------- methods
    def targets(self, labels_or_y: np.ndarray | None = None, dtype: Any = np.float64) -> np.ndarray:
        """Network targets for ``labels_or_y`` (default: ``y_train``).

        Classification: one-hot array of shape (N, n_classes), 1.0 at the label
        and 0.0 elsewhere.  Regression: the float array itself, shape (N, n_out).
        """
        y = self.y_train if labels_or_y is None else np.asarray(labels_or_y)
        if self.task == "classification":
            return one_hot(y, self.n_classes, dtype=dtype)  # type: ignore[arg-type]
        y = np.asarray(y, dtype=dtype)
        return y[:, None] if y.ndim == 1 else y

    def astype(self, dtype: Any) -> "Dataset":
        """Copy with ``x_train`` / ``x_test`` (and regression targets) cast to ``dtype``."""
        changes: dict[str, Any] = {
            "x_train": self.x_train.astype(dtype, copy=True),
            "x_test": self.x_test.astype(dtype, copy=True),
        }
        if self.task == "regression":
            changes["y_train"] = self.y_train.astype(dtype, copy=True)
            changes["y_test"] = self.y_test.astype(dtype, copy=True)
        else:
            changes["y_train"] = self.y_train.copy()
            changes["y_test"] = self.y_test.copy()
        return dataclasses.replace(self, **changes)

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """Copy keeping only the first ``n_train`` train and ``n_test`` test samples."""
        for arg, val in (("n_train", n_train), ("n_test", n_test)):
            if val is not None and (not _is_int(val) or val < 0):
                raise ValueError(f"{arg} must be a non-negative int or None, got {val!r}")
        tr = slice(None) if n_train is None else slice(0, int(n_train))
        te = slice(None) if n_test is None else slice(0, int(n_test))
        return dataclasses.replace(
            self,
            x_train=self.x_train[tr].copy(),
            y_train=self.y_train[tr].copy(),
            x_test=self.x_test[te].copy(),
            y_test=self.y_test[te].copy(),
        )

    def __repr__(self) -> str:
        extra = (
            f"n_classes={self.n_classes}"
            if self.task == "classification"
            else f"n_outputs={self.n_outputs}"
        )
        return (
            f"Dataset({self.name!r}, {self.task}, train={self.n_train}, test={self.n_test}, "
            f"feature_shape={self.feature_shape}, {extra}, dtype={self.x_train.dtype})"
        )


def one_hot(labels: np.ndarray, n_classes: int, dtype: Any = np.float64) -> np.ndarray:
    """One-hot encode integer ``labels`` (N,) -> (N, n_classes) with 1.0 / 0.0 entries."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    idx = labels.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes})")
    out = np.zeros((idx.shape[0], n_classes), dtype=dtype)
    out[np.arange(idx.shape[0]), idx] = 1
    return out


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_fraction(test_fraction: float) -> float:
    try:
        f = float(test_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}") from None
    if not 0.0 < f < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    return f


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, stratify: bool):
    """Deterministic train/test split; stratified on ``y`` when possible."""
    from sklearn.model_selection import train_test_split

    strat = None
    if stratify:
        _, counts = np.unique(y, return_counts=True)
        n_test = int(np.ceil(test_fraction * len(y)))
        # sklearn requires >= 2 members per class and n_test >= n_classes
        if counts.min() >= 2 and n_test >= len(counts) and len(y) - n_test >= len(counts):
            strat = y
    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=strat)


# --------------------------------------------------------------------------- #
# digits
# --------------------------------------------------------------------------- #
def digits(test_fraction: float = 0.2, seed: int = 0, flat: bool = True) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 samples, 10 classes).

    Pixels are scaled to [0, 1] (divided by 16) as float64.  Fixed stratified
    split via ``train_test_split(..., stratify=labels, random_state=seed)``;
    the default gives 1437 train / 360 test.

    Returns features of shape (N, 64) if ``flat`` else (N, 1, 8, 8).
    """
    from sklearn.datasets import load_digits

    test_fraction = _check_fraction(test_fraction)
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = _split(x, y, test_fraction, seed, stratify=True)
    if not flat:
        x_tr = x_tr.reshape(-1, 1, 8, 8)
        x_te = x_te.reshape(-1, 1, 8, 8)
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x_tr),
        y_train=y_tr,
        x_test=np.ascontiguousarray(x_te),
        y_test=y_te,
        task="classification",
        n_classes=10,
        feature_shape=tuple(x_tr.shape[1:]),
    )


# --------------------------------------------------------------------------- #
# MNIST-1D
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=8)
def _mnist1d_raw(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate MNIST-1D locally (never downloads).  Cached per seed.

    ``mnist1d.make_dataset`` reseeds the global ``random`` / ``np.random``
    generators; their states are restored afterwards so callers are unaffected.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = int(seed)
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    arrays = (
        np.asarray(d["x"], dtype=np.float64),
        np.asarray(d["y"], dtype=np.int64),
        np.asarray(d["x_test"], dtype=np.float64),
        np.asarray(d["y_test"], dtype=np.int64),
    )
    for a in arrays:
        a.setflags(write=False)
    return arrays


def mnist1d(seed: int = 0, flat: bool = True) -> Dataset:
    """MNIST-1D (Greydanus 2020), generated locally: 4000 train / 1000 test, 10 classes.

    Each feature is standardised with the train-set mean and standard deviation
    (the same transform is applied to the test set).  Returns float64 features
    of shape (N, 40) if ``flat`` else (N, 1, 40).  Generation takes a few
    seconds; the raw arrays are cached in-process per ``seed``.
    """
    if not _is_int(seed):
        raise ValueError(f"seed must be an int, got {seed!r}")
    x_tr, y_tr, x_te, y_te = _mnist1d_raw(int(seed))
    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_tr = (x_tr - mean) / std
    x_te = (x_te - mean) / std
    if not flat:
        x_tr = x_tr[:, None, :]
        x_te = x_te[:, None, :]
    return Dataset(
        name="mnist1d",
        x_train=np.ascontiguousarray(x_tr),
        y_train=y_tr.copy(),
        x_test=np.ascontiguousarray(x_te),
        y_test=y_te.copy(),
        task="classification",
        n_classes=10,
        feature_shape=tuple(x_tr.shape[1:]),
    )


# --------------------------------------------------------------------------- #
# IDX files
# --------------------------------------------------------------------------- #
# IDX type code -> numpy big-endian dtype
_IDX_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_KINDS: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _IDX_CODES.items()
}


def _open(path: str | os.PathLike, mode: str):
    p = os.fspath(path)
    return gzip.open(p, mode) if p.endswith(".gz") else open(p, mode)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` allowed) into a native-endian array of its shape.

    Raises ValueError for a bad magic number or a truncated / oversized file;
    FileNotFoundError propagates unchanged.
    """
    p = os.fspath(path)
    try:
        with _open(p, "rb") as fh:
            raw = fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{p}: not a valid gzip file ({exc})") from None
    except IsADirectoryError:
        raise ValueError(f"{p} is a folder, not an IDX file") from None
    if len(raw) < 4:
        raise ValueError(f"{p}: truncated IDX file (only {len(raw)} bytes, need a 4-byte magic number)")
    z0, z1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if z0 != 0 or z1 != 0 or code not in _IDX_CODES:
        raise ValueError(
            f"{p}: bad IDX magic number 0x{raw[:4].hex()} "
            f"(expected 0x0000TTDD with type code TT in "
            f"{sorted(hex(c) for c in _IDX_CODES)})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{p}: truncated IDX header (need {header} bytes, file has {len(raw)})")
    dims = struct.unpack(f">{ndim}I", raw[4:header]) if ndim else ()
    dt = _IDX_CODES[code]
    count = int(np.prod(dims, dtype=np.int64)) if ndim else 1
    need = header + count * dt.itemsize
    if len(raw) < need:
        raise ValueError(
            f"{p}: truncated IDX data (shape {tuple(dims)} of {dt.name} needs {need} bytes, "
            f"file has {len(raw)})"
        )
    if len(raw) > need:
        raise ValueError(
            f"{p}: IDX file has {len(raw) - need} unexpected trailing bytes after shape {tuple(dims)}"
        )
    arr = np.frombuffer(raw, dtype=dt, count=count, offset=header)
    return arr.astype(dt.newbyteorder("="), copy=True).reshape(dims)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed if ``path`` ends in ``.gz``).

    Supported dtypes: uint8, int8, int16, int32, float32, float64.
    """
    arr = np.asarray(array)
    key = (arr.dtype.kind, arr.dtype.itemsize)
    if key not in _IDX_KINDS:
        raise ValueError(
            f"write_idx: unsupported dtype {arr.dtype}; use uint8, int8, int16, int32, float32 or float64"
        )
    if arr.ndim > 255:
        raise ValueError(f"write_idx: too many dimensions ({arr.ndim} > 255)")
    if any(s > 0xFFFFFFFF for s in arr.shape):
        raise ValueError(f"write_idx: dimension too large for IDX: {arr.shape}")
    code = _IDX_KINDS[key]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = np.ascontiguousarray(arr, dtype=_IDX_CODES[code]).tobytes()
    with _open(path, "wb") as fh:
        fh.write(header)
        fh.write(data)


def _idx_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(images_path)
    y = read_idx(labels_path)
    if x.ndim < 1:
        raise ValueError(f"{os.fspath(images_path)}: images file holds a scalar, expected (N, ...)")
    if y.ndim != 1:
        raise ValueError(f"{os.fspath(labels_path)}: labels must be 1-D, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{os.fspath(labels_path)}: labels must be integers, got {y.dtype}")
    if len(x) != len(y):
        raise ValueError(
            f"image/label count mismatch: {os.fspath(images_path)} has {len(x)} images, "
            f"{os.fspath(labels_path)} has {len(y)} labels"
        )
    if x.dtype == np.uint8:
        x = x.astype(np.float64) / 255.0
    else:
        x = x.astype(np.float64)
    return x, y.astype(np.int64)


def load_idx(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    test_images_path: str | os.PathLike | None = None,
    test_labels_path: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    flat: bool = True,
) -> Dataset:
    """Load an MNIST-style classification set from IDX files (``.gz`` allowed).

    Images (N, *shape) become float64 features, scaled to [0, 1] if stored as
    uint8; ``flat`` reshapes them to (N, prod(shape)).  Labels must be 1-D
    integers; ``n_classes`` is ``max label + 1``.  Without test files the
    training files are split by ``test_fraction`` (stratified, ``seed``).
    """
    if (test_images_path is None) != (test_labels_path is None):
        raise ValueError("give both test_images_path and test_labels_path, or neither")
    x, y = _idx_pair(images_path, labels_path)
    if test_images_path is None:
        test_fraction = _check_fraction(test_fraction)
        x_tr, x_te, y_tr, y_te = _split(x, y, test_fraction, seed, stratify=True)
    else:
        x_tr, y_tr = x, y
        x_te, y_te = _idx_pair(test_images_path, test_labels_path)
        if x_te.shape[1:] != x_tr.shape[1:]:
            raise ValueError(
                f"train images have shape {x_tr.shape[1:]} but test images have {x_te.shape[1:]}"
            )
    if flat:
        x_tr = x_tr.reshape(len(x_tr), -1)
        x_te = x_te.reshape(len(x_te), -1)
    all_y = np.concatenate([y_tr, y_te])
    if all_y.size and all_y.min() < 0:
        raise ValueError("IDX labels must be non-negative")
    n_classes = int(all_y.max()) + 1 if all_y.size else 1
    name = os.path.basename(os.fspath(images_path))
    for suffix in (".gz", ".idx3-ubyte", "-idx3-ubyte", ".idx"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return Dataset(
        name=name or "idx",
        x_train=np.ascontiguousarray(x_tr),
        y_train=y_tr,
        x_test=np.ascontiguousarray(x_te),
        y_test=y_te,
        task="classification",
        n_classes=n_classes,
        feature_shape=tuple(x_tr.shape[1:]),
    )


# --------------------------------------------------------------------------- #
# .npz
# --------------------------------------------------------------------------- #
def load_npz(
    path: str | os.PathLike,
    x_key: str = "x_train",
    y_key: str = "y_train",
    x_test_key: str = "x_test",
    y_test_key: str = "y_test",
    task: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Load a user ``.npz`` archive.

    ``x_key``/``y_key`` are required; if either test key is missing, the data is
    split 80/20 with seed 0 (stratified for classification).  ``task`` is
    inferred when None: integer (or bool) ``y`` -> classification with
    ``n_classes = max + 1``; float ``y`` -> regression (1-D y becomes (N, 1)).
    """
    from .validation import read_npz

    p = os.fspath(path)
    npz = read_npz(p, "data file")
    keys = sorted(npz)
    for k in (x_key, y_key):
        if k not in npz:
            raise ValueError(f"{p}: missing key {k!r}; keys present: {keys}")
    x = np.asarray(npz[x_key])
    y = np.asarray(npz[y_key])
    has_test = x_test_key in npz and y_test_key in npz
    x_te = np.asarray(npz[x_test_key]) if has_test else None
    y_te = np.asarray(npz[y_test_key]) if has_test else None

    if task is None:
        task = "classification" if (np.issubdtype(y.dtype, np.integer) or y.dtype == bool) else "regression"
    if task not in _TASKS:
        raise ValueError(f"task must be one of {_TASKS} or None, got {task!r}")
    if len(x) != len(y):
        raise ValueError(f"{p}: {x_key!r} has {len(x)} rows but {y_key!r} has {len(y)}")
    if task == "classification":
        for key, labels in ((y_key, y), (y_test_key, y_te)):
            if labels is None or np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool:
                continue
            if not np.issubdtype(labels.dtype, np.number) or not (
                    np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))):
                raise ValueError(f"{p}: {key!r} must hold integer class labels for task='classification'")
        y = y.astype(np.int64)
        if y_te is not None:
            y_te = y_te.astype(np.int64)
    if x_te is None:
        x, x_te, y, y_te = _split(x, y, 0.2, 0, stratify=(task == "classification"))
    n_classes = None
    if task == "classification":
        all_y = np.concatenate([y, y_te])
        n_classes = int(all_y.max()) + 1 if all_y.size else 1
    if name is None:
        name = os.path.splitext(os.path.basename(p))[0]
    return Dataset(
        name=name,
        x_train=x,
        y_train=y,
        x_test=x_te,
        y_test=y_te,
        task=task,
        n_classes=n_classes,
        feature_shape=tuple(x.shape[1:]),
    )


# --------------------------------------------------------------------------- #
# teacher
# --------------------------------------------------------------------------- #
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": _sigmoid,
    "linear": lambda z: z,
}


def teacher(
    n_inputs: int = 20,
    n_outputs: int = 5,
    hidden: tuple[int, ...] = (32,),
    n_train: int = 1000,
    n_test: int = 200,
    noise: float = 0.0,
    activation: str = "tanh",
    seed: int = 0,
) -> Dataset:
    """Synthetic regression from a fixed random teacher MLP.

    Weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2); ``activation`` is applied
    after every hidden layer, the output layer is linear.  Inputs
    x ~ N(0, I) with shape (N, n_inputs); targets y = teacher(x) + noise * N(0, 1)
    with shape (N, n_outputs), float64.  Fully determined by ``seed``.
    """
    for arg, val in (("n_inputs", n_inputs), ("n_outputs", n_outputs),
                     ("n_train", n_train), ("n_test", n_test)):
        if not _is_int(val) or val <= 0:
            raise ValueError(f"{arg} must be a positive int, got {val!r}")
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}") from None
    if not all(_is_int(h) and h > 0 for h in hidden):
        raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)) \
            or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}"
        )
    if not _is_int(seed):
        raise ValueError(f"seed must be an int, got {seed!r}")
    act = _ACTIVATIONS[activation]
    rng = np.random.default_rng(int(seed))
    sizes = (int(n_inputs), *(int(h) for h in hidden), int(n_outputs))
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_in, fan_out))
        b = rng.normal(0.0, 0.1, size=fan_out)
        params.append((w, b))

    def forward(x: np.ndarray) -> np.ndarray:
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i < len(params) - 1:
                h = act(h)
        return h

    x_tr = rng.standard_normal((int(n_train), int(n_inputs)))
    x_te = rng.standard_normal((int(n_test), int(n_inputs)))
    y_tr = forward(x_tr) + float(noise) * rng.standard_normal((int(n_train), int(n_outputs)))
    y_te = forward(x_te) + float(noise) * rng.standard_normal((int(n_test), int(n_outputs)))
    return Dataset(
        name="teacher",
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        task="regression",
        n_classes=None,
        feature_shape=(int(n_inputs),),
    )


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #
def _npz_by_name(path: str | os.PathLike | None = None, **kwargs: Any) -> Dataset:
    """``load("npz", path=...)``: your own arrays (see :func:`load_npz` for the keys)."""
    if path is None:
        raise ValueError("dataset 'npz' needs path = \"your_data.npz\" (arrays x_train, y_train[, x_test, y_test])")
    return load_npz(path, **kwargs)


def _idx_by_name(images: str | os.PathLike | None = None, labels: str | os.PathLike | None = None,
                 test_images: str | os.PathLike | None = None, test_labels: str | os.PathLike | None = None,
                 **kwargs: Any) -> Dataset:
    """``load("idx", images=..., labels=..., [test_images=..., test_labels=...])``: MNIST-style files."""
    if images is None or labels is None:
        raise ValueError("dataset 'idx' needs images = \"...\" and labels = \"...\" (IDX files, .gz allowed)")
    return load_idx(images, labels, test_images, test_labels, **kwargs)


_REGISTRY: dict[str, Callable[..., Dataset]] = {
    "digits": digits,
    "mnist1d": mnist1d,
    "teacher": teacher,
    "npz": _npz_by_name,
    "idx": _idx_by_name,
}


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_REGISTRY)


def load(name: str, **kwargs: Any) -> Dataset:
    """Load a dataset by name (see :func:`available`), forwarding ``kwargs``: a built-in one
    (``digits``, ``mnist1d``, ``teacher``) or your own files, ``load("npz", path=...)`` and
    ``load("idx", images=..., labels=..., test_images=..., test_labels=...)``; run configs say the
    same in their ``[data]`` table. Relative paths are taken from the current folder."""
    key = str(name).strip().lower().replace("-", "").replace("_", "") if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; choose from {available()}")
    try:
        return _REGISTRY[key](**kwargs)
    except TypeError as exc:  # an unknown keyword: name it without the function's internals
        raise ValueError(f"dataset {name!r}: {exc}".replace(f"{_REGISTRY[key].__name__}() ", "")) from None
