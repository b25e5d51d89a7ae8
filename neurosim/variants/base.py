"""What every learning variant provides, and the registry that finds variants by name.

A variant describes what happens on each tick of the circuit (most as a schedule, see
:mod:`neurosim.variants.scheduled`); kernels say how. A variant holds its hyper-parameters, fixed at
construction, and whatever persists between steps (learned feedback, COPI's decorrelation); the
state of one step lives in a :class:`StepState` passed through the tick protocol, used by
:class:`neurosim.Simulator`:

    state = variant.begin(net, ws, x, y, grads)        # tick 0: feed-forward init, clamps; state.energy
    energy_t = variant.tick(state, t)                  # t = 1 .. variant.n_ticks(net)
    variant.end(state)                                 # weight terms not yet taken

``grads`` is a flat array shaped like ``net.params``; after ``end`` it holds the update as a loss
gradient (descent direction ``-grads``). ``compute`` runs the same protocol, or a fused kernel that
is tested equal to it, and ``gradients`` returns ``[(dW_1, db_1), ...]``.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ..circuit import ops
from ..circuit.network import Network
from ..errors import DivergenceError
from ..events import resolve as resolve_events

REGISTRY: dict = {}


def register(cls):
    """Class decorator: make a variant available to :func:`variant` under ``cls.name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"variant name {cls.name!r} is empty or already registered")
    REGISTRY[cls.name] = cls
    return cls


def available() -> list:
    """Names of the registered variants."""
    return sorted(REGISTRY)


def variant(name, **hyper) -> "Variant":
    """A variant by name with its hyper-parameters, e.g. ``variant("il", T=20, gamma=0.1)``."""
    if not isinstance(name, str):
        raise TypeError(f"variant name must be a string, got {type(name).__name__}")
    if name not in REGISTRY:
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(available())}")
    return REGISTRY[name](**hyper)


@dataclass
class StepState:
    """The state of one step on one batch, passed through the tick protocol.

    net, ws: the network and its workspace; x, y: the batch; grads: flat, like ``net.params``;
    output: ``(B, n_L)`` feed-forward prediction; loss: batch mean 1/2 ||y - yhat||^2 at the
    feed-forward state; energy: the tick-0 energy; extra: what a variant keeps for the rest of the
    step (its schedule's :class:`neurosim.circuit.schedule.Run`, COPI's decorrelated inputs, ...).
    """

    net: object
    ws: object
    x: np.ndarray
    y: np.ndarray
    grads: np.ndarray
    output: np.ndarray | None = None
    loss: float = float("nan")
    energy: float = float("nan")
    extra: dict = field(default_factory=dict)


@dataclass
class Step:
    """The result of one variant step on a batch.

    grads: flat, like ``net.params``, oriented as d loss / d theta; loss: batch mean
    1/2 ||y - yhat||^2 at the feed-forward state; output: ``(B, n_L)`` feed-forward prediction;
    energies: energy at each tick (``None`` where the variant has no relaxation); state: the step's
    :class:`StepState` where the tick protocol ran.
    """

    grads: np.ndarray
    loss: float
    output: np.ndarray
    energies: np.ndarray | None = None
    state: StepState | None = field(default=None, repr=False)

    @property
    def events(self):
        """What the populations sent (:class:`neurosim.events.EventTrace`), where the step ran with
        send-on-delta events; else ``None``."""
        run = None if self.state is None else self.state.extra.get("run")
        return None if run is None else run.event_trace()


class Variant:
    """Base class. Subclasses set ``name``, ``defaults`` (hyper-parameters) and implement the ticks."""

    name = ""
    defaults: dict = {}
    # False where a variant's own arithmetic bypasses the counted ops (see neurosim.complexity).
    counted = True
    # Whether populations relax over ticks, so that they can send events (neurosim.events).
    has_ticks = False
    # Whether Step.grads is the paper's whole parameter change, its step size inside the variant
    # (copi, ilprox): plain SGD with lr = 1 applies it; any other optimiser changes the algorithm.
    whole_step = False

    def default_optimizer(self):
        """The optimiser :func:`neurosim.train` and :class:`neurosim.Trainer` use when given none:
        ``SGD(lr=1.0)`` for a variant whose step is the whole parameter change, else ``SGD(lr=0.05)``."""
        from ..optim import SGD

        return SGD(lr=1.0) if self.whole_step else SGD(lr=0.05)

    def check_optimizer(self, optimizer) -> None:
        """Warn (``UserWarning``) when a whole-step variant is given an optimiser that does not apply
        its step as it is: anything but plain ``SGD(lr=1.0)``."""
        from ..optim import SGD

        if not self.whole_step:
            return
        if type(optimizer) is SGD and optimizer.lr == 1.0 and optimizer.momentum == 0.0:
            return
        import warnings

        warnings.warn(f"variant {self.name!r} returns its whole parameter change (its step size is one of its "
                      f"hyper-parameters), so {optimizer!r} does not take the variant's step: it scales or "
                      f"reshapes it. Use plain SGD with lr = 1.0, the default for this variant "
                      f"(ns.optim.SGD(lr=1.0); in a run config [optimizer] name = \"sgd\", lr = 1.0)",
                      UserWarning, stacklevel=3)

    def __init__(self, **hyper):
        unknown = sorted(set(hyper) - set(self.defaults))
        if unknown:
            known = ", ".join(self.defaults) or "none"
            raise TypeError(f"unknown hyper-parameter {unknown[0]!r} for variant {self.name!r}; "
                            f"known: {known}")
        self.hyper = {**self.defaults, **hyper}
        self.validate()
        # Fixed from here on: a variant's schedule is built from them once per network.
        self.hyper = MappingProxyType(dict(self.hyper))

    def validate(self) -> None:
        """Check ``self.hyper``; raise ValueError/TypeError naming the bad one."""

    def __getattr__(self, item):
        hyper = self.__dict__.get("hyper", {})
        if item in hyper:
            return hyper[item]
        raise AttributeError(item)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.hyper.items())
        return f"variant({self.name!r}{', ' if args else ''}{args})"

    # -- closed-form cost ----------------------------------------------------------------------
    @classmethod
    def has_closed_form(cls) -> bool:
        """Whether this class defines its own :meth:`closed_form` (a subclass changes the algorithm,
        so it does not inherit its parent's)."""
        return "closed_form" in cls.__dict__

    def closed_form(self, net, batch_size: int = 1) -> dict:
        """``{"macs", "ticks", "critical_path"}`` of one step, derived from the schedule on paper
        (see ``docs/complexity.md``); the counters must agree (``tests/test_complexity.py``)."""
        raise ValueError(f"no closed form for variant {self.name!r}")

    # -- checks --------------------------------------------------------------------------------
    def check_network(self, net) -> None:
        if not isinstance(net, Network):
            raise TypeError(f"net must be a neurosim Network, got {type(net).__name__}")
        if self.hyper.get("output") == "ce" and net.n_outputs < 2:
            raise ValueError(f"variant {self.name!r}: output='ce' (softmax cross-entropy) needs at least 2 "
                             f"outputs; this network has {net.n_outputs}")

    def check_network_once(self, net) -> None:
        """:meth:`check_network`, skipped for a network that passed it before: what it checks (layer
        types, sizes, outputs) is fixed when a network is built, and a training step should not pay
        for it again (about 1 us, a tenth of a batch-1 FPA step on the digits MLP)."""
        passed = self.__dict__.get("_networks_checked")
        if passed is None:
            passed = self.__dict__["_networks_checked"] = weakref.WeakSet()
        elif net in passed:
            return
        self.check_network(net)
        passed.add(net)

    def prepare(self, net, x, y):
        """Validate network and data before any kernel runs; return ``(x, y, workspace)``."""
        self.check_network_once(net)
        x = net.check_input(x, "x")
        y = net.check_target(y, x.shape[0], "y")
        return x, y, net.workspace(x.shape[0])

    # -- learned state ------------------------------------------------------------------------
    def learned_state(self, net) -> dict:
        """What this variant has learned about ``net`` besides its weights (learned or fixed
        feedback matrices, COPI's decorrelation), as ``{name: array}`` copies; ``{}`` when it keeps
        nothing. Checkpoints save it and divergence recovery restores it."""
        return {}

    def restore_learned_state(self, net, state: dict) -> None:
        """Put back a :meth:`learned_state`; ``ValueError`` naming the entry when it does not fit."""
        if state:
            raise ValueError(f"variant {self.name!r} keeps no learned state; got {', '.join(sorted(state))}")

    # -- tick protocol -----------------------------------------------------------------------
    def n_ticks(self, net) -> int:
        raise NotImplementedError

    def begin(self, net, ws, x, y, grads, events=None) -> StepState:
        """Tick 0; returns the step's state with ``state.energy`` set. ``events``: a
        :class:`neurosim.events.SendOnDelta` (``None``: dense ticks)."""
        raise NotImplementedError

    def tick(self, state: StepState, tick: int) -> float:
        """One tick; returns the energy after it."""
        raise NotImplementedError

    def end(self, state: StepState) -> None:
        """Take the weight terms not taken during the ticks (default: none left)."""

    # -- results -------------------------------------------------------------------------------
    def compute(self, net, x, y, events=None) -> Step:
        """One step on a batch through the tick protocol (subclasses may fuse it); ``events`` as
        for :meth:`gradients`."""
        events = resolve_events(events, self)
        x, y, ws = self.prepare(net, x, y)
        grads = np.zeros_like(net.params)
        n_ticks = self.n_ticks(net)
        energies = np.zeros(n_ticks + 1)
        state = self.begin(net, ws, x, y, grads, events=events)
        energies[0] = state.energy
        for tick in range(1, n_ticks + 1):
            energies[tick] = self.tick(state, tick)
            if not np.isfinite(energies[tick]):
                raise_divergence(self, net, ws, tick)
        self.end(state)
        return Step(grads, state.loss, state.output, energies, state)

    def sgd_step(self, net, x, y, lr: float, scratch: np.ndarray, events=None):
        """Inference and the plain-SGD update ``theta -= lr * grads`` fused into one kernel call.

        Returns a :class:`Step` (with ``grads=None``: the update went straight into the weights),
        or ``None`` where this variant, network or input has no fused path (the caller then runs
        ``compute`` and the optimiser). On divergence nothing is updated.
        """
        return None

    def gradients(self, net, x, y, events=None) -> list:
        """``[(dW_1, db_1), ..., (dW_L, db_L)]`` as d loss / d theta (views of one flat array).

        For an RNN (:func:`neurosim.rnn`) a dict keyed ``W_xh, W_hh, W_hy, b_h, b_y`` instead.
        ``events``: :class:`neurosim.events.SendOnDelta` to let populations send only their changes
        (variants with ticks), ``None`` or :class:`neurosim.events.Dense` for dense ticks.
        """
        step = self.compute(net, x, y, events=events)
        grads = step.grads
        check_finite_grads(self, net, grads)
        return net.grad_views(grads)

    # -- helpers shared by supervised variants ---------------------------------------------
    def feedforward_and_clamp(self, net, ws, x, y, grads) -> StepState:
        """Tick 0: feed-forward init, clamp x_L = y; a new :class:`StepState` with the output and
        the loss (its energy is the loss: every error is 0 but the output's)."""
        ops.feedforward(net, ws, x)
        output = ws.layer("values", net.n_layers).copy()
        with np.errstate(over="ignore", invalid="ignore"):
            loss = float(0.5 * np.sum((y - output) ** 2) / x.shape[0])
        if not np.isfinite(loss):
            # The first layer whose values overflowed, else the output whose squared error did.
            layer = next((l for l in range(1, net.n_layers + 1)
                          if not np.all(np.isfinite(ws.layer("values", l)))), net.n_layers)
            raise_divergence(self, net, ws, 0, layer)
        ops.clamp_output(net, ws, y)
        return StepState(net, ws, x, y, grads, output=output, loss=loss, energy=loss)


def raise_divergence(variant, net, ws, tick, layer=None):
    """Raise :class:`DivergenceError` naming the tick and the first layer that overflowed.

    A layer counts as overflowed when a value, an error or its squared-error sum is not finite.
    """
    if layer is None or layer < 0:
        layer = None
        with np.errstate(over="ignore", invalid="ignore"):
            for index in range(1, net.n_layers + 1):
                values, errors = ws.layer("values", index), ws.layer("errors", index)
                if not (np.all(np.isfinite(values)) and np.all(np.isfinite(errors))
                        and np.isfinite(np.sum(errors * errors))):
                    layer = index
                    break
    where = f"layer {layer}" if layer is not None else "an unknown layer"
    if tick == 0:
        hint = "; the feed-forward pass overflowed: the weights or inputs are too large"
    elif "gamma" in variant.defaults:
        hint = f"; gamma={variant.hyper['gamma']} may be too large, or the weights have blown up"
    else:
        hint = "; the weights have blown up"
    raise DivergenceError(f"{variant.name}: non-finite value or error at tick {tick} in {where}{hint}",
                          tick=tick, layer=layer)


def check_finite_grads(variant, net, grads) -> None:
    if np.all(np.isfinite(grads)):
        return
    views = net.grad_views(grads)
    if isinstance(views, dict):  # an RNN: parameters shared by the unrolled layers
        for name, view in views.items():
            if not np.all(np.isfinite(view)):
                raise DivergenceError(f"{variant.name}: non-finite gradient for {name}")
        return
    for l, (grad_weight, grad_bias) in enumerate(views, start=1):
        if not (np.all(np.isfinite(grad_weight)) and np.all(np.isfinite(grad_bias))):
            raise DivergenceError(f"{variant.name}: non-finite gradient for layer {l}", layer=l)
