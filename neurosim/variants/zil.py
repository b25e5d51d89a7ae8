"""``zil``: zero-divergence inference learning, exactly equal to backpropagation.

Song, Lukasiewicz, Xu & Bogacz 2020, "Can the brain do backpropagation? Exact implementation of
backpropagation in predictive coding networks", NeurIPS 33. Extended to CNNs and many-to-one RNNs by
Salvatori et al. 2021 (arXiv 2103.03725).

The IL dynamics (see :mod:`neurosim.variants.il`) under three conditions:

1. feed-forward initialisation, so every hidden error is 0 at tick 0;
2. ``gamma = 1``, so ``x_l(t) = mu_l(t-1) + f'(x_l(t-1)) * (e_{l+1}(t-1) W_{l+1})`` and the error
   ``e_l(t) = -d_l`` (BP's delta) on the tick it first becomes non-zero, ``t = L - l``;
3. the weights into layer ``l`` take their Hebbian term at tick ``t = L - l`` only, from
   ``e_l(L-l)`` and ``phi(x_{l-1}(L-l))`` (``x_{l-1}`` still at its feed-forward value then).

So ``L - 1`` ticks give every layer its update and the result equals BP's gradient to rounding.
Our choice where the paper leaves room: the term of each layer is computed at its tick and all terms
are applied together after the step, so later ticks feed errors back through the weights of the
step's start, exactly as BP does. There are no hyper-parameters.

Two ways to run it
------------------
``ns.Simulator(net, variant("zil"))`` (the tick protocol ``begin``/``tick``/``end``, inherited from
IL) simulates the **full circuit**: on every tick every population is updated and re-predicted, so
the traces show all of the dynamics, including the layers whose Hebbian term is already taken.

``compute`` (and so ``gradients``, ``Trainer.step`` and ``train``) runs the **wavefront**: an
event-driven schedule that computes only what the step's weight updates depend on. Both give the same
gradients (to rounding; bit for bit on the conv/RNN path; tested on random MLPs, CNNs and RNNs
against each other and against BP), and ``neurosim.complexity.measure(net, "zil")`` counts what the
wavefront does. The argument, for ``L >= 2`` (``L = 1`` has no ticks):

*Only the front moves.* With feed-forward initialisation and ``gamma = 1``, on tick ``t`` only layer
``l = L - t`` changes (Lemma 1 of Zahid et al. 2023; the error front): below it every value is still
``mu_k`` and every error and feedback exactly 0, so those populations receive no new message and do
nothing (a value update would add ``gamma (-0 + f' * 0) = 0``; a prediction would read unchanged
activities). On its tick, layer ``l`` has ``x_l = mu_l``, ``e_l = 0`` and the feedback
``fb_l = e_{l+1}(t-1) W_{l+1}`` from the layer above, so the IL update with ``gamma = 1`` is

    x_l <- mu_l + f'(x_l) * fb_l        e_l = x_l - mu_l   (mu_l unchanged: x_{l-1} has not moved)
    fb_{l-1} = e_l W_l                  Hebbian term of layer l from e_l and phi(x_{l-1})

*Retired layers cannot matter.* Information travels down one layer per tick: the only thing layer
``k - 1`` reads from above is ``e_k(t) W_k``, and it enters ``x_{k-1}`` at tick ``t + 1``
(predictions read from below). So a change of layer ``j`` at tick ``s`` reaches layer ``k < j`` at
tick ``s + (j - k)`` at the earliest. The Hebbian term of layer ``k`` reads ``e_k(L-k)`` and
``phi(x_{k-1}(L-k))``. Every change of layer ``j`` after its own tick ``L - j`` (at ``s >= L - j + 1``:
``mu_j`` re-predicted from the moved ``x_{j-1}``, hence ``e_j`` and ``x_j`` moving again) reaches
layer ``k`` at tick ``>= L - j + 1 + j - k = L - k + 1``: one tick after ``k`` took its term, and
later still for ``k - 1``. Concretely, ``e_{l-1}(L-l+1) = x_{l-1}(L-l+1) - mu_{l-1} = f'(x_{l-1}) *
(e_l(L-l) W_l)`` depends on everything above only through ``e_l(L-l) W_l``, and by induction so
does every later Hebbian term. So once layer ``l`` has taken its term (tick ``L - l``) its simulation
retires: re-predicting ``mu_{l+1}`` from the new ``x_l`` is a change of the retired layer ``l + 1``.

*Cost.* Per layer: one feedback product (``F_l``, for ``l >= 2``), one Hebbian product (``P_l``) and
``O(B n_l)`` elementwise work, after the forward pass (``S``): ``2 S + R`` MACs and a critical path of
``2 L`` products, BP's own. The only addition to BP's arithmetic is elementwise: the value update
and the error take 4 operations per hidden neuron and sample where BP's delta step takes 2
(``f'(x_l) * fb_l``), and no extra messages (see ``docs/complexity.md``). The full circuit costs
``2 S + F_L + (L - 1)(Q + R)`` and ``3 L - 1``.

The wavefront holds only for Z-IL's three conditions as this class defines them. A subclass that
changes one of them (``gamma``, the schedule, the number of ticks or the initialisation) is a
different algorithm for which the argument fails, so its ``compute`` runs the full circuit (IL's
fused path). ``compute`` returns ``energies=None``: the circuit's energy includes the retired layers,
which the wavefront does not simulate (the Simulator records it). Divergence is reported as by the
full circuit (``DivergenceError`` naming the tick and the layer) for the populations the wavefront
computes; an overflow confined to retired layers, which the full circuit would report, cannot touch
the step's updates, and the wavefront, like BP, does not see it.

Implementation: :func:`neurosim.circuit.ops.zil_wavefront`, one numba call on dense networks
(:func:`neurosim.kernels.dense.zil_wavefront`, composing the dense kernels), the layer contract of
:mod:`neurosim.circuit.generic` on conv networks and RNNs; both report their work to the counters.
"""
from __future__ import annotations

import math

import numpy as np

from ..circuit import ops, work
from .base import Step, raise_divergence, register
from .il import IL

# What the wavefront takes as given; a subclass overriding one of these runs the full circuit.
_CIRCUIT_HOOKS = ("feedforward_and_clamp", "_initialise", "begin", "tick", "end", "_take")


@register
class ZIL(IL):
    name = "zil"
    defaults: dict = {}

    def validate(self) -> None:
        self.hyper["gamma"] = 1.0

    def __repr__(self) -> str:
        return "variant('zil')"

    def n_ticks(self, net) -> int:
        return net.n_layers - 1

    def update_ticks(self, net) -> np.ndarray:
        """Layer l takes its Hebbian term at tick L - l."""
        return np.array([0] + [net.n_layers - layer for layer in range(1, net.n_layers + 1)],
                        dtype=np.int64)

    def closed_form(self, net, batch_size: int = 1) -> dict:
        """The wavefront (``compute``) does BP's products, one layer per tick: ``2 S + R`` and ``2 L``.
        A subclass that breaks a Z-IL condition runs the full circuit: IL's form with T = L - 1."""
        S, Q, R, F_L = work.layer_sums(net, batch_size)
        ticks = self.n_ticks(net)
        if self.wavefront_applies(net):
            return {"macs": 2 * S + R, "ticks": ticks, "critical_path": 2 * net.n_layers}
        path = net.n_layers + 1 + 2 * ticks if net.n_layers >= 2 else 2
        return {"macs": 2 * S + F_L + ticks * (Q + R), "ticks": ticks, "critical_path": path}

    def wavefront_applies(self, net) -> bool:
        """True when this variant is Z-IL as defined here (the three conditions), so ``compute`` may
        run the event-driven wavefront; False for subclasses that change one of them."""
        if self.hyper["gamma"] != 1.0:
            return False
        cls = type(self)
        if cls is ZIL:
            return True
        if any(getattr(cls, hook) is not getattr(ZIL, hook) for hook in _CIRCUIT_HOOKS):
            return False
        return (self.n_ticks(net) == net.n_layers - 1
                and np.array_equal(self.update_ticks(net), ZIL.update_ticks(self, net)))

    def _start(self, net, ws, x, y) -> None:
        """Tick 0 of the wavefront: what ``feedforward_and_clamp`` and ``output_error`` do, with the
        loss taken from ``e_L = y - mu_L`` (one subtraction and one dot instead of two passes)."""
        ops.feedforward(net, ws, x)
        output = ws.layer("values", net.n_layers).copy()
        ops.output_error(net, ws, output, y)
        start = ws.s_off[net.n_layers]
        error = ws.errors[start:start + output.size]
        loss = 0.5 * float(np.dot(error, error)) / ws.batch
        if not math.isfinite(loss):
            # The shared path names the layer that overflowed; if it does not raise (only a float32
            # dot overflowed), its loss stands.
            self.feedforward_and_clamp(net, ws, x, y)
            ops.output_error(net, ws, output, y)
            loss = self._loss
        self._output, self._loss = output, loss
        ops.clamp_output(net, ws, y)

    def sgd_step(self, net, x, y, lr, scratch):
        """No fused update: a training step is :meth:`compute` (the wavefront) and the optimiser."""
        return None

    def compute(self, net, x, y) -> Step:
        """The training path: the event-driven wavefront (see the module docstring).

        Tick 0 as the circuit does it (forward pass, loss, clamp, ``e_L = y - mu_L``), then
        :func:`neurosim.circuit.ops.zil_wavefront`: on tick ``L - l`` only layer ``l``'s value, error,
        feedback and Hebbian term. Non-finite values raise :class:`neurosim.DivergenceError` naming
        the tick and layer, as the full circuit does.
        """
        x, y, ws = self.prepare(net, x, y)  # an RNN learns its depth here
        if not self.wavefront_applies(net):
            return super().compute(net, x, y)
        grads = np.zeros_like(net.params)
        self._start(net, ws, x, y)
        tick, layer = ops.zil_wavefront(net, ws, -1.0 / ws.batch, grads)
        if tick >= 0:
            raise_divergence(self, net, ws, tick, layer)
        return Step(grads, self._loss, self._output, None)
