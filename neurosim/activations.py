"""Activation functions ``phi`` and their derivatives, by name.

Each activation has an integer code so that numba kernels can select it without Python objects, and a
NumPy pair ``(f, df)`` used by the reference implementations and by non-dense layers.

| name         | f(x)                     | f'(x)                          |
|--------------|--------------------------|--------------------------------|
| ``linear``   | x                        | 1                              |
| ``tanh``     | tanh(x)                  | 1 - tanh(x)^2                  |
| ``sigmoid``  | 1 / (1 + exp(-x))        | s(x) (1 - s(x))                |
| ``relu``     | max(x, 0)                | 1 if x > 0 else 0              |
| ``leaky_relu`` | x if x > 0 else 0.01 x | 1 if x > 0 else 0.01           |
| ``leaky_relu_0.1`` | x if x > 0 else 0.1 x | 1 if x > 0 else 0.1         |

The derivative of ``relu`` at 0 is taken as 0, as in PyTorch's autograd (and the leaky ones' as their
slope). ``leaky_relu`` has PyTorch's default slope; ``leaky_relu_0.1`` is the one of COPI's paper
and public code (Ahmad, Schrader & van Gerven 2023).
"""
from __future__ import annotations

import numpy as np

LEAKY_SLOPE = 0.01
# The slope below 0 of each leaky activation (the numba kernels spell the same numbers by code).
LEAKY_SLOPES = {"leaky_relu": LEAKY_SLOPE, "leaky_relu_0.1": 0.1}

CODES = {"linear": 0, "tanh": 1, "sigmoid": 2, "relu": 3, "leaky_relu": 4, "leaky_relu_0.1": 5}


def _sigmoid(x):
    # Split by sign so exp never overflows for large |x|.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def _sigmoid_deriv(x):
    s = _sigmoid(x)
    return s * (1.0 - s)


_FUNCTIONS = {
    "linear": (lambda x: x.copy(), lambda x: np.ones_like(x)),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "sigmoid": (_sigmoid, _sigmoid_deriv),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(x.dtype)),
    **{name: (
        lambda x, slope=slope: np.where(x > 0, x, x * slope).astype(x.dtype),
        lambda x, slope=slope: np.where(x > 0, 1.0, slope).astype(x.dtype),
    ) for name, slope in LEAKY_SLOPES.items()},
}


def names() -> list[str]:
    """Names of the available activations."""
    return list(CODES)


def check(name) -> str:
    """Return ``name`` if it is a known activation, else raise a ValueError naming the choices."""
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string, got {type(name).__name__}")
    if name not in CODES:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(CODES)}")
    return name


def code(name: str) -> int:
    """Integer code of an activation, as the numba kernels expect it."""
    return CODES[check(name)]


def apply(name: str, x: np.ndarray) -> np.ndarray:
    """``f(x)`` elementwise (NumPy)."""
    return _FUNCTIONS[check(name)][0](x)


def derivative(name: str, x: np.ndarray) -> np.ndarray:
    """``f'(x)`` elementwise (NumPy)."""
    return _FUNCTIONS[check(name)][1](x)
