"""Z-IL with one of its three conditions broken, shared by the tests that need a variant that must
*not* equal BP (MLP, CNN, RNN) or must not take the wavefront shortcut."""
from __future__ import annotations

from neurosim.circuit.schedule import Op
from neurosim.variants.zil import ZIL


class GammaZIL(ZIL):
    """gamma = 0.999 instead of 1."""
    name = "zil_gamma_0999"

    def validate(self):
        self.hyper["gamma"] = 0.999


class LateZIL(ZIL):
    """Layer 1 (an RNN's first time step) takes its Hebbian term one tick late."""
    name = "zil_late"

    def n_ticks(self, net):
        return net.n_layers

    def update_ticks(self, net):
        ticks = super().update_ticks(net)
        ticks[1] += 1
        return ticks


class NoInitZIL(ZIL):
    """Hidden values start at 0 instead of at their feed-forward predictions (the schedule's tick 0
    resets them and forms their errors)."""
    name = "zil_no_init"

    def build_schedule(self, net):
        schedule = super().build_schedule(net)
        hidden = range(1, net.n_layers)
        schedule.ticks[0] = ([Op("reset", l, 0.0) for l in hidden] + [Op("error", l) for l in hidden]
                             + [Op("predict", l) for l in range(2, net.n_layers + 1)]
                             + [op for op in schedule.ticks[0] if op.name != "error"]
                             + [Op("error", net.n_layers)])
        return schedule


BROKEN = [GammaZIL, LateZIL, NoInitZIL]
BROKEN_IDS = ["gamma=0.999", "late tick", "no feed-forward init"]
