"""Z-IL with one of its three conditions broken, shared by the tests that need a variant that must
*not* equal BP (MLP, CNN, RNN) or must not take the wavefront shortcut."""
from __future__ import annotations

import neurosim as ns
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
    """Hidden values start at 0 instead of at their feed-forward predictions."""
    name = "zil_no_init"

    def feedforward_and_clamp(self, net, ws, x, y):
        super().feedforward_and_clamp(net, ws, x, y)
        for l in range(1, net.n_layers):
            ws.layer("values", l)[...] = 0.0
            ws.layer("acts", l)[...] = ns.activations.apply(net.activation, ws.layer("values", l))


BROKEN = [GammaZIL, LateZIL, NoInitZIL]
BROKEN_IDS = ["gamma=0.999", "late tick", "no feed-forward init"]
