"""The work each circuit operation does, as event templates for :mod:`neurosim.counting`.

One definition serves the dense kernels (:mod:`.ops`) and the generic layer path (:mod:`.generic`),
so both count alike. An event template is ``(kernel, layer, macs, ops, messages)``; ``emit`` stamps
templates with a tick. MACs come from the layer contract (``net.layer_macs``, ``net.feedback_macs``);
elementwise ``ops`` and ``messages`` from population sizes (see :mod:`neurosim.counting` for units).
"""
from __future__ import annotations

from .. import counting


class Template(tuple):
    """Event templates with their per-kernel sums precomputed, so the always-on totals add a few
    integers per call however many layers and ticks it covers."""

    def __new__(cls, events):
        template = super().__new__(cls, (tuple(event) for event in events))
        template.summary = counting.summarise(template)
        return template


def cached(net, ws, key, build) -> Template:
    """The template ``build()`` for this workspace, built once (its sizes never change)."""
    cache = ws.__dict__.setdefault("_work_templates", {})
    full_key = (net.n_layers,) + key
    template = cache.get(full_key)
    if template is None:
        template = cache[full_key] = Template(build())
    return template


def _size(net, layer) -> int:
    return int(net.sizes[layer])


def feedforward(net, batch, layer) -> tuple:
    """x_l = mu_l = W_l phi(x_{l-1}) + b_l: bias add (+ activation for hidden layers)."""
    hidden = layer < net.n_layers
    return ("feedforward", layer, net.layer_macs(layer, batch),
            batch * _size(net, layer) * (2 if hidden else 1), batch * _size(net, layer - 1))


def prediction(net, batch, layer, with_feedback: bool) -> list:
    """mu_l and e_l = x_l - mu_l; with the feedback e_l W_l to the layer below."""
    events = [("prediction", layer, net.layer_macs(layer, batch), 2 * batch * _size(net, layer),
               batch * _size(net, layer - 1))]
    if with_feedback:
        events.append(feedback(net, batch, layer))
    return events


def feedback(net, batch, layer) -> tuple:
    """e_l W_l sent to the value neurons of layer l - 1."""
    return ("feedback", layer, net.feedback_macs(layer, batch), 0, batch * _size(net, layer))


def value_updates(net, batch) -> list:
    """x_l += gamma(-e_l + f'(x_l) * fb_l) and a_l = f(x_l), hidden layers."""
    return [value_update(net, batch, layer) for layer in range(1, net.n_layers)]


def value_update(net, batch, layer) -> tuple:
    """One hidden layer's x_l += gamma(-e_l + f'(x_l) * fb_l), a_l = f(x_l)."""
    return ("value_update", layer, 0, 3 * batch * _size(net, layer), batch * _size(net, layer))


def weight_update(net, layer) -> tuple:
    """W_l += lr dW_l and b_l += lr db_l applied within inference (iPC)."""
    n_out, n_in = _size(net, layer), _size(net, layer - 1)
    return ("weight_update", layer, 0, n_out * n_in + n_out, 0)


def output_target(net, batch) -> tuple:
    """A soft output target: s(mu_L), the blend with y and e_L = x_L - s(mu_L)."""
    return ("output_delta", net.n_layers, 0, 4 * batch * net.n_outputs, 0)


def hebbian(net, batch, layer) -> tuple:
    """scale * e_l^T phi(x_{l-1}) and the bias term."""
    return ("hebbian", layer, net.layer_macs(layer, batch), batch * _size(net, layer), 0)


def output_error(net, batch) -> tuple:
    return ("output_delta", net.n_layers, 0, batch * net.n_outputs, 0)


def derivative(net, batch, layer) -> tuple:
    """f'(x_l) times what arrived (BP's delta step) or the frozen gains of FPA."""
    return ("derivative", layer, 0, 2 * batch * _size(net, layer), 0)


def relax_tick(net, batch) -> list:
    """One parallel tick: every hidden value, then predictions, errors and feedback of l = 2..L."""
    events = value_updates(net, batch)
    for layer in range(2, net.n_layers + 1):
        events += prediction(net, batch, layer, True)
    return events


def fixed_prediction_tick(net, batch) -> list:
    """One FPA tick: feedback from the current errors, value updates, errors from frozen predictions."""
    events = [feedback(net, batch, layer) for layer in range(2, net.n_layers + 1)]
    events += value_updates(net, batch)
    events += [("error", layer, 0, batch * _size(net, layer), 0) for layer in range(1, net.n_layers + 1)]
    return events


def emit(counter, tick: int, events) -> None:
    """Record ``events`` (a list or a :class:`Template`) at ``tick``."""
    counter.record_ticks(events if isinstance(events, Template) else Template(events), tick, tick)


def emit_phase(counter, net, ws, tick_events, update_tick, n_ticks: int, stopped_at: int) -> None:
    """Record a fused inference phase: ``tick_events`` on ticks 1..last and each layer's Hebbian
    term at its tick, in execution order. ``stopped_at`` is the tick a divergence stopped it (-1: none);
    that tick's work ran, its Hebbian terms did not. The plan is built once per schedule."""
    key = ("phase", id(tick_events), n_ticks, stopped_at, update_tick.tobytes())
    cache = ws.__dict__.setdefault("_work_templates", {})
    plan = cache.get(key)
    if plan is None:
        plan = cache[key] = _phase_plan(net, ws, tick_events, update_tick, n_ticks, stopped_at)
    for template, first, last in plan:
        counter.record_ticks(template, first, last)


def _phase_plan(net, ws, tick_events, update_tick, n_ticks, stopped_at) -> list:
    last = n_ticks if stopped_at < 0 else stopped_at
    due = {}
    for layer in range(1, net.n_layers + 1):
        tick = int(update_tick[layer])
        if 0 <= tick <= last and (stopped_at < 0 or tick < stopped_at):
            due.setdefault(tick, []).append(layer)
    plan, start = [], 1
    for tick in sorted(due):
        if tick >= 1:
            if tick >= start:
                plan.append((tick_events, start, tick))
            start = tick + 1
        layers = tuple(due[tick])
        plan.append((cached(net, ws, ("hebbian",) + layers,
                            lambda: [hebbian(net, ws.batch, layer) for layer in layers]), tick, tick))
    if last >= start:
        plan.append((tick_events, start, last))
    return plan
