"""numba building blocks of dense predictive-coding circuits (the loops; scalar maths in
:mod:`.scalar`, the loop that runs a schedule in :mod:`.schedule`).

Memory layout (shared with :mod:`neurosim.kernels.reference` through :mod:`neurosim.kernels.layout`):

- ``params`` (1-D): for each layer ``l = 1..L`` the weight ``W_l`` ``(n_l, n_{l-1})`` row-major at
  ``w_off[l]`` and the bias ``b_l`` ``(n_l,)`` at ``b_off[l]``.
- state buffers ``values``, ``acts``, ``preds``, ``errors``, ``feedback`` (1-D): layer ``l``'s block of
  ``(B, n_l)`` starts at ``s_off[l] = B * sum_{k<l} n_k``, so every block is C-contiguous.
  ``values`` holds ``x_l`` (pre-activations), ``acts`` ``phi_l(x_l)`` (``phi_0`` = identity),
  ``preds`` ``mu_l``, ``errors`` ``e_l = x_l - mu_l``, ``feedback`` ``e_{l+1} W_{l+1}``.

Kernels take plain arrays and integers and know nothing of variants. Below ``BLAS_MIN_BATCH`` samples
they use hand-written loops over contiguous weight rows, fusing prediction, error and feedback into a
single pass over each ``W``; from ``BLAS_MIN_BATCH`` on they call BLAS GEMMs through ``np.dot``.

``fastmath`` is enabled without the ``nnan``/``ninf`` flags, so reductions vectorise but non-finite
values are still detected (divergence checks depend on it).
"""
from __future__ import annotations

import numpy as np

from .scalar import FASTMATH, activate, activate_deriv, const, finite, njit
from .views import buffers_fit, matrix

BLAS_MIN_BATCH = 16


# The views are taken on every op of every tick. Built by views.matrix rather than reshape (see
# there) they are small enough for LLVM to inline, and cost about a ns instead of 30 (numba-level
# inlining on top made them no faster and the cold compile 2 s longer).
@njit(cache=True)
def _block(buf, s_off, sizes, batch, layer):
    start = s_off[layer]
    return matrix(buf[start:start + batch * sizes[layer]], batch, sizes[layer])


@njit(cache=True)
def _weight(params, w_off, sizes, layer):
    start = w_off[layer]
    return matrix(params[start:start + sizes[layer] * sizes[layer - 1]], sizes[layer], sizes[layer - 1])


@njit(cache=True)
def _bias(params, b_off, sizes, layer):
    return params[b_off[layer]:b_off[layer] + sizes[layer]]


# Below BLAS_MIN_BATCH, predictions are computed four weight rows at a time: the four sums share
# each load of the presynaptic activity and the feedback pass loads and stores each feedback entry
# once per four rows (measured 1.35-1.6x faster than row by row at batch 1, bench_training.py).
# Every prediction -- feed-forward or recomputed on a tick -- goes through these two functions, so
# a prediction recomputed from unchanged inputs equals the feed-forward value bit for bit.
@njit(cache=True, fastmath=FASTMATH, inline="always")
def _dot_rows4(W, i, a_row, bias):
    """(W[i:i+4] a_row + bias[i:i+4]) as four scalars."""
    s0, s1, s2, s3 = bias[i], bias[i + 1], bias[i + 2], bias[i + 3]
    for j in range(a_row.shape[0]):
        a = a_row[j]
        s0 += W[i, j] * a
        s1 += W[i + 1, j] * a
        s2 += W[i + 2, j] * a
        s3 += W[i + 3, j] * a
    return s0, s1, s2, s3


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _dot_row(W, i, a_row, bias):
    """W[i] a_row + bias[i]."""
    s = bias[i]
    for j in range(a_row.shape[0]):
        s += W[i, j] * a_row[j]
    return s


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _predict_sample(W, flat, bias, a_row, mu_row, track):
    """mu_row = W a_row + bias for one sample (rows in blocks of four); with ``track``, returns
    sum W_ij^2 (taken block by block while the rows are in L1), else 0. ``flat``: ``W`` as the 1-D
    slice it views.

    The squares of a block are one flat loop over its rows (contiguous in ``flat``): a loop per
    row made the tracked feed-forward pass 1.6x slower than the untracked one at 64-128-128-10, the
    flat loop 1.2x. Summing them inside the prediction's own loop would be cheaper still, but it
    changes how LLVM vectorises that loop, and with it the rounding of the prediction, which must
    equal the tick kernels' bit for bit."""
    n_out, n_in = W.shape
    squares = const(0.0, bias[0])
    i = 0
    while i + 4 <= n_out:
        s0, s1, s2, s3 = _dot_rows4(W, i, a_row, bias)
        mu_row[i], mu_row[i + 1], mu_row[i + 2], mu_row[i + 3] = s0, s1, s2, s3
        if track:
            block = flat[i * n_in:(i + 4) * n_in]
            for k in range(block.shape[0]):
                squares += block[k] * block[k]
        i += 4
    while i < n_out:
        mu_row[i] = _dot_row(W, i, a_row, bias)
        if track:
            row = flat[i * n_in:(i + 1) * n_in]
            for k in range(row.shape[0]):
                squares += row[k] * row[k]
        i += 1
    return squares


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _predict_rows(W, Wb, bias, first, stop, a_row, x_row, mu_row, e_row, fb_row, with_feedback):
    """Rows ``first..stop-1`` of one sample (four at a time, then one by one):
    mu_i = W_i a_row + b_i, e_i = x_i - mu_i and, ``with_feedback``, fb_row += e_i Wb_i."""
    n_in = W.shape[1]
    i = first
    while i + 4 <= stop:
        s0, s1, s2, s3 = _dot_rows4(W, i, a_row, bias)
        mu_row[i], mu_row[i + 1], mu_row[i + 2], mu_row[i + 3] = s0, s1, s2, s3
        e0, e1, e2, e3 = x_row[i] - s0, x_row[i + 1] - s1, x_row[i + 2] - s2, x_row[i + 3] - s3
        e_row[i], e_row[i + 1], e_row[i + 2], e_row[i + 3] = e0, e1, e2, e3
        if with_feedback:
            for j in range(n_in):
                fb_row[j] += e0 * Wb[i, j] + e1 * Wb[i + 1, j] + e2 * Wb[i + 2, j] + e3 * Wb[i + 3, j]
        i += 4
    while i < stop:
        s = _dot_row(W, i, a_row, bias)
        mu_row[i] = s
        err = x_row[i] - s
        e_row[i] = err
        if with_feedback:
            for j in range(n_in):
                fb_row[j] += err * Wb[i, j]
        i += 1


@njit(cache=True, fastmath=FASTMATH)
def _predict_layer(params, back, w_off, b_off, s_off, sizes, batch, layer,
                   values, acts, preds, errors, feedback, with_feedback):
    """mu_l = W_l a_{l-1} + b_l; e_l = x_l - mu_l; optionally feedback_{l-1} = e_l B_l (one pass).

    ``back`` holds the feedback matrices ``B_l`` in the layout of ``params`` (biases unused); it is
    ``params`` itself for symmetric feedback (``B_l = W_l``), and then one pass reads each row once.
    """
    W = _weight(params, w_off, sizes, layer)
    Wb = _weight(back, w_off, sizes, layer)
    bias = _bias(params, b_off, sizes, layer)
    a_in = _block(acts, s_off, sizes, batch, layer - 1)
    x = _block(values, s_off, sizes, batch, layer)
    mu = _block(preds, s_off, sizes, batch, layer)
    e = _block(errors, s_off, sizes, batch, layer)
    n_out, n_in = W.shape
    if batch >= BLAS_MIN_BATCH:
        np.dot(a_in, W.T, mu)
        for b in range(batch):
            for i in range(n_out):
                mu[b, i] += bias[i]
                e[b, i] = x[b, i] - mu[b, i]
        if with_feedback:
            fb = _block(feedback, s_off, sizes, batch, layer - 1)
            np.dot(e, Wb, fb)
        return
    if not with_feedback:
        for b in range(batch):
            _predict_sample(W, W[0], bias, a_in[b], mu[b], False)  # untracked: ``flat`` is not read
            for i in range(n_out):
                e[b, i] = x[b, i] - mu[b, i]
        return
    fb = _block(feedback, s_off, sizes, batch, layer - 1)
    fb[:, :] = 0.0
    for b in range(batch):
        _predict_rows(W, Wb, bias, 0, n_out, a_in[b], x[b], mu[b], e[b], fb[b], True)


@njit(cache=True, fastmath=FASTMATH)
def _learn_and_predict_layer(params, back, w_off, b_off, s_off, sizes, batch, layer, rate,
                             values, acts, preds, errors, feedback, with_feedback):
    """``W_l += rate e_l^T a_{l-1}``, ``b_l += rate sum_b e_l`` and then :func:`_predict_layer`,
    in one pass over ``W_l`` (below ``BLAS_MIN_BATCH``): each block of four rows is updated with
    every sample's term (from the errors before the prediction) and then predicts from its new
    values while it is in cache. The same arithmetic as the two ops in turn, row by row."""
    W = _weight(params, w_off, sizes, layer)
    Wb = _weight(back, w_off, sizes, layer)
    bias = _bias(params, b_off, sizes, layer)
    a_in = _block(acts, s_off, sizes, batch, layer - 1)
    x = _block(values, s_off, sizes, batch, layer)
    mu = _block(preds, s_off, sizes, batch, layer)
    e = _block(errors, s_off, sizes, batch, layer)
    n_out, n_in = W.shape
    fb = _block(feedback, s_off, sizes, batch, layer - 1)
    if with_feedback:
        fb[:, :] = 0.0
    i = 0
    while i < n_out:
        stop = min(i + 4, n_out)
        for row in range(i, stop):  # the Hebbian term of these rows, as _hebbian_add forms it
            for b in range(batch):
                coeff = rate * e[b, row]
                for j in range(n_in):
                    W[row, j] += coeff * a_in[b, j]
            total = const(0.0, rate)
            for b in range(batch):
                total += e[b, row]
            bias[row] += rate * total
        for b in range(batch):
            _predict_rows(W, Wb, bias, i, stop, a_in[b], x[b], mu[b], e[b], fb[b], with_feedback)
        i = stop


@njit(cache=True, fastmath=FASTMATH)
def _feedback_layer(back, w_off, s_off, sizes, batch, layer, errors, feedback):
    """feedback_{l-1} = e_l B_l (``back`` laid out like ``params``; ``B_l = W_l`` when it is ``params``)."""
    W = _weight(back, w_off, sizes, layer)
    e = _block(errors, s_off, sizes, batch, layer)
    fb = _block(feedback, s_off, sizes, batch, layer - 1)
    if batch >= BLAS_MIN_BATCH:
        np.dot(e, W, fb)
        return
    n_out, n_in = W.shape
    fb[:, :] = 0.0
    for b in range(batch):
        fb_row = fb[b]
        i = 0
        # Four rows at a time: each feedback entry is loaded and stored once per four rows (as in
        # the fused prediction pass of _predict_layer), not once per row.
        while i + 4 <= n_out:
            e0, e1, e2, e3 = e[b, i], e[b, i + 1], e[b, i + 2], e[b, i + 3]
            for j in range(n_in):
                fb_row[j] += e0 * W[i, j] + e1 * W[i + 1, j] + e2 * W[i + 2, j] + e3 * W[i + 3, j]
            i += 4
        while i < n_out:
            err = e[b, i]
            for j in range(n_in):
                fb_row[j] += err * W[i, j]
            i += 1


@njit(cache=True)
def _first_nonfinite_layer(s_off, sizes, batch, values, errors):
    """The first layer whose values, errors or squared-error sum are not finite (-1 if none).

    The sum matters: a runaway can overflow the energy while every single value is still finite.
    """
    for layer in range(1, sizes.shape[0]):
        start = s_off[layer]
        total = 0.0
        for k in range(start, start + batch * sizes[layer]):
            if not (finite(values[k]) and finite(errors[k])):
                return layer
            total += errors[k] * errors[k]
        if not finite(total):
            return layer
    return -1


@njit(cache=True, fastmath=FASTMATH)
def feedforward(params, w_off, b_off, s_off, sizes, batch, act_code,
                values, acts, preds, errors, feedback):
    """Feed-forward initialisation: x_l = mu_l = W_l phi(x_{l-1}) + b_l, e_l = 0, for l = 1..L.

    The caller has written the input into layer 0 of ``values`` and ``acts``. ``acts`` of the output
    layer holds ``x_L`` itself (the readout is linear); ``feedback`` is zeroed (all errors are 0).
    """
    length = values.shape[0]
    if not (buffers_fit(params, w_off, b_off, s_off, sizes, batch, length, 0, params.shape[0])
            and acts.shape[0] == length and preds.shape[0] == length and errors.shape[0] == length
            and feedback.shape[0] == length):
        raise ValueError("feedforward: a buffer does not fit the circuit's layout (sizes, offsets, batch)")
    _feedforward(params, w_off, b_off, s_off, sizes, batch, act_code, values, acts, preds, errors,
                 feedback, np.empty(0, dtype=np.float64))


@njit(cache=True, fastmath=FASTMATH)
def _feedforward(params, w_off, b_off, s_off, sizes, batch, act_code,
                 values, acts, preds, errors, feedback, param_bound):
    """:func:`feedforward`; if ``param_bound`` has room, also ``param_bound[l] >= max(|W_l|, |b_l|)``.

    The bound is the Frobenius norm ``sqrt(sum W^2 + sum b^2)``: a sum of squares vectorises where
    a running maximum does not (LLVM needs ``nnan`` for that, which the kernels leave out), and it
    is inf -- the safe answer -- if the squares overflow. Below ``BLAS_MIN_BATCH`` it is taken while
    the prediction has the rows in cache; from there on it is one extra read of each ``W_l``, small
    beside the GEMMs.
    """
    n_layers = sizes.shape[0] - 1
    track = param_bound.shape[0] > n_layers
    for layer in range(1, n_layers + 1):
        W = _weight(params, w_off, sizes, layer)
        flat = params[w_off[layer]:w_off[layer] + sizes[layer] * sizes[layer - 1]]
        bias = _bias(params, b_off, sizes, layer)
        a_in = _block(acts, s_off, sizes, batch, layer - 1)
        x = _block(values, s_off, sizes, batch, layer)
        a = _block(acts, s_off, sizes, batch, layer)
        mu = _block(preds, s_off, sizes, batch, layer)
        e = _block(errors, s_off, sizes, batch, layer)
        squares = const(0.0, bias[0])
        # Same summation order as _predict_layer, so recomputed predictions equal x_l bit for bit
        # and hidden errors are exactly 0 at tick 0 (Lemma 1 holds exactly, not to rounding).
        if batch >= BLAS_MIN_BATCH:
            np.dot(a_in, W.T, mu)
            for b in range(batch):
                for i in range(sizes[layer]):
                    mu[b, i] += bias[i]
            if track:
                for i in range(sizes[layer]):
                    for j in range(sizes[layer - 1]):
                        squares += W[i, j] * W[i, j]
        else:
            for b in range(batch):
                squares += _predict_sample(W, flat, bias, a_in[b], mu[b], track and b == 0)
        if track:
            for i in range(sizes[layer]):
                squares += bias[i] * bias[i]
            param_bound[layer] = np.sqrt(np.float64(squares))
        for b in range(batch):
            for i in range(sizes[layer]):
                v = mu[b, i]
                x[b, i] = v
                e[b, i] = 0.0
                a[b, i] = activate(act_code, v) if layer < n_layers else v
    feedback[:] = 0.0


@njit(cache=True, fastmath=FASTMATH)
def backprop_layer(params, w_off, s_off, sizes, batch, act_code, layer, values, errors, feedback):
    """Carry an error one layer down, as BP does: e_l = f'(x_l) * (e_{l+1} W_{l+1}).

    Linear in the errors, so it serves deltas (d = yhat - y) and PC errors (e = -d) alike.
    """
    _feedback_layer(params, w_off, s_off, sizes, batch, layer + 1, errors, feedback)
    x = _block(values, s_off, sizes, batch, layer)
    e = _block(errors, s_off, sizes, batch, layer)
    fb = _block(feedback, s_off, sizes, batch, layer)
    for b in range(batch):
        for i in range(sizes[layer]):
            e[b, i] = activate_deriv(act_code, x[b, i]) * fb[b, i]


# -- a whole training step: inference and the Hebbian SGD update in one call ---------------------
@njit(cache=True, fastmath=FASTMATH)
def _update_bound(s_off, sizes, batch, layer, errors, acts):
    """sum_b ||e_b|| * max(1, ||a_b||) (float64): bounds every |(e_l^T a_{l-1})_ij| and |sum_b e_bi|.

    Norms rather than maxima, so the loops vectorise (see :func:`_feedforward`).
    """
    e = _block(errors, s_off, sizes, batch, layer)
    a_in = _block(acts, s_off, sizes, batch, layer - 1)
    total = 0.0
    for b in range(batch):
        e_squares = 0.0
        for i in range(sizes[layer]):
            e_squares += np.float64(e[b, i]) * np.float64(e[b, i])
        a_squares = 0.0
        for j in range(sizes[layer - 1]):
            a_squares += np.float64(a_in[b, j]) * np.float64(a_in[b, j])
        total += np.sqrt(e_squares) * max(1.0, np.sqrt(a_squares))
    return total


@njit(cache=True, fastmath=FASTMATH)
def _update_stays_finite(params, w_off, b_off, s_off, sizes, batch, layer, rate, errors, acts):
    """Whether every W_l + rate e_l^T a_{l-1} and b_l + rate sum_b e_l is finite (nothing written)."""
    W = _weight(params, w_off, sizes, layer)
    bias = _bias(params, b_off, sizes, layer)
    e = _block(errors, s_off, sizes, batch, layer)
    a_in = _block(acts, s_off, sizes, batch, layer - 1)
    for i in range(sizes[layer]):
        total = bias[i]
        for b in range(batch):
            total += rate * e[b, i]
        if not finite(total):
            return False
        for j in range(sizes[layer - 1]):
            total = W[i, j]
            for b in range(batch):
                total += rate * e[b, i] * a_in[b, j]
            if not finite(total):
                return False
    return True
