"""Single circuit operations outside a schedule, each counted where it runs: the feed-forward
initialisation and clamp every step starts from (where the compiled step does not do it itself), and
the output delta, feedback and BP step that COPI's NumPy code composes.

Each function runs one kernel of :mod:`neurosim.kernels.dense` on a network and its workspace, then
reports to the active :class:`neurosim.counting.Counter` what that kernel did. Networks that are not a
plain dense chain, and any network under the NumPy backend, run the same functions from
:mod:`neurosim.circuit.generic`, through the layer contract. The PC variants' ticks are schedules
(:mod:`neurosim.circuit.schedule`).
"""
from __future__ import annotations

import numpy as np

from .. import backends, counting
from ..kernels import dense
from . import generic, work


def _generic(net, back=None) -> bool:
    """Whether the layer-contract path runs this op: a non-dense network, or the NumPy reference
    backend (:mod:`neurosim.backends`). A ValueError when that path lacks what was asked for."""
    if net.is_dense and not backends.is_reference():
        return False
    if back is not None:
        where = "the numpy backend" if net.is_dense else "a non-dense network"
        raise ValueError(f"separate feedback matrices (feedback='random' or 'learned') are not provided "
                         f"by {where} for this op; use the numba backend on a dense network")
    return True


def feedforward(net, ws, x) -> None:
    """Tick 0: clamp the input and set x_l = mu_l for every layer (all errors 0)."""
    if _generic(net):
        return generic.feedforward(net, ws, x)
    ws.layer("values", 0)[...] = x
    ws.layer("acts", 0)[...] = x
    dense.feedforward(net.params, net.w_off, net.b_off, ws.s_off, ws.sizes, ws.batch, net.act_code,
                      ws.values, ws.acts, ws.preds, ws.errors, ws.feedback)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, work.cached(net, ws, ("feedforward",), lambda: [
            work.feedforward(net, ws.batch, l) for l in range(1, net.n_layers + 1)]))


def _check_fit(net, ws) -> None:
    """The kernels take unchecked views of the buffers (``kernels/views.py``): a workspace made for
    another network is refused here."""
    if not np.array_equal(ws.sizes, net.sizes) or ws.values.shape[0] < ws.batch * int(net.sizes.sum()):
        raise ValueError(f"workspace of sizes {list(ws.sizes)} does not fit a network of sizes {list(net.sizes)}")


def _back(net, back):
    """The feedback matrices to use: ``back``, or the weights themselves (symmetric feedback)."""
    if back is None:
        return net.params
    if back.shape != net.params.shape or back.dtype != net.params.dtype:
        raise ValueError(f"back must be laid out like net.params {net.params.shape} {net.params.dtype}, "
                         f"got {back.shape} {back.dtype}")
    return back


def clamp_output(net, ws, y) -> None:
    """Clamp the output value neurons to the target: x_L = y."""
    if _generic(net):
        return generic.clamp_output(net, ws, y)
    ws.layer("values", net.n_layers)[...] = y
    ws.layer("acts", net.n_layers)[...] = y


def output_error(net, ws, output, y) -> None:
    """e_L = y - yhat at the output (BP's -d_L), without recomputing the prediction."""
    if _generic(net):
        return generic.output_error(net, ws, output, y)
    ws.layer("errors", net.n_layers)[...] = y - output
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, work.cached(net, ws, ("output_error",), lambda: [work.output_error(net, ws.batch)]))


def feedback(net, ws, layer: int, tick: int = 0, back=None) -> None:
    """feedback_{l-1} = e_l W_l for one layer (l >= 2), from its current errors.

    ``back``: feedback matrices ``B_l`` laid out like ``net.params`` (dense networks; ``None``:
    ``B = W``), here and in the other ops that carry errors down.
    """
    if _generic(net, back):
        return generic.feedback(net, ws, layer, tick)
    _check_fit(net, ws)
    dense._feedback_layer(_back(net, back), net.w_off, ws.s_off, ws.sizes, ws.batch, layer, ws.errors,
                          ws.feedback)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, work.cached(net, ws, ("feedback", layer), lambda: [work.feedback(net, ws.batch, layer)]))


def backprop_layer(net, ws, layer: int, tick: int) -> None:
    """BP's step down one layer on the error buffer: e_l = f'(x_l) * (e_{l+1} W_{l+1})."""
    if _generic(net):
        return generic.backprop_layer(net, ws, layer, tick)
    _check_fit(net, ws)
    dense.backprop_layer(net.params, net.w_off, ws.s_off, ws.sizes, ws.batch, net.act_code, layer,
                         ws.values, ws.errors, ws.feedback)
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, [work.feedback(net, ws.batch, layer + 1), work.derivative(net, ws.batch, layer)])


# -- Z-IL's event-driven wavefront ------------------------------------------------------------------
