"""Flat memory layout shared by the dense kernels and their references.

A dense circuit with sizes ``(n_0, ..., n_L)`` keeps its parameters in one 1-D array (weights row
major, then bias, layer after layer) and each state quantity (values, activities, predictions,
errors, feedback) in one 1-D buffer of ``B * sum_l n_l`` entries, layer ``l`` a C-contiguous
``(B, n_l)`` block. Flat buffers let one compiled kernel serve every depth, and let the network
expose per-layer arrays as views without copies.
"""
from __future__ import annotations

import numpy as np

# Bytes: one cache line, and the widest SIMD load. A buffer whose start is not a multiple of it
# makes a share of the kernels' vector loads straddle two cache lines; measured on the digits MLP
# at batch 1 (float32), a training step took 10-15% longer with the parameters 16 or 32 bytes off
# than 64-byte aligned, and NumPy's own allocations guarantee only 16.
ALIGNMENT = 64


def aligned_zeros(shape, dtype) -> np.ndarray:
    """A C-contiguous array of zeros whose first element sits on an :data:`ALIGNMENT`-byte boundary."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(n_bytes + ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + n_bytes].view(dtype).reshape(shape)


def aligned_copy(array) -> np.ndarray:
    """A copy of ``array`` in an :func:`aligned_zeros` buffer."""
    out = aligned_zeros(np.shape(array), np.asarray(array).dtype)
    out[...] = array
    return out


def aligned_length(n: int, dtype) -> int:
    """``n`` rounded up to a whole number of :data:`ALIGNMENT`-byte lines of ``dtype`` entries."""
    per_line = max(1, ALIGNMENT // np.dtype(dtype).itemsize)
    return -(-int(n) // per_line) * per_line


def param_offsets(sizes) -> tuple[np.ndarray, np.ndarray, int]:
    """Offsets of ``W_l`` and ``b_l`` (index ``l = 1..L``; index 0 unused) and the total length."""
    sizes = np.asarray(sizes, dtype=np.int64)
    n_layers = len(sizes) - 1
    w_off = np.zeros(n_layers + 1, dtype=np.int64)
    b_off = np.zeros(n_layers + 1, dtype=np.int64)
    cursor = 0
    for layer in range(1, n_layers + 1):
        w_off[layer] = cursor
        cursor += sizes[layer] * sizes[layer - 1]
        b_off[layer] = cursor
        cursor += sizes[layer]
    return w_off, b_off, int(cursor)


def state_offsets(sizes, batch: int) -> np.ndarray:
    """Start of layer ``l``'s ``(batch, n_l)`` block in a state buffer, ``l = 0..L``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.int64) * batch


class DenseWorkspace:
    """Preallocated state buffers of a dense circuit for one batch size, reused across batches.

    ``values``, ``acts``, ``preds``, ``errors``, ``feedback``: flat buffers (see module docstring);
    ``layer(name, l)`` returns the ``(batch, n_l)`` view of one of them.
    """

    BUFFERS = ("values", "acts", "preds", "errors", "feedback")

    def __init__(self, sizes, batch: int, dtype):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.batch = int(batch)
        self.dtype = np.dtype(dtype)
        self.s_off = state_offsets(self.sizes, self.batch)
        # One 2-D array, a row per buffer: a compiled step takes all five as one argument. Each row
        # starts on an ALIGNMENT boundary (its length is rounded up; the tail is never read).
        total = aligned_length(self.batch * int(self.sizes.sum()), self.dtype)
        self.state = aligned_zeros((len(self.BUFFERS), total), self.dtype)
        for row, name in enumerate(self.BUFFERS):
            setattr(self, name, self.state[row])

    def layer(self, buffer: str, layer: int) -> np.ndarray:
        start = self.s_off[layer]
        n = self.sizes[layer]
        return getattr(self, buffer)[start:start + self.batch * n].reshape(self.batch, n)

    def layers(self, buffer: str) -> list:
        return [self.layer(buffer, layer) for layer in range(len(self.sizes))]


class ShapedWorkspace(DenseWorkspace):
    """State buffers of a circuit whose populations have shapes, e.g. feature maps ``(C, H, W)``.

    Same flat buffers and offsets as :class:`DenseWorkspace` (``sizes[l] = prod(shapes[l])``), but
    ``layer(name, l)`` returns the view ``(batch, *shapes[l])``; used by the generic (non-dense) path.
    """

    def __init__(self, shapes, batch: int, dtype):
        self.shapes = [tuple(int(n) for n in shape) for shape in shapes]
        super().__init__([int(np.prod(shape)) for shape in self.shapes], batch, dtype)
        self._views = {}
        for name in self.BUFFERS:
            buf = getattr(self, name)
            for layer, shape in enumerate(self.shapes):
                start = int(self.s_off[layer])
                self._views[name, layer] = buf[start:start + self.batch * int(self.sizes[layer])].reshape(
                    (self.batch,) + shape)

    def layer(self, buffer: str, layer: int) -> np.ndarray:
        return self._views[buffer, layer]
