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

The wavefront holds only for Z-IL's three conditions as this class defines them. Both are schedules
(:mod:`neurosim.circuit.schedule`): the full circuit is IL's schedule with ``gamma = 1``,
``T = L - 1`` and layer ``l``'s term at tick ``L - l``; the wavefront is a second schedule. ``compute``
runs the wavefront only when the variant's full-circuit schedule *is* Z-IL's (compared as data, op
by op); a subclass that changes ``gamma``, the schedule, the number of ticks or the initialisation
has another schedule, for which the argument fails, so its ``compute`` runs its full circuit. ``compute`` returns ``energies=None``: the circuit's energy includes the retired layers,
which the wavefront does not simulate (the Simulator records it). Divergence is reported as by the
full circuit (``DivergenceError`` naming the tick and the layer) for the populations the wavefront
computes; an overflow confined to retired layers, which the full circuit would report, cannot touch
the step's updates, and the wavefront, like BP, does not see it.

Implementation: the wavefront schedule (ops ``error L, hebbian L, feedback L``; then per tick
``relax l`` from a zero error, ``error l``, ``feedback l``, ``hebbian l``) runs in one compiled call
on dense networks and on the NumPy reference backend for conv networks and RNNs; the counts come
from the same ops.
"""
from __future__ import annotations

import numpy as np

from ..circuit import work
from ..circuit.schedule import Schedule
from .base import register
from .il import IL


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
        """Whether this variant's full-circuit schedule is Z-IL's, op for op (so ``compute`` may run
        the wavefront); False for a subclass whose schedule differs in any op."""
        schedule = self.schedule(net)
        verdict = schedule.__dict__.get("_is_zil_circuit")
        if verdict is None:  # a schedule never changes once built: compare once
            verdict = schedule.__dict__["_is_zil_circuit"] = schedule.ticks == _circuit_of_zil(net).ticks
        return verdict

    def wavefront(self, net) -> Schedule:
        """The event-driven schedule: tick 0 ``e_L``, its Hebbian term and feedback; tick ``L - l``
        only layer ``l``: ``x_l += f'(x_l) * fb_l`` (its error is still 0), ``e_l = x_l - mu_l``,
        ``fb_{l-1} = e_l W_l``, its Hebbian term."""
        return Schedule.error_wave(
            net.n_layers, lambda schedule, layer: schedule.relax(layer, 1.0, zero_error=True).error(layer))

    def step_schedule(self, net) -> Schedule:
        """What ``compute`` and a training step run: the wavefront where it applies."""
        if not self.wavefront_applies(net):
            return self.schedule(net)
        cache = self.__dict__.setdefault("_wavefronts", {})
        if net.n_layers not in cache:
            cache[net.n_layers] = self.wavefront(net)
        return cache[net.n_layers]

    def compute(self, net, x, y, events=None):
        """The training path: the wavefront (see the module docstring); ``energies`` is None there,
        since the retired layers are not simulated. With send-on-delta events the wavefront's
        populations send; at threshold 0 that is exactly the wavefront's messages."""
        step = super().compute(net, x, y, events=events)
        if self.wavefront_applies(net):
            step.energies = None
        return step


_CIRCUITS: dict = {}


def _circuit_of_zil(net) -> Schedule:
    """Z-IL's own full-circuit schedule for a network of this depth (built once per depth)."""
    if net.n_layers not in _CIRCUITS:
        _CIRCUITS[net.n_layers] = IL.build_schedule(ZIL(), net)
    return _CIRCUITS[net.n_layers]
