"""The NumPy reference backend: a schedule's ops on the layer contract, written to be read.

Runs the ops of :mod:`neurosim.circuit.schedule` on any network (dense, convolutional, unrolled
recurrent) through ``net.layer_predict``, ``net.layer_feedback`` and ``net.layer_hebbian`` on the
workspace views ``ws.layer(name, l)`` (shaped ``(B, *shape_l)``). The compiled counterpart for dense
circuits is :func:`neurosim.kernels.schedule.run_schedule`; the conformance suite holds them equal.

Working parameters (``learn`` moves them, as iPC does) are swapped into ``net.params`` for the
duration of a call and swapped out again, so the network's own parameters are never changed.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .. import activations


def _presynaptic_norm(ws, layer, eps) -> float:
    a = ws.layer("acts", layer - 1)
    return float(np.sum(a.astype(np.float64) ** 2) / ws.batch) + 1.0 + eps


def _softmax(z):
    flat = z.reshape(z.shape[0], -1)
    shifted = flat - flat.max(axis=1, keepdims=True)
    ez = np.exp(shifted)
    return (ez / ez.sum(axis=1, keepdims=True)).reshape(z.shape)


def energy(net, ws, output: str) -> float:
    """1/2 sum_{l<L} ||e_l||^2 plus the output term ("mse": 1/2 ||e_L||^2; "ce": cross-entropy of
    softmax(mu_L) against x_L), batch mean, in float64."""
    L = net.n_layers
    total = 0.0
    for layer in range(1, L + (output == "mse")):
        e = ws.layer("errors", layer).astype(np.float64)
        total += 0.5 * float(np.sum(e * e))
    if output == "ce":
        mu = ws.layer("preds", L).astype(np.float64).reshape(ws.batch, -1)
        shifted = mu - mu.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        total -= float(np.sum(ws.layer("values", L).astype(np.float64).reshape(ws.batch, -1) * log_p))
    return total / ws.batch


@contextmanager
def _swapped(net, params):
    """``net.params`` holds ``params`` inside the block; ``params`` gets what the block left there."""
    if params is net.params:
        yield
        return
    saved = net.params.copy()
    net.params[...] = params
    try:
        yield
    finally:
        params[...] = net.params
        net.params[...] = saved


def _hebbian(net, ws, layer, scale):
    """scale * (e_l^T T_l(a_{l-1}), sum_b e_l) as a flat array shaped like params."""
    out = np.zeros_like(net.params)
    net.layer_hebbian(layer, ws.layer("errors", layer), ws, scale, out)
    return out


def _first_nonfinite_layer(net, ws) -> int:
    for layer in range(1, net.n_layers + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            values, errors = ws.layer("values", layer), ws.layer("errors", layer)
            if not (np.all(np.isfinite(values)) and np.all(np.isfinite(errors))
                    and np.isfinite(np.sum(errors.astype(np.float64) ** 2))):
                return layer
    return -1


def run(run_state, first: int, last: int) -> tuple:
    """Run ticks ``first..last`` of ``run_state.schedule`` (see :class:`neurosim.circuit.schedule.Run`).

    Returns ``(tick, layer)`` of the first tick whose energy is not finite, else ``(-1, -1)``.
    """
    net, ws, schedule = run_state.net, run_state.ws, run_state.schedule
    back = run_state.back_matrices
    with _swapped(net, run_state.params), np.errstate(over="ignore", invalid="ignore"):
        for tick in range(first, last + 1):
            for op in schedule.ticks[tick]:
                layer = op.layer
                if op.name == "predict":
                    mu = ws.layer("preds", layer)
                    mu[...] = net.layer_predict(layer, ws)
                    np.subtract(ws.layer("values", layer), mu, out=ws.layer("errors", layer))
                    if op.flag and layer >= 2:
                        _feedback(net, ws, layer, back)
                elif op.name == "error":
                    np.subtract(ws.layer("values", layer), ws.layer("preds", layer), out=ws.layer("errors", layer))
                elif op.name == "feedback":
                    _feedback(net, ws, layer, back)
                elif op.name == "relax":
                    x = ws.layer("values", layer)
                    drive = activations.derivative(net.activation, x) * ws.layer("feedback", layer)
                    if op.flag:  # from a zero error; a_l is read by nothing downstream
                        x += op.value * drive
                    else:
                        x += op.value * (-ws.layer("errors", layer) + drive)
                        ws.layer("acts", layer)[...] = activations.apply(net.activation, x)
                elif op.name == "delta":
                    np.multiply(activations.derivative(net.activation, ws.layer("values", layer)),
                                ws.layer("feedback", layer), out=ws.layer("errors", layer))
                elif op.name == "reset":
                    ws.layer("values", layer)[...] = op.value
                    ws.layer("acts", layer)[...] = activations.apply(net.activation, ws.layer("values", layer))
                elif op.name == "relax_fixed":
                    x = ws.layer("values", layer)
                    gain = activations.derivative(net.activation, ws.layer("preds", layer))
                    x += op.value * (-ws.layer("errors", layer) + gain * ws.layer("feedback", layer))
                elif op.name == "hebbian":
                    scale = op.value / ws.batch / (_presynaptic_norm(ws, layer, op.eps) if op.flag else 1.0)
                    run_state.grads += _hebbian(net, ws, layer, scale)
                elif op.name == "learn":
                    change = _hebbian(net, ws, layer, 1.0 / ws.batch)
                    net.params[...] += op.value * change
                    run_state.grads -= change
                elif op.name == "soft_target":
                    _soft_target(net, ws, op, run_state.target)
                elif op.name == "energy":
                    value = energy(net, ws, schedule.output)
                    run_state.energies[tick] = value
                    if not np.isfinite(value):
                        return tick, _first_nonfinite_layer(net, ws)
    return -1, -1


def _feedback(net, ws, layer, back):
    error = ws.layer("errors", layer)
    if back is None:
        ws.layer("feedback", layer - 1)[...] = net.layer_feedback(layer, error)
    else:
        ws.layer("feedback", layer - 1)[...] = error @ back[layer - 1]


def _soft_target(net, ws, op, target):
    L = net.n_layers
    mu = ws.layer("preds", L)
    predicted = mu if op.flag == 0 else _softmax(mu)
    if op.blend == 0:
        blended = (1.0 - op.value) * target + op.value * predicted
    else:
        weight = op.value * _presynaptic_norm(ws, L, op.eps)
        blended = (predicted + weight * target) / (1.0 + weight)
    ws.layer("values", L)[...] = blended
    ws.layer("acts", L)[...] = blended
    np.subtract(ws.layer("values", L), predicted, out=ws.layer("errors", L))
