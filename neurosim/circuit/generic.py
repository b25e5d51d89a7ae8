"""The ops of :mod:`neurosim.circuit.ops` for every non-dense circuit (conv networks, unrolled
RNNs), layer by layer, and for any circuit under the NumPy backend.

Same functions, arguments and counting as :mod:`neurosim.circuit.ops` (which dispatches here when
``net.is_dense`` is False or ``ns.backends.use("numpy")`` is in force), written on the per-layer view
a network gives of itself:

    net.layer_predict(l, ws)        mu_l = W_l * T_l(phi(x_{l-1})) + b_l             (B, *shape_l)
    net.layer_feedback(l, e_l)      T_l^T(W_l^T * e_l), the VJP of mu_l wrt phi(x_{l-1})  (B, *shape_{l-1})
    net.layer_hebbian(l, e_l, ws, scale, grads)   scale * (local Hebbian term) into grads
    net.layer_macs(l, B)            multiply-accumulates of one of those calls

``ws`` is a :class:`neurosim.kernels.layout.ShapedWorkspace` (or any workspace with the same flat
buffers and ``layer(name, l)`` views). Population ``l``'s activity is ``phi_l(x_l)``: the identity
for the input ``l = 0`` and the linear readout ``l = L``, the network's activation otherwise.

    BP's step   d_l = f'(x_l) * VJP_{l+1}(d_{l+1})

The ticks of every PC variant and of BP run as a schedule (:mod:`neurosim.circuit.schedule`) on the
NumPy backend (:mod:`neurosim.backends.reference`), on the same layer contract.
"""
from __future__ import annotations

from .. import activations, counting
from . import work


def _is_hidden(net, layer: int) -> bool:
    return 0 < layer < net.n_layers


def feedforward(net, ws, x) -> None:
    """Tick 0: clamp the input and set x_l = mu_l for every layer (all errors 0)."""
    ws.layer("values", 0)[...] = x
    ws.layer("acts", 0)[...] = x
    for layer in range(1, net.n_layers + 1):
        ws.layer("preds", layer)[...] = net.layer_predict(layer, ws)
        mu = ws.layer("preds", layer)
        ws.layer("values", layer)[...] = mu
        ws.layer("acts", layer)[...] = activations.apply(net.activation, mu) if _is_hidden(net, layer) else mu
    ws.errors[...] = 0.0
    ws.feedback[...] = 0.0  # = VJP_l(0): every feedback is that of a zero error
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, [work.feedforward(net, ws.batch, l) for l in range(1, net.n_layers + 1)])


def clamp_output(net, ws, y) -> None:
    """Clamp the output value neurons to the target: x_L = y."""
    ws.layer("values", net.n_layers)[...] = y
    ws.layer("acts", net.n_layers)[...] = y


def output_error(net, ws, output, y) -> None:
    """e_L = y - yhat at the output (BP's -d_L)."""
    ws.layer("errors", net.n_layers)[...] = y - output
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, 0, [work.output_error(net, ws.batch)])


def feedback(net, ws, layer: int, tick: int = 0) -> None:
    """feedback_{l-1} = VJP_l(e_l) for one layer, from its current errors."""
    ws.layer("feedback", layer - 1)[...] = net.layer_feedback(layer, ws.layer("errors", layer))
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, [work.feedback(net, ws.batch, layer)])


def backprop_layer(net, ws, layer: int, tick: int) -> None:
    """BP's step down one layer on the error buffer: e_l = f'(x_l) * VJP_{l+1}(e_{l+1})."""
    fb = ws.layer("feedback", layer)
    fb[...] = net.layer_feedback(layer + 1, ws.layer("errors", layer + 1))
    ws.layer("errors", layer)[...] = activations.derivative(net.activation, ws.layer("values", layer)) * fb
    counter = counting.sink()
    if counter is not None:
        work.emit(counter, tick, work.cached(net, ws, ("backprop_layer", layer), lambda: [
            work.feedback(net, ws.batch, layer + 1), work.derivative(net, ws.batch, layer)]))
