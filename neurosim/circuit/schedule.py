"""Schedules as data: what each population does on each tick, read by the backends and the counters.

A :class:`Schedule` lists, for every tick ``t = 0..T``, the circuit operations run on that tick, in
order. Tick 0 follows the feed-forward initialisation and the output clamp. The operations (``l``
is the layer; ``a_l = phi(x_l)``; ``B_l`` the feedback matrices, ``W_l`` for symmetric feedback):

    predict l            mu_l = W_l T_l(a_{l-1}) + b_l,  e_l = x_l - mu_l
    error l              e_l = x_l - mu_l                      (against the stored prediction)
    feedback l           fb_{l-1} = VJP_l(e_l)  (= e_l B_l for a dense layer)
    relax l, rate        x_l += rate (-g e_l + f'(x_l) * fb_l),  a_l = f(x_l)   (``error_gain`` g, 1 by
                         default; IL-prox's public code steps on its own error at another rate)
                         (``zero_error``: e_l is 0 and nothing downstream reads a_l, as on Z-IL's
                         error front: x_l += rate f'(x_l) * fb_l only)
    reset l, value       x_l = value,  a_l = f(value)
    delta l              e_l = f'(x_l) * fb_l  (BP's step down one layer: linear in the error, so
                         it carries PC errors e = -d as well as deltas)
    relax_fixed l, rate  x_l += rate (-e_l + f'(mu_l) * fb_l)  with the prediction and the activity
                         frozen (the fixed prediction assumption: mu_l and a_l keep their
                         feed-forward values, so f'(mu_l) is the feed-forward gain)
    hebbian l, scale     grads_l += (scale / B) e_l^T T_l(a_{l-1})  (and the bias term (scale / B) sum_b e_l)
                         with ``normalise`` (eps): divided by n_l = mean_b ||a_{l-1}||^2 + 1 + eps
    learn l, lr          dW = (1/B) e_l^T T_l(a_{l-1}):  W_l += lr dW,  grads_l -= dW  (weights move
                         during inference, on the working parameters; directly followed by
                         ``predict l``, the compiled loop makes one pass over a large W_l for both)
    soft_target          x_L = s(mu_L) blended with y,  e_L = x_L - s(mu_L);  s = softmax ("ce") or
                         the identity ("mse"); blend "mix" (pi): (1 - pi) y + pi s;  "nlms" (alpha,
                         eps): (s + w y) / (1 + w),  w = alpha (mean_b ||a_{L-1}||^2 + c + eps) with
                         ``norm_bias`` c (1 by default: the bias's constant input); "nlms_sum": the
                         same with the batch sum for the mean; "keep": x_L as it is (e_L re-formed
                         against a new prediction)
    energy               the tick's energy: 1/2 sum_{l<L} ||e_l||^2 plus the output term
                         (1/2 ||e_L||^2 for "mse", -sum_k x_Lk log softmax(mu_L)_k for "ce"), batch mean

Kernels know no variant: a variant *is* its schedule (bp, il, zil, fpa, seqil, ipc, ilprox; see
:mod:`neurosim.variants.scheduled`). The same schedule drives both backends (:mod:`neurosim.backends`)
and produces the counted events (:meth:`Schedule.templates`), so nothing is re-derived after a kernel
returns. The state of one step under a schedule is a :class:`Run`.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from .. import backends, counting
from ..backends import reference as reference_backend
from ..events.record import EventBook
from ..kernels import events as event_kernels
from ..kernels import schedule as schedule_kernels
from ..kernels.layout import aligned_zeros
from . import work

OPCODES = {"predict": 0, "error": 1, "feedback": 2, "relax": 3, "hebbian": 4, "learn": 5,
           "soft_target": 6, "energy": 7, "relax_fixed": 8, "reset": 9, "delta": 10}
OUTPUT_MODES = {"mse": 0, "ce": 1}
BLENDS = {"mix": 0, "nlms": 1, "nlms_sum": 2, "keep": 3}


@dataclass(frozen=True)
class Op:
    """One operation of a schedule: ``name`` (a key of :data:`OPCODES`), the layer it acts on and
    its arguments (``rate``/``scale``/``lr``/``pi``/``alpha``/``value``: ``value``; ``eps``;
    ``flag``: fused feedback for ``predict``, a zero error for ``relax``, normalisation for
    ``hebbian``, the output mode for ``energy`` and ``soft_target``; ``blend``: the soft target's
    blend; ``gain``: the error gain of ``relax``, the norm's constant of an "nlms" ``soft_target``)."""

    name: str
    layer: int = 0
    value: float = 0.0
    eps: float = 0.0
    flag: int = 0
    blend: int = 0
    gain: float = 1.0


@dataclass
class Schedule:
    """The operations of every tick: ``ticks[t]`` is the list of :class:`Op` run on tick ``t``.

    ``output``: what the output energy is (``"mse"`` or ``"ce"``); ``moves_weights``: whether any
    ``learn`` op changes the working parameters during inference (iPC).
    """

    ticks: list = field(default_factory=list)
    output: str = "mse"

    def __post_init__(self):
        if self.output not in OUTPUT_MODES:
            raise ValueError(f"Schedule output must be one of {', '.join(OUTPUT_MODES)}, got {self.output!r}")

    # -- building --------------------------------------------------------------------------------
    def new_tick(self) -> "Schedule":
        self.ticks.append([])
        return self

    def _add(self, op: Op) -> "Schedule":
        if not self.ticks:
            self.new_tick()
        self.ticks[-1].append(op)
        return self

    def predict(self, layer, with_feedback: bool = False):
        return self._add(Op("predict", layer, flag=int(with_feedback)))

    def error(self, layer):
        return self._add(Op("error", layer))

    def feedback(self, layer):
        return self._add(Op("feedback", layer))

    def relax(self, layer, rate, zero_error: bool = False, error_gain: float = 1.0):
        """``zero_error``: the layer's error is known to be 0 (Z-IL's front), so the error neuron
        sends nothing and the step is ``x_l += rate * f'(x_l) * fb_l``. ``error_gain`` g: the step
        is ``x_l += rate * (-g e_l + f'(x_l) * fb_l)``."""
        return self._add(Op("relax", layer, float(rate), flag=int(zero_error), gain=float(error_gain)))

    def delta(self, layer):
        return self._add(Op("delta", layer))

    def reset(self, layer, value):
        """x_l = value, a_l = f(value) for a hidden layer (an initialisation other than feed-forward)."""
        return self._add(Op("reset", layer, float(value)))

    def relax_fixed(self, layer, rate):
        return self._add(Op("relax_fixed", layer, float(rate)))

    def hebbian(self, layer, scale, normalise_eps=None):
        normalise = normalise_eps is not None
        return self._add(Op("hebbian", layer, float(scale), float(normalise_eps or 0.0), int(normalise)))

    def learn(self, layer, lr):
        return self._add(Op("learn", layer, float(lr)))

    def soft_target(self, output: str, blend: str, value: float = 0.0, eps: float = 0.0,
                    norm_bias: float = 1.0):
        if output not in OUTPUT_MODES:
            raise ValueError(f"soft_target: output must be one of {', '.join(OUTPUT_MODES)}, got {output!r}")
        if blend not in BLENDS:
            raise ValueError(f"soft_target: blend must be one of {', '.join(BLENDS)}, got {blend!r}")
        return self._add(Op("soft_target", 0, float(value), float(eps), OUTPUT_MODES[output], BLENDS[blend],
                            gain=float(norm_bias)))

    def energy(self):
        return self._add(Op("energy", 0, flag=OUTPUT_MODES[self.output]))

    @classmethod
    def error_wave(cls, n_layers: int, step, output: str = "mse") -> "Schedule":
        """The output error travelling down one layer per tick, each layer's Hebbian term taken as it
        passes (BP's backward pass, Z-IL's wavefront): tick 0 ``error L``, ``feedback L``,
        ``hebbian L``; tick ``L - l`` whatever ``step(schedule, l)`` adds to form ``e_l``, then
        ``feedback l`` (l >= 2) and ``hebbian l``; an ``energy`` op after each error is formed.
        ``output="ce"``: the output error is ``y - softmax(mu_L)`` (cross-entropy on softmax)."""
        schedule = cls(output=output).new_tick()
        if output == "mse":
            schedule.error(n_layers)
        else:
            schedule.soft_target(output, "mix", 0.0)  # x_L = y, e_L = y - softmax(mu_L)
        schedule.energy()
        if n_layers >= 2:
            schedule.feedback(n_layers)
        schedule.hebbian(n_layers, -1.0)
        for layer in range(n_layers - 1, 0, -1):
            step(schedule.new_tick(), layer)
            schedule.energy()
            if layer >= 2:
                schedule.feedback(layer)
            schedule.hebbian(layer, -1.0)
        return schedule

    # -- reading ---------------------------------------------------------------------------------
    @property
    def n_ticks(self) -> int:
        """T: the last tick (tick 0 is the one after the feed-forward initialisation)."""
        return len(self.ticks) - 1

    @property
    def moves_weights(self) -> bool:
        found = self.__dict__.get("_moves_weights")
        if found is None:
            found = self.__dict__["_moves_weights"] = any(op.name == "learn" for ops in self.ticks for op in ops)
        return found

    def encoded(self) -> tuple:
        """``(code int64 (n, 4), args float64 (n, 3), tick_start int64 (T + 2,))`` for the numba
        interpreter: ``code[k] = (opcode, layer, flag, blend)``, ``args[k] = (value, eps, gain)``, and the
        ops of tick ``t`` are rows ``tick_start[t]:tick_start[t + 1]``. Built once per schedule."""
        cached = self.__dict__.get("_encoded")
        if cached is None:
            ops = [op for tick_ops in self.ticks for op in tick_ops]
            code = np.array([(OPCODES[op.name], op.layer, op.flag, op.blend) for op in ops],
                            dtype=np.int64).reshape(-1, 4)
            args = np.array([(op.value, op.eps, op.gain) for op in ops], dtype=np.float64).reshape(-1, 3)
            tick_start = np.cumsum([0] + [len(tick_ops) for tick_ops in self.ticks]).astype(np.int64)
            cached = self.__dict__["_encoded"] = (code, args, tick_start)
        return cached

    @property
    def learns_at_the_end(self) -> bool:
        """Whether the only ops that write gradients are ``hebbian`` ops of the last tick (so a plain
        SGD step can apply them straight to the weights)."""
        found = self.__dict__.get("_learns_at_the_end")
        if found is None:
            found = self.__dict__["_learns_at_the_end"] = (
                not self.moves_weights and all(op.name != "hebbian" for ops in self.ticks[:-1] for op in ops))
        return found

    @property
    def learn_rate(self):
        """The one rate of every ``learn`` op, or ``None`` (no ``learn`` ops, or several rates)."""
        if "_learn_rate" not in self.__dict__:
            rates = {op.value for ops in self.ticks for op in ops if op.name == "learn"}
            self.__dict__["_learn_rate"] = rates.pop() if len(rates) == 1 else None
        return self.__dict__["_learn_rate"]

    @property
    def first_learn_op(self) -> int:
        """Row of the first ``learn`` op in :meth:`encoded`."""
        code = self.encoded()[0]
        return int(np.flatnonzero(code[:, 0] == OPCODES["learn"])[0])

    @property
    def writes_grads(self) -> bool:
        """Whether any op accumulates into the gradients (``hebbian`` or ``learn``)."""
        found = self.__dict__.get("_writes_grads")
        if found is None:
            found = self.__dict__["_writes_grads"] = any(
                op.name in ("hebbian", "learn") for ops in self.ticks for op in ops)
        return found

    def inference_only(self) -> "Schedule":
        """This schedule without its ``hebbian`` ops (built once)."""
        found = self.__dict__.get("_inference_only")
        if found is None:
            found = self.__dict__["_inference_only"] = Schedule(
                [[op for op in ops if op.name != "hebbian"] for ops in self.ticks], self.output)
        return found

    def check(self, net) -> None:
        """A ValueError naming the op if a layer is out of range or feeds back into the input."""
        for tick, ops in enumerate(self.ticks):
            for op in ops:
                if op.name not in OPCODES:
                    raise ValueError(f"schedule tick {tick}: unknown op {op.name!r}; known: "
                                     f"{', '.join(OPCODES)}")
                if not (np.isfinite(op.value) and np.isfinite(op.eps) and np.isfinite(op.gain)):
                    raise ValueError(f"schedule tick {tick}: {op.name} on layer {op.layer} has a "
                                     f"non-finite argument ({op.value}, {op.eps}, {op.gain})")
                if op.name in ("soft_target", "energy"):
                    continue
                lowest = 2 if op.name == "feedback" else 1
                highest = (net.n_layers - 1 if op.name in ("relax", "relax_fixed", "reset", "delta")
                           else net.n_layers)
                if not lowest <= op.layer <= highest:
                    raise ValueError(f"schedule tick {tick}: {op.name} on layer {op.layer}; allowed "
                                     f"layers {lowest}..{highest} for a {net.n_layers}-layer network")

    # -- counting from the same schedule ---------------------------------------------------------
    def templates(self, net, batch: int) -> list:
        """The counted work of each tick, ``[Template, ...]`` (index = tick), from the same ops the
        backends run (see :mod:`neurosim.circuit.work` for the units)."""
        key = (id(net), net.n_layers, batch)
        cache = self.__dict__.setdefault("_templates", {})
        entry = cache.get(key)
        if entry is None or entry[0]() is not net:  # an id can be reused once a network is freed
            shared = {}  # ticks with the same ops share one template (see plan)
            found = []
            for ops in self.ticks:
                ops_key = tuple(ops)
                if ops_key not in shared:
                    shared[ops_key] = work.Template([event for op in ops for event in _events(net, batch, op)])
                found.append(shared[ops_key])
            entry = cache[key] = (weakref.ref(net), found)
            self.__dict__.pop("_plans", None)  # plans point into the templates they were built from
        return entry[1]

    def plan(self, net, batch: int, first: int, last: int) -> list:
        """``[(template, first tick, last tick), ...]``: ticks ``first..last`` with runs of identical
        ticks merged, so recording T alike ticks costs one call (built once per range)."""
        templates = self.templates(net, batch)
        key = (id(templates), first, last)
        cache = self.__dict__.setdefault("_plans", {})
        found = cache.get(key)
        if found is None:
            found = cache[key] = _merge_runs(templates, first, last)
        return found

    def rows(self) -> list:
        """``[(tick, name, layer, flag), ...]``: every op in execution order (row ``k`` of
        :meth:`encoded`)."""
        found = self.__dict__.get("_rows")
        if found is None:
            found = self.__dict__["_rows"] = [(tick, op.name, op.layer, op.flag)
                                              for tick, ops in enumerate(self.ticks) for op in ops]
        return found

    def event_book(self, net, batch: int, symmetric: bool = True) -> EventBook:
        """Who sends what in each op, for send-on-delta events (built once per network and batch)."""
        cache = self.__dict__.setdefault("_event_books", {})
        key = (id(net), net.n_layers, batch, symmetric)
        entry = cache.get(key)
        if entry is None or entry[0]() is not net:
            entry = cache[key] = (weakref.ref(net), EventBook(self.rows(), net, batch, symmetric))
        return entry[1]

    def local_templates(self, net, batch: int) -> list:
        """Per tick, the counted work of the ops that send no event (everything but ``predict`` and
        ``feedback``): the part of a send-on-delta tick whose counts do not depend on the messages."""
        cache = self.__dict__.setdefault("_local_templates", {})
        key = (id(net), net.n_layers, batch)
        entry = cache.get(key)
        if entry is None or entry[0]() is not net:
            shared, found = {}, []
            for ops in self.ticks:
                local = tuple(op for op in ops if op.name not in ("predict", "feedback"))
                if local not in shared:
                    shared[local] = work.Template([event for op in local for event in _events(net, batch, op)])
                found.append(shared[local])
            entry = cache[key] = (weakref.ref(net), found, {})
        return entry[1]

    def local_plan(self, net, batch: int, first: int, last: int) -> list:
        """:meth:`plan` of :meth:`local_templates`."""
        templates = self.local_templates(net, batch)
        plans = self.__dict__["_local_templates"][(id(net), net.n_layers, batch)][2]
        found = plans.get((first, last))
        if found is None:
            found = plans[(first, last)] = _merge_runs(templates, first, last)
        return found

    def partial(self, net, batch: int, tick: int):
        """The counted work of tick ``tick`` up to and including its ``energy`` op (what ran when
        that energy was not finite)."""
        ops = self.ticks[tick]
        stop = next((k for k, op in enumerate(ops) if op.name == "energy"), len(ops) - 1)
        return work.Template([event for op in ops[:stop + 1] for event in _events(net, batch, op)])


def _merge_runs(templates, first: int, last: int) -> list:
    """``[(template, first tick, last tick), ...]`` over ticks ``first..last``, runs of the same
    template object merged."""
    found = []
    for tick in range(first, last + 1):
        if found and found[-1][0] is templates[tick]:
            found[-1][2] = tick
        else:
            found.append([templates[tick], tick, tick])
    return [tuple(entry) for entry in found]


def _events(net, batch, op) -> list:
    layer = op.layer
    if op.name == "predict":
        return work.prediction(net, batch, layer, bool(op.flag) and layer >= 2)
    if op.name == "error":
        return [("error", layer, 0, batch * int(net.sizes[layer]), 0)]
    if op.name == "feedback":
        return [work.feedback(net, batch, layer)]
    if op.name == "relax":
        return [work.wavefront_value(net, batch, layer) if op.flag else work.value_update(net, batch, layer)]
    if op.name == "delta":
        return [work.derivative(net, batch, layer)]
    if op.name == "reset":
        return [("value_update", layer, 0, 2 * batch * int(net.sizes[layer]), 0)]
    if op.name == "relax_fixed":
        return [work.fixed_value_update(net, batch, layer)]
    if op.name == "hebbian":
        return [work.hebbian(net, batch, layer)]
    if op.name == "learn":
        return [work.hebbian(net, batch, layer), work.weight_update(net, layer)]
    if op.name == "soft_target":
        return [work.output_error(net, batch) if op.blend == BLENDS["keep"] else work.output_target(net, batch)]
    return []  # energy: a read-out of the simulation, not circuit work


# -- running a schedule ------------------------------------------------------------------------------
# Parameters below a quarter of the dtype's largest value cannot overflow from one bounded update.
_SAFE_LIMIT = {np.dtype(name): 0.25 * float(np.finfo(name).max) for name in ("float32", "float64")}
_NO_GRADS = {np.dtype(name): np.zeros(0, dtype=name) for name in ("float32", "float64")}
# What the kernels take for ``events`` when every population sends every tick (threshold < 0).
_DENSE_EVENTS = {np.dtype(name): (np.array([-1.0, 0.0]), np.zeros((2, 0), dtype=name), np.zeros(0, dtype=name),
                                  np.zeros((0, 4), dtype=np.int64), np.zeros((0, 2), dtype=np.int64),
                                  np.zeros(0, dtype=np.int64), np.zeros(0, dtype=name), np.zeros(0, dtype=np.int64))
                 for name in ("float32", "float64")}


def dense_events(dtype) -> tuple:
    """The kernels' ``events`` argument for dense ticks (every population sends every tick)."""
    return _DENSE_EVENTS[np.dtype(dtype)]


def _feedforward_template(net, ws):
    return work.cached(net, ws, ("feedforward",), lambda: [
        work.feedforward(net, ws.batch, l) for l in range(1, net.n_layers + 1)])


def _working_copy(ws, params) -> np.ndarray:
    """A copy of ``params`` in a buffer kept with the workspace ``ws`` (like its state buffers, it
    belongs to the step in progress). A fresh buffer per step, 2.7 MB at 784-512-512-10, put about
    25 of iPC's 85 us of Python per step there into allocating and faulting in new pages."""
    working = ws.__dict__.get("_working_params")
    if working is None or working.shape != params.shape or working.dtype != params.dtype:
        working = ws._working_params = aligned_zeros(params.shape, params.dtype)
    np.copyto(working, params)
    return working


class Run:
    """The state of one step under a schedule, passed explicitly through the step.

    net, ws: the network and its workspace (after the feed-forward initialisation and clamp);
    params: working parameters (``net.params`` itself unless the schedule moves weights, then a
    copy); back: feedback matrices laid out like ``params`` (``None``: symmetric, ``W`` itself);
    target: ``y``; grads: flat like ``params``, accumulates the Hebbian terms; energies: ``(T + 1,)``;
    events: a :class:`neurosim.events.SendOnDelta` (``None``: every population sends every tick).
    """

    def __init__(self, schedule: Schedule, net, ws, target, back=None, grads=None, events=None):
        checked = schedule.__dict__.get("_checked")
        if checked is None:
            checked = schedule.__dict__["_checked"] = set()
        n_layers = net.n_layers
        if n_layers not in checked:
            schedule.check(net)
            checked.add(n_layers)
        self.schedule, self.net, self.ws = schedule, net, ws
        self.params = _working_copy(ws, net.params) if schedule.moves_weights else net.params
        self.back = back
        self.target = target
        self._grads = grads
        self.energies = np.zeros(schedule.n_ticks + 1)
        self.stopped = (-1, -1)
        self.events = events
        self._event_buffers = None  # made by start_events or step, for the schedule that runs
        self._event_schedule = schedule  # the schedule whose rows the messages are counted on

    @property
    def grads(self) -> np.ndarray:
        """The accumulated Hebbian terms, flat like ``params`` (allocated on first use)."""
        if self._grads is None:
            self._grads = aligned_zeros(self.net.params.shape, self.net.params.dtype)
        return self._grads

    @grads.setter
    def grads(self, value) -> None:
        self._grads = value

    @property
    def back_matrices(self):
        """Per-layer ``B_l`` views of ``back`` (``None`` when symmetric)."""
        if self.back is None:
            return None
        net = self.net
        return [self.back[net.w_off[l]:net.b_off[l]].reshape(int(net.sizes[l]), int(net.sizes[l - 1]))
                for l in range(1, net.n_layers + 1)]

    # -- send-on-delta events ------------------------------------------------------------------
    def _new_event_buffers(self, schedule) -> tuple:
        """``(settings, sent, transposed, messages, stale, index, delta, ready)`` for the kernels (see
        :func:`neurosim.kernels.schedule.run_schedule`): ``messages`` is this step's own; the rest
        is kept with the workspace, so that a step allocates nothing large."""
        net, ws, events = self.net, self.ws, self.events
        dtype = net.params.dtype
        key = (dtype, events.threshold, events.relative, net.n_layers, net.params.shape[0])
        shared = ws.__dict__.setdefault("_event_buffers", {})
        found = shared.get(key)
        if found is None:
            if len(shared) >= 4:
                shared.clear()
            widest = int(max(ws.sizes))
            found = shared[key] = (
                np.array([events.threshold, float(events.relative)]), np.zeros((2, ws.values.shape[0]), dtype=dtype),
                np.zeros_like(net.params), np.zeros((net.n_layers + 1, 2), dtype=np.int64),
                np.zeros(widest, dtype=np.int64), np.zeros(widest, dtype=dtype),
                np.zeros(int(ws.sizes.sum()), dtype=np.int64))
        settings, sent, transposed, stale, index, delta, ready = found
        messages = np.zeros((schedule.encoded()[0].shape[0], 4), dtype=np.int64)
        return settings, sent, transposed, messages, stale, index, delta, ready

    def start_events(self) -> None:
        """After the feed-forward sweep and the clamp: every neuron has sent its value once, no error
        has been sent, nothing received from above (``feedback = 0``)."""
        if self.events is None:
            return
        self._event_buffers = self._new_event_buffers(self.schedule)
        _, sent, _, messages, stale, _, _, ready = self._event_buffers
        messages[...] = 0
        stale[...] = 0
        if self.compiled():
            event_kernels.start_events(self.ws.acts, sent, self.ws.feedback, ready)
        else:
            sent[0] = self.ws.acts
            sent[1] = 0.0
            self.ws.feedback[...] = 0.0

    def event_trace(self):
        """What the populations sent in this step (:class:`neurosim.events.EventTrace`), or ``None``
        without send-on-delta events."""
        if self._event_buffers is None:
            return None
        book = self._event_schedule.event_book(self.net, self.ws.batch, self.back is None)
        last = self.schedule.n_ticks if self.stopped[0] < 0 else self.stopped[0]
        return book.trace(self._event_buffers[3], last)

    def compiled(self) -> bool:
        """Whether the numba loop runs this step (numba backend, dense network)."""
        return not backends.is_reference() and getattr(self.net, "is_dense", False)

    def ticks(self, first: int, last: int) -> tuple:
        """Run ticks ``first..last`` on the backend in force and count their work; returns
        ``(tick, layer)`` of a non-finite energy, else ``(-1, -1)``."""
        if self.compiled():
            stopped = self._run_compiled(first, last)
        else:
            stopped = reference_backend.run(self, first, last)
        return self._count(first, last, stopped)

    def step(self, x, y, lr=None) -> tuple:
        """The whole step in one compiled call (numba backend, dense network): feed-forward
        initialisation, clamp, every tick and, with ``lr``, the plain-SGD update of ``net.params``
        (from the last tick's ``hebbian`` ops straight into the weights when
        ``schedule.learns_at_the_end``, no gradient array formed; else ``theta -= lr * grads``).

        Returns ``(status, tick, layer, loss, output)`` with the status of
        :func:`neurosim.kernels.schedule.run_step` (0 done; 1 diverged at (tick, layer); 2 the update
        would make a parameter non-finite; 3 the feed-forward pass overflowed; nothing updated unless 0).
        """
        net, ws, schedule = self.net, self.ws, self.schedule
        learn = lr is not None
        key = (id(schedule), learn, id(net))
        plan = ws.__dict__.get("_step_plans", {}).get(key)
        if plan is None or plan[0] is not schedule:
            plan = self._step_plan(learn)
            ws.__dict__.setdefault("_step_plans", {})[key] = plan
        (_, last, at_end, code, args, tick_start, learn_code, learn_args, learn_first, learn_last,
         needs_grads, scratch, predicted, bound, limit, feedforward_template, offsets, counted) = plan
        output = np.empty((ws.batch, net.n_outputs), dtype=net.params.dtype)
        grads = self.grads if needs_grads else _NO_GRADS[net.params.dtype]
        back = self.params if self.back is None else self.back
        if self.events is not None:
            # the messages are counted on the rows of the schedule that runs (no Hebbian ops at the end)
            self._event_schedule = schedule.inference_only() if at_end else schedule
            self._event_buffers = self._new_event_buffers(self._event_schedule)
        run_step = schedule_kernels.run_step if self._event_buffers is None else schedule_kernels.run_step_events
        status, tick, layer, loss = run_step(
            code, args, tick_start, last, learn_code, learn_args, learn_first, learn_last,
            learn, at_end, 0.0 if lr is None else float(lr), limit, x, y, net.params, self.params, back,
            offsets, ws.batch, net.act_code, ws.state, grads, scratch, predicted, self.energies, output, bound,
            self._kernel_events(net.params.dtype))
        counter = counting.sink()
        if counter is not None and status == 0 and self._event_buffers is None:
            for template, start, stop in counted:  # the usual case, from the plan: no lookups
                counter.record_ticks(template, start, stop)
            return 0, int(tick), int(layer), float(loss), output
        if counter is not None:
            counter.record_ticks(feedforward_template, 0, 0)
        if status != 3:
            self._count(0, last, (tick, layer) if status == 1 else (-1, -1))
        return int(status), int(tick), int(layer), float(loss), output

    def _step_plan(self, learn: bool) -> tuple:
        """Everything :meth:`step` passes that depends only on the schedule, the network and the
        workspace (built once per workspace)."""
        net, ws, schedule = self.net, self.ws, self.schedule
        last = schedule.n_ticks
        at_end = learn and schedule.learns_at_the_end
        code, args, tick_start = (schedule.inference_only() if at_end else schedule).encoded()
        learn_code, learn_args, learn_start = schedule.encoded()
        # No gradient array where the update needs none: Hebbian terms applied straight to the
        # weights, or weights that moved during inference at one rate (then the update is a blend).
        needs_grads = (schedule.inference_only() if at_end else schedule).writes_grads
        learn_first, learn_last = int(learn_start[last]), int(learn_start[last + 1] - 1)
        if learn and not at_end and schedule.learn_rate is not None:
            needs_grads = False
            learn_first = learn_last = schedule.first_learn_op
        scratch, predicted = self._workspace_buffers()
        bound = np.zeros(net.n_layers + 1)
        offsets = np.stack([net.w_off, net.b_off, ws.s_off, ws.sizes]).astype(np.int64)
        feedforward_template = _feedforward_template(net, ws)
        # what a step that ran to the end records: the feed-forward pass, then every tick
        counted = [(feedforward_template, 0, 0), *schedule.plan(net, ws.batch, 0, last)]
        return (schedule, last, at_end, code, args, tick_start, learn_code, learn_args, learn_first,
                learn_last, needs_grads, scratch, predicted, bound, _SAFE_LIMIT[net.params.dtype],
                feedforward_template, offsets, counted)

    def _kernel_events(self, dtype) -> tuple:
        return dense_events(dtype) if self._event_buffers is None else self._event_buffers

    def _count(self, first, last, stopped) -> tuple:
        tick, layer = int(stopped[0]), int(stopped[1])
        counter = counting.sink()
        if counter is not None and self._event_buffers is not None:
            self._count_events(counter, first, last, tick)
        elif counter is not None:
            end = last if tick < 0 else tick - 1
            if end >= first:
                for template, start, stop in self.schedule.plan(self.net, self.ws.batch, first, end):
                    counter.record_ticks(template, start, stop)
            if tick >= 0:
                counter.record_ticks(self.schedule.partial(self.net, self.ws.batch, tick), tick, tick)
        if tick >= 0:
            self.stopped = (tick, layer)
        return tick, layer

    def _count_events(self, counter, first, last, stopped_tick) -> None:
        """Count ticks ``first..last`` (up to a diverging tick's energy op) under send-on-delta: the
        ops that send no event from their templates, ``predict``/``feedback`` from the messages."""
        net, batch = self.net, self.ws.batch
        book = self._event_schedule.event_book(net, batch, self.back is None)
        messages = self._event_buffers[3]
        end = last if stopped_tick < 0 else stopped_tick
        if counting.active() is None:  # the running totals: sums only
            full_end = end if stopped_tick < 0 else end - 1
            if full_end >= first:
                for template, start, stop in self.schedule.local_plan(net, batch, first, full_end):
                    counter.record_ticks(template, start, stop)
            if stopped_tick >= 0:
                counter.record_ticks(self._local_partial(stopped_tick), stopped_tick, stopped_tick)
            counter.add_later(lambda: book.summary(messages, first, end))
            return
        local = self.schedule.local_templates(net, batch)
        rows = np.flatnonzero((book.tick >= first) & (book.tick <= end))
        by_tick = {}
        for k in rows:
            by_tick.setdefault(int(book.tick[k]), []).extend(book.row_events(int(k), messages))
        for tick in range(first, end + 1):
            local_events = local[tick] if tick != stopped_tick else self._local_partial(tick)
            counter.record_ticks(work.Template(list(local_events) + by_tick.get(tick, [])), tick, tick)

    def _local_partial(self, tick):
        ops = self.schedule.ticks[tick]
        stop = next((k for k, op in enumerate(ops) if op.name == "energy"), len(ops) - 1)
        return work.Template([event for op in ops[:stop + 1] if op.name not in ("predict", "feedback")
                              for event in _events(self.net, self.ws.batch, op)])

    def _workspace_buffers(self) -> tuple:
        """``(scratch, predicted)``: room for the largest ``W_l`` and for ``s(mu_L)``, kept with the
        workspace so that steps allocate nothing."""
        ws, net = self.ws, self.net
        buffers = ws.__dict__.get("_schedule_buffers")
        if buffers is None or buffers[0].dtype != net.params.dtype:
            largest = max(int(net.sizes[l]) * int(net.sizes[l - 1]) for l in range(1, net.n_layers + 1))
            buffers = ws._schedule_buffers = (np.empty(largest, dtype=net.params.dtype),
                                              np.empty((ws.batch, net.n_outputs), dtype=net.params.dtype))
        return buffers

    def _run_compiled(self, first, last, schedule=None):
        net, ws = self.net, self.ws
        code, args, tick_start = (schedule or self.schedule).encoded()
        scratch, predicted = self._workspace_buffers()
        back = self.params if self.back is None else self.back
        loop = schedule_kernels.run_schedule if self._event_buffers is None else schedule_kernels.run_schedule_events
        return loop(
            code, args, tick_start, first, last, self.params, back, net.w_off, net.b_off, ws.s_off,
            ws.sizes, ws.batch, net.act_code, self.target, ws.values, ws.acts, ws.preds, ws.errors,
            ws.feedback, self.grads, scratch, predicted, self.energies, self._kernel_events(net.params.dtype))
