"""The NumPy reference backend: a schedule's ops on the layer contract, written to be read.

Runs the ops of :mod:`neurosim.circuit.schedule` on any network (dense, convolutional, unrolled
recurrent) through ``net.layer_predict``, ``net.layer_feedback`` and ``net.layer_hebbian`` on the
workspace views ``ws.layer(name, l)`` (shaped ``(B, *shape_l)``). The compiled counterpart for dense
circuits is :func:`neurosim.kernels.schedule.run_schedule`; the conformance suite holds them equal.

Working parameters (``learn`` moves them, as iPC does) are swapped into ``net.params`` for the
duration of a call and swapped out again, so the network's own parameters are never changed.

With send-on-delta events (:mod:`neurosim.events`) ``predict`` and ``feedback`` pass on only the
changes that cross the threshold: the receiver adds ``net.layer_transmit(l, delta)`` to ``mu_l`` (or
``net.layer_feedback(l, delta)`` to ``fb_{l-1}``), with every non-sender's delta set to 0. This is
the model written plainly (its cost does not follow the events); the compiled loop reads only the
senders' synapse rows (:mod:`neurosim.kernels.events`).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .. import activations


def _presynaptic_norm(ws, layer, eps, bias=1.0, batch_mean=True) -> float:
    a = ws.layer("acts", layer - 1)
    total = float(np.sum(a.astype(np.float64) ** 2))
    return (total / ws.batch if batch_mean else total) + bias + eps


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


def _view(ws, flat, layer):
    """Layer ``layer`` of a flat buffer laid out like the workspace's, shaped like its ``acts``."""
    start = int(ws.s_off[layer])
    shape = ws.layer("acts", layer).shape
    return flat[start:start + int(np.prod(shape))].reshape(shape)


@contextmanager
def _received(ws, sent, layer):
    """Inside the block, ``acts`` of ``layer`` holds what its synapses received (``sent``)."""
    if sent is None:
        yield
        return
    acts = ws.layer("acts", layer)
    saved = acts.copy()
    acts[...] = _view(ws, sent[0], layer)
    try:
        yield
    finally:
        acts[...] = saved


def _send(now, sent, threshold, relative):
    """The deltas the neurons send (0 where they stay silent) and how many sent; ``sent`` updated."""
    change = now - sent
    bar = threshold * np.abs(sent) if relative else threshold
    active = np.abs(change) > bar
    sent[active] = now[active]
    return np.where(active, change, 0.0).astype(now.dtype, copy=False), int(np.count_nonzero(active))


def _predict_events(net, ws, layer, events, row):
    settings, sent, _, messages, stale, _, _, _ = events
    mu = ws.layer("preds", layer)
    if stale[layer, 0]:  # the synapses changed: recompute from what was received
        with _received(ws, sent, layer - 1):
            mu[...] = net.layer_predict(layer, ws)
        stale[layer, 0] = 0
        messages[row, 2] = 1
    delta, count = _send(ws.layer("acts", layer - 1), _view(ws, sent[0], layer - 1), settings[0], settings[1] != 0)
    messages[row, 0] = count
    if count:
        mu += net.layer_transmit(layer, delta)
    np.subtract(ws.layer("values", layer), mu, out=ws.layer("errors", layer))


def _feedback_events(net, ws, layer, back, events, row):
    settings, sent, _, messages, stale, _, _, _ = events
    fb = ws.layer("feedback", layer - 1)
    sent_errors = _view(ws, sent[1], layer)
    if stale[layer, 1]:
        fb[...] = _transmit_down(net, layer, sent_errors, back)
        stale[layer, 1] = 0
        messages[row, 3] = 1
    delta, count = _send(ws.layer("errors", layer), sent_errors, settings[0], settings[1] != 0)
    messages[row, 1] = count
    if count:
        fb += _transmit_down(net, layer, delta, back)


def _transmit_down(net, layer, error, back):
    return net.layer_feedback(layer, error) if back is None else error @ back[layer - 1]


def run(run_state, first: int, last: int) -> tuple:
    """Run ticks ``first..last`` of ``run_state.schedule`` (see :class:`neurosim.circuit.schedule.Run`).

    Returns ``(tick, layer)`` of the first tick whose energy is not finite, else ``(-1, -1)``.
    """
    net, ws, schedule = run_state.net, run_state.ws, run_state.schedule
    back = run_state.back_matrices
    events = run_state._event_buffers
    sent = None if events is None else events[1]
    tick_start = schedule.encoded()[2]
    with _swapped(net, run_state.params), np.errstate(over="ignore", invalid="ignore"):
        for tick in range(first, last + 1):
            for index, op in enumerate(schedule.ticks[tick]):
                layer = op.layer
                row = int(tick_start[tick]) + index
                if op.name == "predict" and events is not None:
                    _predict_events(net, ws, layer, events, row)
                    if op.flag and layer >= 2:
                        _feedback_events(net, ws, layer, back, events, row)
                elif op.name == "feedback" and events is not None:
                    _feedback_events(net, ws, layer, back, events, row)
                elif op.name == "predict":
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
                        x += op.value * (-op.gain * ws.layer("errors", layer) + drive)
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
                    with _received(ws, sent, layer - 1):
                        scale = op.value / ws.batch / (_presynaptic_norm(ws, layer, op.eps) if op.flag else 1.0)
                        run_state.grads += _hebbian(net, ws, layer, scale)
                elif op.name == "learn":
                    with _received(ws, sent, layer - 1):
                        change = _hebbian(net, ws, layer, 1.0 / ws.batch)
                    net.params[...] += op.value * change
                    run_state.grads -= change
                    if events is not None:  # the receivers of W_l hold inputs formed with the old synapses
                        events[4][layer] = 1
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
    if op.blend == 3:  # keep x_L, re-form the error against the new prediction
        np.subtract(ws.layer("values", L), predicted, out=ws.layer("errors", L))
        return
    if op.blend == 0:
        blended = (1.0 - op.value) * target + op.value * predicted
    else:
        weight = op.value * _presynaptic_norm(ws, L, op.eps, op.gain, op.blend == 1)
        blended = (predicted + weight * target) / (1.0 + weight)
    ws.layer("values", L)[...] = blended
    ws.layer("acts", L)[...] = blended
    np.subtract(ws.layer("values", L), predicted, out=ws.layer("errors", L))
