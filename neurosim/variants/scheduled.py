"""Variants that are a schedule: the tick protocol and the fused step both run the schedule.

A subclass gives :meth:`Scheduled.build_schedule` (a :class:`neurosim.circuit.schedule.Schedule` for
a network) and nothing else: ``begin`` runs tick 0 after the feed-forward initialisation and clamp,
``tick`` runs one tick, and ``compute`` runs every tick in one backend call (the numba loop for a
dense network, the NumPy reference otherwise or inside ``ns.backends.use("numpy")``). The step's
state (working parameters, gradients, energies) lives in a :class:`~neurosim.circuit.schedule.Run`,
not in the schedule.
"""
from __future__ import annotations

import weakref

from ..circuit.schedule import Run, Schedule
from ..errors import DivergenceError
from ..events import resolve as resolve_events
from ._common import require_dense
from .base import Step, StepState, Variant, raise_divergence


class Scheduled(Variant):
    """Base of the variants defined by a schedule (see the module docstring)."""

    has_ticks = True
    # Every population's errors go down through W_l^T; FeedbackPathway overrides it with a property.
    # (A class attribute, so that asking costs no miss through Variant.__getattr__.)
    feedback_kind = "symmetric"

    def build_schedule(self, net) -> Schedule:
        raise NotImplementedError

    def schedule(self, net) -> Schedule:
        """This variant's schedule for ``net`` (built once per network shape)."""
        cache = self.__dict__.get("_schedules")
        if cache is None:
            cache = self.__dict__["_schedules"] = weakref.WeakKeyDictionary()
        key = net.n_layers
        found = cache.get(net)
        if found is None or found[0] != key:
            found = (key, self.build_schedule(net))
            cache[net] = found
        return found[1]

    def n_ticks(self, net) -> int:
        return self.hyper["T"]

    def check_network(self, net) -> None:
        super().check_network(net)
        if self.feedback_kind != "symmetric":
            require_dense(self, net, f"feedback={self.feedback_kind!r} keeps one matrix B_l per dense "
                                     f"layer; use feedback='symmetric'")

    def step_schedule(self, net) -> Schedule:
        """The schedule ``compute`` and a training step run (default: :meth:`schedule`; a variant
        with an exact shortcut of its circuit, as Z-IL's wavefront, returns that)."""
        return self.schedule(net)

    def _new_run(self, net, ws, y, grads=None, schedule=None, events=None) -> Run:
        # looked up on the class: a miss on the instance goes through Variant.__getattr__ and raises
        back = self.feedback_params(net) if hasattr(type(self), "feedback_params") else None
        return Run(schedule or self.schedule(net), net, ws, y, back=back, grads=grads, events=events)

    # -- tick protocol -------------------------------------------------------------------------
    def begin(self, net, ws, x, y, grads, events=None) -> StepState:
        events = resolve_events(events, self)
        state = self.feedforward_and_clamp(net, ws, x, y, grads)
        run = state.extra["run"] = self._new_run(net, ws, y, grads, events=events)
        run.start_events()
        run.ticks(0, 0)
        state.energy = float(run.energies[0])
        return state

    def tick(self, state, tick) -> float:
        run = state.extra["run"]
        run.ticks(tick, tick)
        return float(run.energies[tick])

    # -- the whole step in one call ------------------------------------------------------------
    def _compiled_step(self, state, run, lr=None) -> None:
        status, tick, layer, loss, output = run.step(state.x, state.y, lr)
        state.loss, state.output = loss, output
        if status in (1, 3):
            raise_divergence(self, state.net, state.ws, tick, layer)
        if status == 2:
            raise DivergenceError(f"{self.name}: the update would make parameters non-finite (loss "
                                  f"{loss:.3g}); lower the learning rate")

    def compute(self, net, x, y, events=None) -> Step:
        """Every tick of :meth:`step_schedule`: one compiled call (numba backend, dense network) or
        the NumPy reference backend."""
        return self.compute_with(net, x, y, events=events)

    def compute_with(self, net, x, y, schedule: Schedule | None = None, events=None) -> Step:
        """One step under ``schedule`` (default :meth:`step_schedule`; e.g. ``variant.schedule(net)``
        for Z-IL's full circuit where ``compute`` runs its wavefront), in one call; ``events`` a
        :class:`neurosim.events.SendOnDelta` (``None``: dense ticks)."""
        events = resolve_events(events, self)
        x, y, ws = self.prepare(net, x, y)  # an RNN learns its depth here
        run = self._new_run(net, ws, y, schedule=schedule or self.step_schedule(net), events=events)
        if run.compiled():
            state = StepState(net, ws, x, y, run.grads, extra={"run": run})
            self._compiled_step(state, run)
        else:
            state = self.feedforward_and_clamp(net, ws, x, y, run.grads)
            state.extra["run"] = run
            run.start_events()
            tick, layer = run.ticks(0, run.schedule.n_ticks)
            if tick >= 0:
                raise_divergence(self, net, ws, tick, layer)
        state.energy = float(run.energies[0])
        self.end(state)
        return Step(run.grads, state.loss, state.output, run.energies, state)

    def sgd_step(self, net, x, y, lr: float, scratch, events=None):
        """The step and the plain-SGD update ``theta -= lr * grads`` in one compiled call (numba
        backend, dense network, fixed feedback), applied only if every new parameter is finite.
        ``None`` where it does not apply (the trainer then runs ``compute`` and the optimiser)."""
        if self.feedback_kind == "learned" or not getattr(net, "is_dense", False):
            return None
        events = resolve_events(events, self)
        x, y, ws = self.prepare(net, x, y)
        run = self._new_run(net, ws, y, schedule=self.step_schedule(net), events=events)
        if not run.compiled():
            return None
        state = StepState(net, ws, x, y, None, extra={"run": run})
        self._compiled_step(state, run, lr)
        return Step(None, state.loss, state.output, run.energies, state)
