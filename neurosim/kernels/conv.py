"""numba kernels for 2-D convolutional synapses (cross-correlation, as ``torch.nn.Conv2d``).

Shapes: presynaptic maps ``x`` ``(B, C, H, W)``, kernel ``w`` ``(O, C, KH, KW)``, bias ``b`` ``(O,)``,
postsynaptic maps ``(B, O, HO, WO)`` with ``HO = (H + 2 p - KH) // s + 1`` (likewise ``WO``), stride
``s``, zero padding ``p``. With ``r(i, u) = i s - p + u`` and ``q(j, v) = j s - p + v``:

    forward:    mu[b, o, i, j] = b[o] + sum_{c,u,v} w[o, c, u, v] x[b, c, r(i,u), q(j,v)]
    transposed: g[b, c, r, q]  = sum_{o,i,j,u,v: r(i,u)=r, q(j,v)=q} e[b, o, i, j] w[o, c, u, v]
    hebbian:    dW[o, c, u, v] = sum_{b,i,j} e[b, o, i, j] x[b, c, r(i,u), q(j,v)],  db[o] = sum e[b, o]

The forward and Hebbian kernels lower the convolution to dot products with the patch matrix
(im2col: one row of ``C KH KW`` presynaptic values per output position, zeros in the padding), so the
inner loops run over contiguous memory; the transposed kernel accumulates each position's patch
gradient and adds it back (col2im), dropping padded taps. Layer ``macs`` count only the taps inside
the input (the circuit's synapses), not the padded zeros the lowering multiplies. The transposed map is the
vector-Jacobian product of the forward one with respect to ``x`` (the error feedback), the hebbian one
its vector-Jacobian product with respect to ``w`` (local: post-synaptic error x pre-synaptic activity).
Each kernel writes into a caller-supplied output (overwritten). NumPy references live in
:mod:`neurosim.kernels.conv_reference`; the test-suite checks every kernel against them.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .dense import FASTMATH


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of one spatial axis: ``(size + 2 padding - kernel) // stride + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def valid_taps(size: int, kernel: int, stride: int, padding: int) -> int:
    """Sum over output positions of the kernel taps that land inside the input (one axis)."""
    total = 0
    for i in range(out_size(size, kernel, stride, padding)):
        start = i * stride - padding
        total += min(start + kernel, size) - max(start, 0)
    return total


@njit(cache=True, fastmath=FASTMATH)
def _im2col(x, kh, kw, stride, padding, ho, wo, cols):
    """cols[(b, i, j), (c, u, v)] = x_pad[b, c, i s + u, j s + v] (0 in the padding)."""
    n_batch, n_in, height, width = x.shape
    row = 0
    for b in range(n_batch):
        for i in range(ho):
            r0 = i * stride - padding
            for j in range(wo):
                q0 = j * stride - padding
                k = 0
                for c in range(n_in):
                    for u in range(kh):
                        r = r0 + u
                        for v in range(kw):
                            q = q0 + v
                            if 0 <= r < height and 0 <= q < width:
                                cols[row, k] = x[b, c, r, q]
                            else:
                                cols[row, k] = 0.0
                            k += 1
                row += 1


@njit(cache=True, fastmath=FASTMATH)
def conv2d_forward(x, weight, bias, stride, padding, out):
    """out = conv2d(x, weight) + bias (cross-correlation); ``out`` ``(B, O, HO, WO)`` is overwritten.

    Lowered to a product with the patch matrix (im2col): ``mu[(b,i,j), o] = cols[(b,i,j), :] . w[o, :]``.
    """
    n_batch, n_in, height, width = x.shape
    n_out, _, kh, kw = weight.shape
    ho, wo = out.shape[2], out.shape[3]
    n_taps = n_in * kh * kw
    cols = np.empty((n_batch * ho * wo, n_taps), dtype=x.dtype)
    _im2col(x, kh, kw, stride, padding, ho, wo, cols)
    w = weight.reshape((n_out, n_taps))
    row = 0
    for b in range(n_batch):
        for i in range(ho):
            for j in range(wo):
                patch = cols[row]
                for o in range(n_out):
                    w_o = w[o]
                    s = 0.0
                    for k in range(n_taps):
                        s += w_o[k] * patch[k]
                    out[b, o, i, j] = s + bias[o]
                row += 1


@njit(cache=True, fastmath=FASTMATH)
def conv2d_transposed(error, weight, stride, padding, out):
    """out = the transposed convolution of ``error`` ``(B, O, HO, WO)``; ``out`` ``(B, C, H, W)``.

    ``dcols[(b,i,j), :] = sum_o e[b,o,i,j] w[o, :]``, then every patch entry is added back where it
    was taken from (col2im); taps in the padding are dropped.
    """
    n_batch, n_out, ho, wo = error.shape
    _, n_in, kh, kw = weight.shape
    height, width = out.shape[2], out.shape[3]
    n_taps = n_in * kh * kw
    w = weight.reshape((n_out, n_taps))
    dcol = np.empty(n_taps, dtype=out.dtype)
    out[...] = 0.0
    for b in range(n_batch):
        for i in range(ho):
            r0 = i * stride - padding
            for j in range(wo):
                q0 = j * stride - padding
                dcol[:] = 0.0
                for o in range(n_out):
                    err = error[b, o, i, j]
                    if err == 0.0:
                        continue  # an error neuron at rest sends nothing
                    w_o = w[o]
                    for k in range(n_taps):
                        dcol[k] += err * w_o[k]
                k = 0
                for c in range(n_in):
                    for u in range(kh):
                        r = r0 + u
                        for v in range(kw):
                            q = q0 + v
                            if 0 <= r < height and 0 <= q < width:
                                out[b, c, r, q] += dcol[k]
                            k += 1


@njit(cache=True, fastmath=FASTMATH)
def conv2d_hebbian(error, x, stride, padding, grad_weight, grad_bias):
    """grad_weight[o,c,u,v] = sum_{b,i,j} e[b,o,i,j] x[b,c,r,q]; grad_bias[o] = sum e[b,o] (overwrite).

    ``dW[o, :] = sum_{(b,i,j)} e[b,o,i,j] cols[(b,i,j), :]`` on the patch matrix (im2col).
    """
    n_batch, n_out, ho, wo = error.shape
    _, n_in, height, width = x.shape
    kh, kw = grad_weight.shape[2], grad_weight.shape[3]
    n_taps = n_in * kh * kw
    cols = np.empty((n_batch * ho * wo, n_taps), dtype=x.dtype)
    _im2col(x, kh, kw, stride, padding, ho, wo, cols)
    gw = np.zeros((n_out, n_taps), dtype=grad_weight.dtype)
    grad_bias[...] = 0.0
    row = 0
    for b in range(n_batch):
        for i in range(ho):
            for j in range(wo):
                patch = cols[row]
                for o in range(n_out):
                    err = error[b, o, i, j]
                    grad_bias[o] += err
                    if err == 0.0:
                        continue
                    g_o = gw[o]
                    for k in range(n_taps):
                        g_o[k] += err * patch[k]
                row += 1
    grad_weight[...] = gw.reshape(grad_weight.shape)
