"""The work each circuit operation does, as event templates for :mod:`neurosim.counting`.

One definition serves the dense kernels (:mod:`.ops`) and the generic layer path (:mod:`.generic`),
so both count alike. An event template is ``(kernel, layer, macs, ops, messages, source, target)`` (a
5-tuple gets its source and target populations from :data:`neurosim.counting.ENDPOINTS`); ``emit``
stamps templates with a tick. MACs come from the layer contract (``net.layer_macs``, ``net.feedback_macs``);
elementwise ``ops`` and ``messages`` from population sizes (see :mod:`neurosim.counting` for units).
"""
from __future__ import annotations

from .. import counting


class Template(tuple):
    """Event templates with their per-kernel sums precomputed, so the always-on totals add a few
    integers per call however many layers and ticks it covers."""

    complete = True  # every event carries its source and target

    def __new__(cls, events):
        template = super().__new__(cls, (counting.with_endpoints(event) for event in events))
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


def layer_sums(net, batch: int) -> tuple:
    """``(S, Q, R, F_L)`` for the closed forms: ``S = sum_l P_l`` (every layer's product), ``Q`` the
    same from layer 2 on, ``R = sum_{l>=2} F_l`` (feedback products), ``F_L`` the top feedback."""
    layer = [net.layer_macs(l, batch) for l in range(1, net.n_layers + 1)]
    feedback = [net.feedback_macs(l, batch) for l in range(1, net.n_layers + 1)]
    return sum(layer), sum(layer[1:]), sum(feedback[1:]), feedback[-1] if net.n_layers >= 2 else 0


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


def value_update(net, batch, layer) -> tuple:
    """One hidden layer's x_l += gamma(-e_l + f'(x_l) * fb_l), a_l = f(x_l)."""
    return ("value_update", layer, 0, 3 * batch * _size(net, layer), batch * _size(net, layer))


def fixed_value_update(net, batch, layer) -> tuple:
    """x_l += gamma(-e_l + g_l * fb_l) with the frozen gain g_l = f'(mu_l) (FPA): the gain, the
    product, the sum and the step; the activity is not recomputed."""
    return ("value_update", layer, 0, 4 * batch * _size(net, layer), batch * _size(net, layer))


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


def emit(counter, tick: int, events) -> None:
    """Record ``events`` (a list or a :class:`Template`) at ``tick``."""
    counter.record_ticks(events if isinstance(events, Template) else Template(events), tick, tick)


# -- Z-IL's event-driven wavefront ------------------------------------------------------------------
def wavefront_value(net, batch, layer) -> tuple:
    """Z-IL at tick L - l: x_l += f'(x_l) * fb_l (derivative, product, sum). With gamma = 1 and
    e_l = 0 there is no -e_l term (no message from the error neuron), and a_l = f(x_l) is not formed:
    only the retired prediction of layer l + 1 would read it."""
    return ("value_update", layer, 0, 3 * batch * _size(net, layer), 0)


# -- COPI (neurosim.variants.copi): decorrelated inputs and the per-synapse weight rule ---------------
# Populations besides those of neurosim.counting.DEPENDENCIES: xd{l} the decorrelated input
# x_l = R_l y_{l-1} of layer l, R{l} its decorrelating matrix, C{l} the input second moments
# <x_l x_l^T>, Ws{l} the synaptic weights acting on xd{l} (W{l}, the effective W_l R_l, is what the
# network's forward pass and BP credit use).
def copi_decorrelate(net, batch, layer) -> tuple:
    """x_l = y_{l-1} R_l^T: the lateral (decorrelating) layer in front of layer l."""
    n_in = _size(net, layer - 1)
    return ("decorrelate", layer, batch * n_in * n_in, 0, batch * n_in)


def copi_moments(net, batch, layer) -> tuple:
    """<x x^T> = (x^T x) / B (the diagonal is <x_j^2>; C is it with the diagonal zeroed)."""
    n_in = _size(net, layer - 1)
    return ("input_moments", layer, batch * n_in * n_in, n_in * n_in, 0)


def copi_weights(net, batch, layer) -> tuple:
    """t = a + g delta (a = h - b); W += eta ((t^T x) / B - W diag<x^2>); b += (eta g / B) sum_b delta."""
    n_out, n_in = _size(net, layer), _size(net, layer - 1)
    return ("copi_weights", layer, batch * n_out * n_in,
            4 * batch * n_out + 5 * n_out * n_in + 2 * n_out, 0)


def copi_decorrelation_update(net, layer) -> tuple:
    """R_l -= eta_r C_l R_l."""
    n_in = _size(net, layer - 1)
    return ("decorrelation_update", layer, n_in ** 3, 2 * n_in * n_in, 0)


def copi_effective_weights(net, layer) -> tuple:
    """M_l = W_l R_l, the effective matrix the simulated network holds (bookkeeping of the
    simulation: a circuit applying R and W in turn never forms it)."""
    n_out, n_in = _size(net, layer), _size(net, layer - 1)
    return ("effective_weights", layer, n_out * n_in * n_in, 0, 0)


def copi_update(net, batch, layer) -> list:
    """Everything COPI's update of layer l runs once its delta is known."""
    return [copi_moments(net, batch, layer), copi_weights(net, batch, layer),
            copi_decorrelation_update(net, layer), copi_effective_weights(net, layer)]


# -- implicit SGD's inner solver (neurosim.variants.implicit_sgd) -------------------------------------
# One evaluation of the proximal objective P(theta) = L(theta) + ||theta - theta_b||^2 / (2 alpha)
# and its gradient: a forward pass, the output loss and delta, backpropagation, the prox term. The
# reductions over all parameters (the prox term's ||.||^2, ||grad P||^2) run layer after layer into
# the population ``objective``; theta's layer l is W{l}, grad P's is dW{l}, the deltas e{l}.
def _n_params(net, layer) -> int:
    return _size(net, layer) * _size(net, layer - 1) + _size(net, layer)


def solver_output_ops(output: str) -> int:
    """Elementwise ops per output element of the loss and the delta: ``"mse"``: d = t - z, d*d,
    the sum, z - y; ``"ce"``: the shifted logits, exp, sum, log, t * log p, its sum (loss) and
    shift, exp, sum, divide, p - y (softmax delta)."""
    return 4 if output == "mse" else 11


def solver_evaluation(net, batch, output: str) -> list:
    """One evaluation of P and grad P, in execution order."""
    L = net.n_layers
    events = [("solver_forward", l, net.layer_macs(l, batch),
               batch * _size(net, l) * (2 if l < L else 1), batch * _size(net, l - 1))
              for l in range(1, L + 1)]
    events.append(("solver_output", L, 0, solver_output_ops(output) * batch * _size(net, L), 0))
    for l in range(L, 0, -1):
        n_out, n_in = _size(net, l), _size(net, l - 1)
        events.append(("solver_gradient", l, net.layer_macs(l, batch),
                       batch * n_out + n_out * n_in + n_out, 0))
        if l > 1:
            events.append(("solver_backward", l, net.feedback_macs(l, batch), 2 * batch * n_in,
                           batch * n_out))
    # diff = theta - theta_b, ||diff||^2, grad += diff / alpha
    events += [("solver_prox", l, _n_params(net, l), 3 * _n_params(net, l), 0) for l in range(1, L + 1)]
    return events


def solver_norm(net) -> list:
    """||grad P||^2 (a dot product over every parameter)."""
    return [("solver_norm", l, _n_params(net, l), 0, 0) for l in range(1, net.n_layers + 1)]


def solver_step(net) -> list:
    """theta = theta_k - step * grad P."""
    return [("solver_step", l, 0, 2 * _n_params(net, l), 0) for l in range(1, net.n_layers + 1)]


counting.DEPENDENCIES.update({
    "decorrelate": (("a{l-1}", "R{l}"), ("xd{l}",)),
    "input_moments": (("xd{l}",), ("C{l}",)),
    "copi_weights": (("e{l}", "xd{l}", "x{l}", "C{l}", "Ws{l}"), ("Ws{l}",)),
    "decorrelation_update": (("C{l}", "R{l}"), ("R{l}",)),
    "effective_weights": (("Ws{l}", "R{l}"), ("W{l}",)),
    "solver_forward": (("a{l-1}", "W{l}"), ("x{l}", "a{l}")),
    "solver_output": (("x{l}",), ("e{l}", "objective")),
    "solver_gradient": (("e{l}", "a{l-1}"), ("dW{l}",)),
    "solver_backward": (("e{l}", "W{l}", "x{l-1}"), ("e{l-1}",)),
    "solver_prox": (("W{l}", "dW{l}", "objective"), ("dW{l}", "objective")),
    "solver_norm": (("dW{l}", "objective"), ("objective",)),
    "solver_step": (("W{l}", "dW{l}", "objective"), ("W{l}",)),
})
