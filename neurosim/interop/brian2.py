"""The same rate-based predictive-coding circuit, simulated by Brian2.

A second, independent simulator of the circuit neurosim runs: every population is a Brian2
``NeuronGroup`` and every connection a ``Synapses`` object whose summed variables carry the
predictions and the feedback, stepped by Brian2's clock with ``dt`` = one tick on its runtime
``numpy`` target (no compiler needed). Nothing of neurosim's kernels is used: the weights are copied
into the synapses and Brian2 does the arithmetic.

    trace = neurosim.interop.brian2.run(net, ns.variant("il", T=20), x, y)
    trace.energy, trace.values[l], trace.errors[l]     # as ns.Simulator(...).run(x, y)

The circuit, for a dense network of ``L`` layers and a batch of ``B`` samples (each sample its own
copy of every population, so a group holds ``B * n_l`` neurons, sample-major):

| Brian2 object | neurosim | variables |
|---|---|---|
| ``value[l]`` (``NeuronGroup``) | the value neurons ``x_l`` | ``x``, ``phi`` = phi(x), ``fb``, ``error`` (summed in) |
| ``error[l]`` (``NeuronGroup``) | the error neurons ``e_l`` | ``err``, ``mu`` and ``value`` (summed in), ``b`` |
| ``W[l]`` (``Synapses``) | ``value[l-1] -> error[l]`` | ``mu_post = w * phi_pre (summed)`` |
| ``W[l]^T`` (``Synapses``) | ``error[l] -> value[l-1]`` | ``fb_post = w * err_pre (summed)`` |
| one-to-one ``Synapses`` | ``value[l] <-> error[l]`` | ``value_post = x_pre``, ``error_post = err_pre`` |

``value[0]`` holds the input and ``value[L]`` the target ``y``, both fixed. Each Brian2 time step is
one tick of the variant, from the previous tick's state (``when``/``order`` fix the phases):

1. ``start``: hidden value neurons relax, ``x += gamma * (-e_l + f'(x) * fb)`` (``fb = e_{l+1}
   W_{l+1}``), then ``phi = f(x)``; on the first step (tick 0) they hold their feed-forward values;
2. ``groups``: the predictions ``mu_l = sum w phi_pre`` reach the error neurons, which compute
   ``e_l = x_l - mu_l - b_l``; then ``e_{l+1} W_{l+1}`` and ``e_l`` reach the value neurons.

FPA (Millidge et al. 2020) freezes the predictions and the gains at their feed-forward values;
Z-IL is IL with ``gamma = 1`` and ``T = L - 1``, each layer's Hebbian term taken at tick ``L - l``.
The feed-forward initialisation (tick 0) is computed here in NumPy from the copied weights; from
there Brian2 runs every tick. The Hebbian terms are read from Brian2's recorded trajectory:
``dW_l = -(1/B) e_l(t_l)^T phi(x_{l-1}(t_l))`` as a loss gradient, ``t_l = T`` (Z-IL: ``L - l``;
FPA: the feed-forward ``phi``).

Not expressed: SeqIL (its top-down sweep updates layers one after another within a tick), iPC,
IL-prox and the solvers (they change weights or targets inside a step), non-symmetric feedback,
convolutional and recurrent networks: these raise ``ValueError``.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .. import activations
from ..circuit.network import Network
from ..simulator import Trace
from ..variants.base import Variant

SUPPORTED = ("il", "fpa", "zil")
# f(x) and f'(x) as Brian2 expressions of x
_BRIAN_ACTIVATIONS = {
    "linear": ("x", "1.0"),
    "tanh": ("tanh(x)", "1.0 - tanh(x)**2"),
    "sigmoid": ("1.0 / (1.0 + exp(-x))", "exp(-x) / (1.0 + exp(-x))**2"),
    "relu": ("x * int(x > 0)", "1.0 * int(x > 0)"),
    **{name: (f"x * int(x > 0) + {slope!r} * x * int(x <= 0)", f"1.0 * int(x > 0) + {slope!r} * int(x <= 0)")
       for name, slope in activations.LEAKY_SLOPES.items()},
}


@contextmanager
def _quiet():
    """Brian2 2.9 parses equations with pyparsing calls that pyparsing 3.3 deprecates: nothing a
    user can act on, so its deprecation warnings are silenced while Brian2 builds and runs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def _import():
    try:
        with _quiet():
            import brian2
    except ImportError:  # pragma: no cover - brian2 is a core dependency
        raise ImportError("the Brian2 circuit needs brian2: pip install \"brian2>=2.9\"") from None
    return brian2


def check(net, variant) -> None:
    """Raise ``ValueError`` saying what Brian2 cannot express for ``net`` under ``variant``."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a neurosim Network, got {type(net).__name__}")
    if not isinstance(variant, Variant):
        raise TypeError(f"variant must come from neurosim.variant(...), got {type(variant).__name__}")
    if variant.name not in SUPPORTED:
        why = {"seqil": "its top-down sweep updates the layers one after another within a tick",
               "bp": "it has no relaxation to simulate"}.get(variant.name, "it changes weights, targets or "
                                                                          "runs a solver within a step")
        raise ValueError(f"the Brian2 circuit runs {', '.join(SUPPORTED)}; not {variant.name!r}: {why}")
    if not getattr(net, "is_dense", False):
        raise ValueError("the Brian2 circuit runs dense networks (ns.mlp); convolutional and recurrent "
                         "networks are not expressed")
    if variant.hyper.get("feedback", "symmetric") != "symmetric":
        raise ValueError(f"the Brian2 circuit runs symmetric feedback; not feedback="
                         f"{variant.hyper['feedback']!r}")
    if net.activation not in _BRIAN_ACTIVATIONS:  # pragma: no cover - every neurosim activation is listed
        raise ValueError(f"activation {net.activation!r} has no Brian2 expression")


@dataclass
class Circuit:
    """The Brian2 objects of one step: ``network`` (a ``brian2.Network``), ``values[l]`` and
    ``errors[l]`` (``NeuronGroup``), ``synapses`` (by name), ``monitors`` (``StateMonitor`` by group
    name), and what the step needs to be read back (``ticks``, ``batch``, ``sizes``, ``schedule``)."""

    network: object
    values: list
    errors: list
    synapses: dict
    monitors: dict
    ticks: int
    batch: int
    sizes: list
    hebbian_ticks: list
    gamma: float
    variant: str


def _feedforward(net, x) -> list:
    """Pre-activations ``x_l`` of the feed-forward sweep, in NumPy from the weights (tick 0)."""
    f = activations._FUNCTIONS[net.activation][0]
    values = [np.asarray(x, dtype=np.float64)]
    for layer in range(1, net.n_layers + 1):
        below = values[-1] if layer == 1 else f(values[-1])
        values.append(below @ np.asarray(net.weights[layer - 1], np.float64).T
                      + np.asarray(net.biases[layer - 1], np.float64))
    return values


def build(net, variant, x, y) -> Circuit:
    """The Brian2 circuit of one training step of ``variant`` on ``(x, y)`` (see the module docstring);
    not yet run. ``x``: ``(B, n_0)``, ``y``: ``(B, n_L)``."""
    check(net, variant)
    x = net.check_input(x, "x")
    y = net.check_target(y, x.shape[0], "y")
    with _quiet():
        return _build(net, variant, x, y)


def _build(net, variant, x, y) -> Circuit:
    brian2 = _import()
    batch, sizes, n_layers = x.shape[0], [int(s) for s in net.sizes], net.n_layers
    ticks = variant.n_ticks(net)
    gamma = float(variant.hyper["gamma"])
    frozen = variant.name == "fpa"
    f_expr, df_expr = _BRIAN_ACTIVATIONS[net.activation]
    feedforward = _feedforward(net, x)
    clock = brian2.Clock(dt=1 * brian2.ms, name="tick")
    relaxing = brian2.TimedArray(np.r_[0.0, np.ones(ticks)], dt=1 * brian2.ms, name="relaxing")
    values, errors, objects, synapses, monitors = [], [None], [], {}, {}
    for layer in range(n_layers + 1):
        n = sizes[layer] * batch
        hidden = 0 < layer < n_layers
        if hidden:
            gain = "g" if frozen else f"({df_expr})"
            model = ["x : 1", "phi : 1", "g : 1", "fb : 1", "error : 1"]
            group = brian2.NeuronGroup(n, "\n".join(model), clock=clock, order=10, name=f"value_{layer}",
                                       namespace={"gamma": gamma, "relaxing": relaxing})
            group.run_regularly(f"x = x + relaxing(t) * gamma * (-error + {gain} * fb)\nphi = {f_expr}",
                                when="start", order=0, name=f"relax_{layer}")
        else:
            group = brian2.NeuronGroup(n, "x : 1\nphi : 1", clock=clock, order=10, name=f"value_{layer}")
        state = (feedforward[layer] if layer < n_layers else y).reshape(-1)
        group.x = state
        if layer == 0:
            group.phi = state  # phi_0 is the identity: the input is sent as it is
        elif hidden:
            group.phi = activations.apply(net.activation, feedforward[layer]).reshape(-1)
            group.g = activations.derivative(net.activation, feedforward[layer]).reshape(-1)
        values.append(group)
        objects.append(group)
    for layer in range(1, n_layers + 1):
        n = sizes[layer] * batch
        model = "err : 1\nmu : 1\nvalue : 1\nb : 1\nmu_fixed : 1"
        group = brian2.NeuronGroup(n, model, clock=clock, order=0, name=f"error_{layer}")
        group.b = np.tile(np.asarray(net.biases[layer - 1], np.float64), batch)
        group.mu_fixed = feedforward[layer].reshape(-1)  # FPA: the frozen feed-forward prediction
        prediction = "mu_fixed" if frozen else "(mu + b)"
        group.run_regularly(f"err = value - {prediction}", when="groups", order=0, name=f"error_update_{layer}")
        errors.append(group)
        objects.append(group)
    for layer in range(1, n_layers + 1):
        weights = np.asarray(net.weights[layer - 1], np.float64)  # (n_l, n_{l-1})
        n_out, n_in = weights.shape
        sample, post, pre = np.meshgrid(np.arange(batch), np.arange(n_out), np.arange(n_in), indexing="ij")
        pre_index = (sample * n_in + pre).reshape(-1)
        post_index = (sample * n_out + post).reshape(-1)
        w = np.broadcast_to(weights, (batch, n_out, n_in)).reshape(-1)
        up = brian2.Synapses(values[layer - 1], errors[layer], "w : 1\nmu_post = w * phi_pre : 1 (summed)",
                             clock=clock, name=f"W_{layer}")
        up.connect(i=pre_index, j=post_index)
        up.w = w
        synapses[f"W[{layer}]"] = up
        objects.append(up)
        wire = brian2.Synapses(values[layer], errors[layer], "value_post = x_pre : 1 (summed)", clock=clock,
                               name=f"value_to_error_{layer}")
        wire.connect(j="i")
        synapses[f"value[{layer}]->error[{layer}]"] = wire
        objects.append(wire)
        if layer < n_layers:
            back = brian2.Synapses(errors[layer], values[layer], "error_post = err_pre : 1 (summed)", clock=clock,
                                   name=f"error_to_value_{layer}")
            back.connect(j="i")
            synapses[f"error[{layer}]->value[{layer}]"] = back
            objects.append(back)
        if layer >= 2:
            down = brian2.Synapses(errors[layer], values[layer - 1], "w : 1\nfb_post = w * err_pre : 1 (summed)",
                                   clock=clock, name=f"W_{layer}_T")
            down.connect(i=post_index, j=pre_index)
            down.w = w
            synapses[f"W[{layer}]^T"] = down
            objects.append(down)
    for layer in range(1, n_layers + 1):
        monitors[f"value[{layer}]"] = brian2.StateMonitor(values[layer], ("x", "phi"), record=True, when="end",
                                                          name=f"monitor_value_{layer}")
        monitors[f"error[{layer}]"] = brian2.StateMonitor(errors[layer], ("err", "mu"), record=True, when="end",
                                                          name=f"monitor_error_{layer}")
    objects.extend(monitors.values())
    if variant.name == "zil":
        hebbian = [n_layers - layer for layer in range(1, n_layers + 1)]
    else:
        hebbian = [ticks] * n_layers
    network = brian2.Network(*objects)
    for obj in network.objects:
        # claim them for this network now (Brian2 does so at the first run), so a circuit built and
        # dropped unrun is not reported as objects "never included in a network"
        obj._network = network.id
    return Circuit(network, values, errors, synapses, monitors, ticks, batch, sizes, hebbian, gamma, variant.name)


def run(net, variant, x, y) -> Trace:
    """Build the circuit (:func:`build`), run its ``T + 1`` ticks in Brian2 and return a
    :class:`neurosim.Trace` with ``energy``, ``values``, ``errors``, ``predictions``, ``grads`` and
    ``loss`` laid out as :meth:`neurosim.Simulator.run`'s."""
    brian2 = _import()
    circuit = build(net, variant, x, y)
    previous = brian2.prefs.codegen.target
    brian2.prefs.codegen.target = "numpy"  # Brian2's runtime target: no compiler needed
    try:
        with _quiet():
            circuit.network.run((circuit.ticks + 1) * brian2.ms, namespace={})
    finally:
        brian2.prefs.codegen.target = previous
    return _trace(net, circuit, np.asarray(x, np.float64), np.asarray(y, np.float64))


def _series(monitor, variable, batch, size) -> np.ndarray:
    """A monitor's ``(neurons, T+1)`` record as ``(T+1, B, n)``."""
    data = np.asarray(getattr(monitor, variable))
    return data.T.reshape(data.shape[1], batch, size)


def _trace(net, circuit, x, y) -> Trace:
    batch, sizes, n_layers = circuit.batch, circuit.sizes, len(circuit.sizes) - 1
    steps = circuit.ticks + 1
    values = [np.broadcast_to(x, (steps,) + x.shape).copy()]
    errors = [np.zeros((steps, batch, sizes[0]))]
    predictions = [np.zeros((steps, batch, sizes[0]))]
    acts = [values[0]]
    for layer in range(1, n_layers + 1):
        values.append(_series(circuit.monitors[f"value[{layer}]"], "x", batch, sizes[layer]))
        acts.append(_series(circuit.monitors[f"value[{layer}]"], "phi", batch, sizes[layer]))
        errors.append(_series(circuit.monitors[f"error[{layer}]"], "err", batch, sizes[layer]))
        mu = _series(circuit.monitors[f"error[{layer}]"], "mu", batch, sizes[layer])
        bias = np.asarray(net.biases[layer - 1], np.float64)
        predictions.append(values[layer] - errors[layer] if circuit.variant == "fpa" else mu + bias)
    energy = 0.5 * sum(np.sum(e ** 2, axis=(1, 2)) for e in errors[1:]) / batch
    grads = []
    for layer in range(1, n_layers + 1):
        tick = circuit.hebbian_ticks[layer - 1]
        presynaptic = acts[layer - 1][0 if circuit.variant == "fpa" else tick]
        error = errors[layer][tick]
        grads.append((-(error.T @ presynaptic) / batch, -error.mean(axis=0)))
    output = values[n_layers][0] - errors[n_layers][0]  # the feed-forward output yhat = mu_L at tick 0
    loss = float(0.5 * np.sum((y - output) ** 2) / batch)
    return Trace(energy=energy, errors=errors, values=values, predictions=predictions, grads=grads, loss=loss)
