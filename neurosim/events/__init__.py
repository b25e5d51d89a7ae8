"""Event-driven simulation: populations send messages only when they have something new to say.

    sim = ns.Simulator(net, ns.variant("il"), events=ns.events.SendOnDelta(0.01))
    trace = sim.run(x, y)
    trace.events.total(), trace.events.per_population(), trace.events.plot()

:class:`Dense` (the default) is the classic simulation: every population sends its whole state on
every tick. :class:`SendOnDelta` is the event model of graded-spike chips (Loihi 2, SpiNNaker 2):

- every neuron of a sending population keeps the last value it sent, ``s``; on its population's turn
  it sends the message ``delta = now - s`` if ``|delta| > threshold`` (``relative=True``:
  ``|delta| > threshold * |s|``), and then ``s = now``. Threshold 0 sends every change.
- value neurons send ``phi(x_{l-1})`` up to the error neurons ``error[l]`` they predict; error
  neurons send ``e_l`` down to the value neurons ``value[l-1]`` below (through ``W_l^T`` or ``B_l``).
- a receiver integrates the deltas it receives: ``mu_l`` and the feedback ``fb_{l-1}`` are the sums
  of what was sent, so a receiver works from the sum of what was sent, as on a chip. The Hebbian
  term of ``W_l`` reads the presynaptic activity the synapses received and the error neuron's own
  ``e_l``.
- the feed-forward initialisation is one dense sweep (every neuron sends its value once), the
  clamped input never changes afterwards, and the one-to-one links between the value and error
  neurons of the same layer are local (not gated).
- where synapses change during inference (iPC), their receivers recompute their input from what
  they have received (local work, no message).

See ``docs/events.md`` for the model and what a threshold costs in accuracy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .trace import EventTrace

KINDS = ("dense", "send_on_delta")


@dataclass(frozen=True)
class Dense:
    """Every population sends its whole state on every tick (the classic simulation; the default)."""

    kind = "dense"

    def __repr__(self) -> str:
        return "Dense()"


@dataclass(frozen=True)
class SendOnDelta:
    """Send-on-delta messages: a neuron sends when its output moved by more than ``threshold``
    since the value it last sent (``relative``: more than ``threshold`` times that value's
    magnitude). ``threshold`` >= 0, finite; 0 sends every change."""

    threshold: float = 0.0
    relative: bool = False
    kind = "send_on_delta"

    def __post_init__(self):
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
        if not math.isfinite(threshold) or threshold < 0:
            raise ValueError(f"threshold must be a finite number >= 0, got {threshold}")
        if not isinstance(self.relative, bool):
            raise TypeError(f"relative must be True or False, got {self.relative!r}")
        object.__setattr__(self, "threshold", float(threshold))


def resolve(events, variant=None):
    """``events`` checked: ``None`` for dense simulation (``None`` or :class:`Dense`), else the
    :class:`SendOnDelta`. With ``variant``, a ValueError if it has no ticks to send events on."""
    if events is None or isinstance(events, Dense):
        return None
    if not isinstance(events, SendOnDelta):
        raise TypeError(f"events must be neurosim.events.Dense() or SendOnDelta(threshold), got "
                        f"{type(events).__name__}")
    if variant is not None and not getattr(variant, "has_ticks", False):
        raise ValueError(f"events: variant {variant.name!r} has no ticks for populations to send "
                         f"events on; send-on-delta needs a relaxation (il, fpa, zil, seqil, ipc, ilprox)")
    return events


def from_config(section: dict):
    """``[events]`` of a run configuration: ``kind = "dense"`` or ``"send_on_delta"`` with
    ``threshold`` and ``relative``."""
    section = dict(section)
    kind = section.pop("kind", "dense")
    if kind not in KINDS:
        raise ValueError(f"events.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "dense":
        if section:
            raise ValueError(f"events: unknown key {sorted(section)[0]!r} for kind 'dense'")
        return Dense()
    unknown = sorted(set(section) - {"threshold", "relative"})
    if unknown:
        raise ValueError(f"events: unknown key {unknown[0]!r}; known: threshold, relative")
    try:
        return SendOnDelta(**section)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"events.{exc}") from None


__all__ = ["Dense", "SendOnDelta", "EventTrace", "resolve", "from_config", "KINDS"]
