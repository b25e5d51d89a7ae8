"""Scalar maths of the kernels: the activation functions and their derivatives, a vectorisable
float32 tanh, typed constants and a finiteness test that survives fast-math.

Everything here is tiny, used by the dense loops (:mod:`.dense`) and the schedule loop
(:mod:`.schedule`). None of it is inlined by numba (``inline="always"`` copies a function's IR into
every caller before typing, which made a cold compile about a quarter slower); LLVM inlines the
compiled functions anyway, so the kernels' speed is unchanged. ``njit`` is numba's with ``error_model="numpy"`` (see below) and
``FASTMATH`` the fast-math flags every kernel uses: without ``nnan``/``ninf``, so non-finite values
are still detected.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit as _numba_njit
from numba import types
from numba.extending import overload

FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# ``error_model="numpy"``: a float division by zero gives inf/nan instead of raising. Python's model
# puts a zero test (and a branch to raise) in front of every division, which stops LLVM from
# vectorising any loop that divides (the float32 tanh below, the sigmoid). Results are unchanged
# wherever the divisor is non-zero.
njit = functools.partial(_numba_njit, error_model="numpy")


def tanh(v):
    """tanh of a scalar inside the kernels: libm's ``tanh`` in float64, a vectorisable rational
    approximation in float32 (see :func:`_tanh_float32`)."""
    return np.tanh(v)


@njit(cache=True, fastmath=FASTMATH)
def _tanh_float32(v):
    """float32 tanh as the [13/6] rational approximation used by Eigen and XLA on CPU.

    The argument is clamped to +-7.905 (where float32 tanh is 1 to within 2.4e-7); the maximum
    error over all float32 inputs is about 2 ulp. Unlike libm's ``tanhf`` (a scalar call, ~15-30 ns)
    it has no call and no branch, so loops over it vectorise (~0.4 ns per element with AVX2).
    NaN propagates (both comparisons are false); +-inf give +-(1 - 2.4e-7).
    """
    clamp = np.float32(7.90531110763549805)
    v = clamp if v > clamp else v
    v = -clamp if v < -clamp else v
    v2 = v * v
    p = np.float32(-2.76076847742355e-16)
    p = p * v2 + np.float32(2.00018790482477e-13)
    p = p * v2 + np.float32(-8.60467152213735e-11)
    p = p * v2 + np.float32(5.12229709037114e-08)
    p = p * v2 + np.float32(1.48572235717979e-05)
    p = p * v2 + np.float32(6.37261928875436e-04)
    p = p * v2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * v2 + np.float32(1.18534705686654e-04)
    q = q * v2 + np.float32(2.26843463243900e-03)
    q = q * v2 + np.float32(4.89352518554385e-03)
    return v * p / q


@overload(tanh)
def _tanh_overload(v):
    if v == types.float32:
        return lambda v: _tanh_float32(v)
    return lambda v: np.tanh(v)


def tanh_deriv(v):
    """``1 - tanh(v)^2``, the derivative of the :func:`tanh` actually computed."""
    return 1.0 - np.tanh(v) ** 2


@njit(cache=True, fastmath=FASTMATH)
def _tanh_deriv_float32(v):
    # Beyond the clamp the float32 tanh is the constant 1 - 2.4e-7, so its derivative is 0 there
    # (1 - t^2 would give 4.8e-7 and let a huge pre-activation pass a gradient through, where
    # float64 and the true sech^2 give 0).
    if abs(v) > np.float32(7.90531110763549805):
        return np.float32(0.0)
    t = _tanh_float32(v)
    return np.float32(1.0) - t * t


@njit(cache=True, fastmath=FASTMATH)
def _tanh_deriv_float64(v):
    t = np.tanh(v)
    return 1.0 - t * t


@overload(tanh_deriv)
def _tanh_deriv_overload(v):
    if v == types.float32:
        return lambda v: _tanh_deriv_float32(v)
    return lambda v: _tanh_deriv_float64(v)


def tanh_deriv_given(v, a):
    """``1 - a^2`` for ``a = tanh(v)`` already computed: the derivative of the tanh actually computed."""
    return 1.0 - a * a


@overload(tanh_deriv_given)
def _tanh_deriv_given_overload(v, a):
    if a == types.float32:
        def float32_given(v, a):
            if abs(v) > np.float32(7.90531110763549805):  # the clamped float32 tanh is flat there
                return np.float32(0.0)
            return np.float32(1.0) - a * a
        return float32_given
    return lambda v, a: 1.0 - a * a


def const(value, like):
    """The Python float ``value`` in the floating type of ``like`` (a float literal alone is float64
    in numba and would promote float32 arithmetic, and its tanh, to float64)."""
    return value


@overload(const)
def _const_overload(value, like):
    if like == types.float32:
        return lambda value, like: np.float32(value)
    return lambda value, like: np.float64(value)


@njit(cache=True)
def finite(v):
    """Whether a scalar is finite, reliably under ``FASTMATH``.

    With ``nsz`` and ``reassoc`` together, LLVM folds numba's ``np.isfinite`` of a value computed
    in the same function to True (measured, numba 0.68: ``isfinite(1 + 1e38 * 1e3)`` in float32,
    ``isfinite(1 + 1e308 * 1e3)`` in float64). An ordered comparison with infinity survives every
    flag in ``FASTMATH`` (it would not survive ``nnan``/``ninf``, which are left out).
    """
    return abs(v) < np.inf


@njit(cache=True)
def activate(code, v):
    one = const(1.0, v)
    if code == 1:
        return tanh(v)
    if code == 2:
        if v >= 0:
            return one / (one + np.exp(-v))
        ev = np.exp(v)
        return ev / (one + ev)
    if code == 3:
        return v if v > 0 else const(0.0, v) * v
    if code == 4:
        return v if v > 0 else const(0.01, v) * v
    if code == 5:
        return v if v > 0 else const(0.1, v) * v
    return v


@njit(cache=True)
def activate_deriv(code, v):
    one = const(1.0, v)
    if code == 1:
        return tanh_deriv(v)
    if code == 2:
        if v >= 0:
            s = one / (one + np.exp(-v))
        else:
            ev = np.exp(v)
            s = ev / (one + ev)
        return s * (one - s)
    if code == 3:
        return one if v > 0 else const(0.0, v)
    if code == 4:
        return one if v > 0 else const(0.01, v)
    if code == 5:
        return one if v > 0 else const(0.1, v)
    return one


@njit(cache=True)
def activate_deriv_given(code, v, a):
    """f'(v) when a = f(v) is already known: saves the transcendental call for tanh and sigmoid."""
    one = const(1.0, a)
    if code == 1:
        return tanh_deriv_given(v, a)
    if code == 2:
        return a * (one - a)
    return activate_deriv(code, v)
