"""Plain-NumPy references of the dense kernels in :mod:`neurosim.kernels.dense`.

Same equations, written for reading rather than speed, on per-layer lists: ``weights[l-1]`` is
``W_l`` ``(n_l, n_{l-1})``, ``biases[l-1]`` is ``b_l``; ``state.values[l]`` is ``x_l`` ``(B, n_l)``
for ``l = 0..L`` (``l = 0`` the clamped input), likewise ``acts`` (``phi_l(x_l)``), ``preds``
(``mu_l``) and ``errors`` (``e_l``; index 0 unused, kept at zero). The test-suite runs every numba
kernel against these.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import activations


@dataclass
class ReferenceState:
    values: list
    acts: list
    preds: list
    errors: list


def _phi(activation, x, layer, n_layers):
    # phi_0 is the identity (raw input); the output readout x_L is linear.
    return x.copy() if layer in (0, n_layers) else activations.apply(activation, x)


def feedforward(weights, biases, activation, inputs) -> ReferenceState:
    """x_l = mu_l = W_l phi(x_{l-1}) + b_l for l = 1..L; e_l = 0."""
    n_layers = len(weights)
    values, acts = [inputs.copy()], [inputs.copy()]
    preds, errors = [np.zeros_like(inputs)], [np.zeros_like(inputs)]
    for layer in range(1, n_layers + 1):
        mu = acts[-1] @ weights[layer - 1].T + biases[layer - 1]
        values.append(mu.copy())
        preds.append(mu.copy())
        errors.append(np.zeros_like(mu))
        acts.append(_phi(activation, mu, layer, n_layers))
    return ReferenceState(values, acts, preds, errors)


def energy(state: ReferenceState) -> float:
    """Batch mean of F = 1/2 sum_{l>=1} ||e_l||^2."""
    batch = state.values[0].shape[0]
    return 0.5 * sum(float(np.sum(e * e)) for e in state.errors[1:]) / batch


def predict_errors(weights, biases, state: ReferenceState, first_layer: int = 1) -> float:
    """mu_l = W_l phi(x_{l-1}) + b_l for l >= first_layer; e_l = x_l - mu_l for all l >= 1."""
    for layer in range(first_layer, len(weights) + 1):
        state.preds[layer] = state.acts[layer - 1] @ weights[layer - 1].T + biases[layer - 1]
    for layer in range(1, len(weights) + 1):
        state.errors[layer] = state.values[layer] - state.preds[layer]
    return energy(state)


def feedback(weights, state: ReferenceState) -> list:
    """feedback_l = e_{l+1} W_{l+1} for l = 1..L-1 (index 0 and L unused)."""
    n_layers = len(weights)
    out = [np.zeros_like(v) for v in state.values]
    for layer in range(1, n_layers):
        out[layer] = state.errors[layer + 1] @ weights[layer]
    return out


def relax_tick(weights, biases, activation, gamma, state: ReferenceState) -> float:
    """x_l <- x_l + gamma (-e_l + f'(x_l) * (e_{l+1} W_{l+1})) for l = 1..L-1, then errors."""
    n_layers = len(weights)
    fb = feedback(weights, state)
    for layer in range(1, n_layers):
        x = state.values[layer]
        x = x + gamma * (-state.errors[layer] + activations.derivative(activation, x) * fb[layer])
        state.values[layer] = x
        state.acts[layer] = activations.apply(activation, x)
    return predict_errors(weights, biases, state, first_layer=2)


def hebbian_update(error, presynaptic, scale):
    """(scale * e^T a, scale * sum_b e): the Hebbian term of one layer, as a loss gradient."""
    return scale * (error.T @ presynaptic), scale * error.sum(axis=0)


def first_nonfinite_layer(state: ReferenceState) -> int:
    """First layer whose values, errors or squared-error sum are not finite; -1 if none."""
    for layer in range(1, len(state.values)):
        values, errors = state.values[layer], state.errors[layer]
        with np.errstate(over="ignore"):
            total = float(np.sum(errors * errors))
        if not (np.all(np.isfinite(values)) and np.all(np.isfinite(errors)) and np.isfinite(total)):
            return layer
    return -1


def relax(weights, biases, activation, gamma, n_ticks, state: ReferenceState, update_tick, grad_scale):
    """n_ticks relaxation ticks; layer l's Hebbian term is taken at tick update_tick[l].

    Returns ``(grads, energies, (tick, layer))``; ``(tick, layer)`` is ``(-1, -1)`` unless a value
    or error became non-finite.
    """
    return _run_ticks(lambda: relax_tick(weights, biases, activation, gamma, state), len(weights),
                      n_ticks, state, update_tick, grad_scale)


def _run_ticks(tick_once, n_layers, n_ticks, state: ReferenceState, update_tick, grad_scale):
    """``tick_once()`` n_ticks times, taking each layer's Hebbian term at its ``update_tick``."""
    grads = [None] * n_layers
    energies = [energy(state)]

    def take(tick):
        for layer in range(1, n_layers + 1):
            if update_tick[layer] == tick:
                grads[layer - 1] = hebbian_update(state.errors[layer], state.acts[layer - 1], grad_scale)

    take(0)
    for tick in range(1, n_ticks + 1):
        current = tick_once()
        energies.append(current)
        if not np.isfinite(current):
            return grads, np.array(energies), (tick, first_nonfinite_layer(state))
        take(tick)
    return grads, np.array(energies), (-1, -1)


def relax_and_learn(weights, biases, activation, gamma, n_ticks, inputs, target, lr):
    """One IL training step with plain SGD, in place on ``weights``/``biases`` (lists of arrays).

    Feed-forward init, clamp x_L = y, e_L = y - x_L, ``n_ticks`` of :func:`relax`, then
    W_l += (lr / B) e_l^T phi(x_{l-1}), b_l += (lr / B) sum_b e_l -- unless a value, an error or a
    new parameter is not finite, in which case nothing changes.
    Returns ``(status, loss, output, energies)``: status 0 updated, 1 inference diverged, 2 the
    update would overflow.
    """
    n_layers = len(weights)
    state = feedforward(weights, biases, activation, inputs)
    output = state.values[-1].copy()
    loss = 0.5 * float(np.sum((target - output) ** 2)) / inputs.shape[0]
    state.values[-1] = target.copy()
    state.acts[-1] = target.copy()
    state.errors[-1] = target - output
    update = [n_ticks] * (n_layers + 1)
    grads, energies, (tick, _) = relax(weights, biases, activation, gamma, n_ticks, state, update,
                                       -1.0 / inputs.shape[0])
    if not np.isfinite(loss) or tick >= 0:
        return 1, loss, output, energies
    new = [(W - lr * gW, b - lr * gb) for (W, b), (gW, gb) in zip(zip(weights, biases), grads)]
    if not all(np.all(np.isfinite(W)) and np.all(np.isfinite(b)) for W, b in new):
        return 2, loss, output, energies
    for layer, (W, b) in enumerate(new):
        weights[layer][...] = W
        biases[layer][...] = b
    return 0, loss, output, energies


def backprop(weights, activation, state: ReferenceState, target):
    """d_L = x_L - y, d_l = f'(x_l) * (d_{l+1} W_{l+1}); grads (1/B) d_l^T phi(x_{l-1}), mean_b d_l."""
    n_layers = len(weights)
    batch = target.shape[0]
    delta = state.values[n_layers] - target
    grads = [None] * n_layers
    for layer in range(n_layers, 0, -1):
        grads[layer - 1] = hebbian_update(delta, state.acts[layer - 1], 1.0 / batch)
        if layer > 1:
            delta = activations.derivative(activation, state.values[layer - 1]) * (delta @ weights[layer - 1])
    return grads


def backprop_layer(weights, activation, state: ReferenceState, layer: int) -> None:
    """e_l = f'(x_l) * (e_{l+1} W_{l+1}) (in place)."""
    state.errors[layer] = activations.derivative(activation, state.values[layer]) * (
        state.errors[layer + 1] @ weights[layer])


def activation_gains(activation, state: ReferenceState) -> list:
    """gains_l = f'(x_l) for hidden layers l = 1..L-1 (index 0 and L: zeros)."""
    n_layers = len(state.values) - 1
    gains = [np.zeros_like(v) for v in state.values]
    for layer in range(1, n_layers):
        gains[layer] = activations.derivative(activation, state.values[layer])
    return gains


def relax_tick_fixed_prediction(weights, gamma, state: ReferenceState, gains) -> float:
    """x_l <- x_l + gamma (-e_l + gains_l * (e_{l+1} W_{l+1})), l = 1..L-1; e_l = x_l - preds_l.

    Predictions (``state.preds``) and gains stay as they are; ``state.acts`` is not touched.
    """
    n_layers = len(weights)
    fb = feedback(weights, state)
    for layer in range(1, n_layers):
        state.values[layer] = state.values[layer] + gamma * (-state.errors[layer] + gains[layer] * fb[layer])
    for layer in range(1, n_layers + 1):
        state.errors[layer] = state.values[layer] - state.preds[layer]
    return energy(state)


def relax_fixed_prediction(weights, gamma, n_ticks, state: ReferenceState, gains, update_tick, grad_scale):
    """n_ticks fixed-prediction ticks; layer l's Hebbian term (with ``state.acts``) at update_tick[l].

    Returns ``(grads, energies, (tick, layer))`` like :func:`relax`.
    """
    return _run_ticks(lambda: relax_tick_fixed_prediction(weights, gamma, state, gains), len(weights),
                      n_ticks, state, update_tick, grad_scale)
