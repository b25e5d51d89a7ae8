"""Plain-NumPy references of the convolution kernels in :mod:`neurosim.kernels.conv`.

Same equations (see that module), written with an explicit zero-padded copy of the input and a
strided window view (im2col without the copy) so they read as the textbook definitions. Each returns
a new array.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _windows(x, kh, kw, stride, padding):
    """(B, C, HO, WO, KH, KW): the input patch under every output position."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def conv2d_forward(x, weight, bias, stride, padding):
    """mu[b,o,i,j] = bias[o] + sum_{c,u,v} w[o,c,u,v] x_pad[b,c,i s+u,j s+v]."""
    patches = _windows(x, weight.shape[2], weight.shape[3], stride, padding)
    return np.einsum("bcijuv,ocuv->boij", patches, weight) + bias[None, :, None, None]


def conv2d_transposed(error, weight, stride, padding, in_hw):
    """The VJP of the forward map wrt x: scatter every error back through its kernel taps."""
    n_batch, _, ho, wo = error.shape
    _, n_in, kh, kw = weight.shape
    height, width = in_hw
    hp, wp = height + 2 * padding, width + 2 * padding
    out = np.zeros((n_batch, n_in, hp, wp), dtype=error.dtype)
    for u in range(kh):
        for v in range(kw):
            out[:, :, u:u + stride * (ho - 1) + 1:stride, v:v + stride * (wo - 1) + 1:stride] += \
                np.einsum("boij,oc->bcij", error, weight[:, :, u, v])
    return out[:, :, padding:padding + height, padding:padding + width]


def conv2d_hebbian(error, x, kernel_hw, stride, padding):
    """(dW, db): dW[o,c,u,v] = sum_{b,i,j} e[b,o,i,j] x_pad[b,c,i s+u,j s+v], db[o] = sum e[b,o]."""
    patches = _windows(x, kernel_hw[0], kernel_hw[1], stride, padding)
    return np.einsum("boij,bcijuv->ocuv", error, patches), error.sum(axis=(0, 2, 3))
