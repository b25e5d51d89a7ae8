"""Exceptions raised by neurosim."""
from __future__ import annotations


class DivergenceError(FloatingPointError):
    """A run produced a non-finite value; nothing was applied after the last good state.

    Attributes: ``tick`` (inference tick, or ``None`` outside inference), ``layer`` (1-based value
    layer, or ``None``), ``epoch`` and ``step`` when raised by training, and ``history`` (the
    metrics recorded up to the failure).
    """

    def __init__(self, message, tick=None, layer=None, epoch=None, step=None, history=None):
        super().__init__(message)
        self.tick = tick
        self.layer = layer
        self.epoch = epoch
        self.step = step
        self.history = history
