"""Argument checks shared by the public API.

Every public entry point validates its input here, before any kernel runs, so that a user sees a
``ValueError``/``TypeError`` naming the argument instead of a numba typing trace.
"""
from __future__ import annotations

import math
import numbers

import numpy as np


MAX_TICKS = 1_000_000  # ticks of one step: beyond this a step is a hang, not an experiment


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int; TypeError if not integral, ValueError if outside ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:,}, got {value:,}")
    return value


def check_float(value, name: str, positive: bool = False, minimum: float | None = None,
                maximum: float | None = None, max_inclusive: bool = True) -> float:
    """``value`` as a finite float with optional bounds; the message names ``name``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and (value > maximum or (not max_inclusive and value >= maximum)):
        bound = "<=" if max_inclusive else "<"
        raise ValueError(f"{name} must be {bound} {maximum}, got {value}")
    return value


def check_dtype(dtype, choices) -> str:
    """Normalise a dtype spec to its name, which must be one of ``choices``."""
    try:
        name = np.dtype(dtype).name
    except TypeError as exc:
        raise TypeError(f"dtype must be one of {', '.join(choices)}, got {dtype!r}") from exc
    if name not in choices:
        raise ValueError(f"dtype must be one of {', '.join(choices)}, got {name!r}")
    return name


def all_finite(array) -> bool:
    """Whether every entry of a float array is finite. A finite ``sum(a * a)`` proves it (an inf or
    NaN entry makes it inf or NaN), and BLAS forms it without a temporary array (measured faster
    than ``np.isfinite(a).all()``); only when it is not finite (a non-finite entry, or entries too
    large to square) is every entry tested. (BLAS sets no floating-point flags, so no ``errstate`` is
    needed: tested with ``np.errstate(all="raise")``.)"""
    if math.isfinite(np.vdot(array, array)):
        return True
    return bool(np.isfinite(array).all())


_DTYPES = {}


def check_array(value, name: str, shape: tuple, dtype: str) -> np.ndarray:
    """A real-valued, finite, non-empty array of the given shape (``None`` = any size), as ``dtype``.

    Integer and float inputs are converted; complex, boolean, object and string arrays are a
    TypeError.
    """
    want = _DTYPES.get(dtype)
    if want is None:
        want = _DTYPES[dtype] = np.dtype(dtype)
    # An array that needs no conversion (every training step's batch): only its shape and values
    # are looked at. Anything else takes the checks below, which name what is wrong.
    if (type(value) is np.ndarray and value.dtype == want and value.ndim == len(shape) and value.size
            and value.flags.c_contiguous):
        fits = True
        for got, want_size in zip(value.shape, shape):
            if want_size is not None and got != want_size:
                fits = False
                break
        if fits:
            if not all_finite(value):
                raise ValueError(f"{name} contains NaN or Inf")
            return value
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array, got {type(value).__name__}") from exc
    if value.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (int or float), got dtype {value.dtype}")
    if value.ndim != len(shape):
        raise ValueError(f"{name} must have {len(shape)} dimensions {_shape_text(shape)}, "
                         f"got shape {value.shape}")
    for axis, (got, want) in enumerate(zip(value.shape, shape)):
        if want is not None and got != want:
            raise ValueError(f"{name} must have shape {_shape_text(shape)}, got {value.shape} "
                             f"(axis {axis} is {got}, expected {want})")
    if value.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {value.shape}); give at least one sample")
    if value.dtype != dtype or not value.flags.c_contiguous:
        value = np.ascontiguousarray(value, dtype=dtype)
    if not all_finite(value):
        raise ValueError(f"{name} contains NaN or Inf")
    return value


def _shape_text(shape) -> str:
    return "(" + ", ".join("B" if i == 0 and s is None else ("*" if s is None else str(s))
                           for i, s in enumerate(shape)) + ")"


def read_npz(path, what: str = "file") -> dict:
    """Every array of an ``.npz`` file, read now (``allow_pickle=False``); a corrupt, truncated or
    non-npz file is a ``ValueError`` naming it, a missing one ``FileNotFoundError``."""
    import os
    import zipfile
    import zlib

    name = os.fspath(path)
    if os.path.isdir(name):
        raise ValueError(f"{what} {name} is a folder, not an .npz file")
    try:
        with np.load(name, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {name}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{what} {name}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None


def require_keys(data: dict, keys, where: str) -> None:
    """``ValueError`` naming ``where`` and the first of ``keys`` missing from ``data``."""
    for key in keys:
        if key not in data:
            raise ValueError(f"{where}: missing array {key!r}; it has {', '.join(sorted(data)) or 'none'}")
