"""Backends: who executes the circuit's operations.

Every operation of a circuit (prediction, error, feedback, value update, Hebbian term, soft output
target; see :mod:`neurosim.circuit.schedule`) exists in two implementations behind one contract:

- ``"numba"`` (default): compiled kernels on flat buffers (:mod:`neurosim.kernels`) for dense
  circuits; convolutional layers use the numba convolution kernels through the layer contract.
- ``"numpy"``: the reference, plain NumPy on the layer contract (``layer_predict``, ``layer_feedback``,
  ``layer_hebbian``) with the NumPy convolution references; slower, written to be read.

Both run the same schedules and report the same counted events, and the conformance suite
(``tests/test_conformance.py``) holds them equal (float64, 1e-10) for every registered variant and
layer type. Choose one for a block of code::

    with ns.backends.use("numpy"):
        grads = ns.variant("seqil").gradients(net, x, y)

A third backend (e.g. Brian2) plugs in by adding its name to :data:`BACKENDS` and a runner of
schedules (see :func:`neurosim.backends.reference.run` for the contract).
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

BACKENDS = ("numba", "numpy")
_CURRENT: ContextVar = ContextVar("neurosim_backend", default="numba")


def available() -> tuple:
    """Names of the backends."""
    return BACKENDS


def current() -> str:
    """The backend in force in this context (``"numba"`` unless inside :func:`use`)."""
    return _CURRENT.get()


def check(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {type(name).__name__}")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


@contextmanager
def use(name: str):
    """Run the circuit operations inside the ``with`` block on backend ``name``."""
    token = _CURRENT.set(check(name))
    try:
        yield name
    finally:
        _CURRENT.reset(token)


def is_reference() -> bool:
    """Whether the NumPy reference backend is in force."""
    return _CURRENT.get() == "numpy"
