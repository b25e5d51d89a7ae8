"""Oracle: hand counts. Absolute work and messages of circuits small enough to count on paper.

A 2-3-2 network with batch 1; ``P = 6`` MACs for one pass over ``W_1`` (3 x 2) or ``W_2`` (2 x 3).
Units as in :mod:`neurosim.counting`: a MAC per synapse used, elementwise ``ops`` per neuron and
sample, ``messages`` per scalar sent from one population to another.

Feed-forward (tick 0, every variant): MACs 2 P = 12; ops: bias and activation on the 3 hidden
neurons (6) and the bias on the 2 linear outputs (2) = 8; messages: the 2 inputs and the 3 hidden
activities sent up = 5.
"""
from __future__ import annotations

import numpy as np

import neurosim as ns
from neurosim import counting
from neurosim.events import SendOnDelta


def _counts(run):
    with counting.count() as counter:
        result = run()
    kernels = {kernel: (row["calls"], row["macs"], row["ops"], row["messages"])
               for kernel, row in counter.by_kernel().items()}
    return counter, kernels, result


def test_bp_step_by_hand():
    """BP: tick 0 the output error e_2 = y - yhat (2 ops), its feedback e_2 W_2 (P MACs, the 2
    errors sent down) and the Hebbian term of W_2 (P MACs, 2 ops for the bias); tick 1 the delta
    e_1 = f'(x_1) * fb_1 (derivative and product: 2 ops x 3) and the Hebbian term of W_1 (P MACs,
    3 ops). Totals 2 S + R = 30 MACs, 21 ops, 7 messages."""
    net = ns.mlp([2, 3, 2], seed=0)
    counter, kernels, _ = _counts(lambda: ns.variant("bp").gradients(net, np.ones((1, 2)), np.zeros((1, 2))))
    assert kernels == {"feedforward": (2, 12, 8, 5), "error": (1, 0, 2, 0), "feedback": (1, 6, 0, 2),
                       "hebbian": (2, 12, 5, 0), "derivative": (1, 0, 6, 0)}
    assert (counter.macs, counter.ops, counter.messages) == (30, 21, 7)
    assert {tick: (row["macs"], row["ops"], row["messages"]) for tick, row in counter.by_tick().items()} == {
        0: (24, 12, 7), 1: (6, 9, 0)}
    assert counter.ticks == 1 and counter.critical_path == 4  # forward 2, feedback, Hebbian of W_1


def test_one_il_tick_by_hand():
    """IL, T = 1. Tick 0: e_2 (2 ops), its feedback (P MACs, 2 messages). Tick 1: the value update
    of layer 1 (-e_1 + f' * fb, the step, the activation: 3 ops x 3, and e_1 -> x_1 one to one: 3
    messages), e_1 = x_1 - mu_1 (3 ops), the prediction of layer 2 (P MACs, mu and e: 2 ops x 2, the
    3 activities sent), its feedback (P MACs, 2 errors sent), the two Hebbian terms (2 P MACs,
    3 + 2 ops). Tick 1 alone: 24 MACs, 21 ops, 8 messages."""
    net = ns.mlp([2, 3, 2], seed=0)
    counter, kernels, _ = _counts(
        lambda: ns.variant("il", T=1, gamma=0.1).gradients(net, np.ones((1, 2)), np.zeros((1, 2))))
    assert kernels == {"feedforward": (2, 12, 8, 5), "error": (2, 0, 5, 0), "feedback": (2, 12, 0, 4),
                       "value_update": (1, 0, 9, 3), "prediction": (1, 6, 4, 3), "hebbian": (2, 12, 5, 0)}
    assert {tick: (row["macs"], row["ops"], row["messages"]) for tick, row in counter.by_tick().items()} == {
        0: (18, 10, 7), 1: (24, 21, 8)}
    assert (counter.macs, counter.ops, counter.messages) == (42, 31, 15)


def _hand_net():
    """Linear 2-3-2 network with hand-set weights (f' = 1, no biases):

        W_1 = [[1, 0], [0, 1], [1, 1]],   W_2 = [[1, 0, 0.01], [0, 2, 0.01]]
    """
    net = ns.mlp([2, 3, 2], activation="linear")
    net.weights[0][...] = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    net.weights[1][...] = [[1.0, 0.0, 0.01], [0.0, 2.0, 0.01]]
    net.biases[0][...] = 0.0
    net.biases[1][...] = 0.0
    return net


def test_send_on_delta_silences_a_known_set_of_neurons():
    """x = (1, 1): x_1 = (1, 1, 2), mu_2 = (1.02, 2.02); y = (2.02, 2.02), so e_2 = (1, 0).
    IL, T = 1, gamma = 0.5, threshold 0.01 (absolute):

    - tick 0: error[2] sends e_2 - 0: neuron 1 sends, neuron 2 (error 0) stays silent; fb_1 =
      (1, 0, 0.01), 1 message x fan-out 3 = 3 synaptic events;
    - tick 1: x_1 moves by 0.5 fb_1 = (0.5, 0, 0.005): only value neuron 1 sends (0.005 <= 0.01),
      so mu_2 += 0.5 W_2[:, 1]: 1 message x fan-out 2 = 2 synaptic events; then e_2 = (0.5, 0):
      error neuron 1 sends its change -0.5, neuron 2 stays silent: 1 message, 3 synaptic events.
      Of the 5 neurons that relax, 2 sent on the one tick: an active fraction of 2/5.

    MACs: feed-forward 12, synaptic events 3 + 2 + 3, Hebbian terms 2 x 6: 32. Messages: feed-forward
    5, tick 0 one, tick 1 the one-to-one e_1 -> x_1 wires (3) and two: 11.
    """
    net = _hand_net()
    x, y = np.array([[1.0, 1.0]]), np.array([[2.02, 2.02]])
    assert np.allclose(net.forward(x), [[1.02, 2.02]])
    counter, kernels, step = _counts(
        lambda: ns.variant("il", T=1, gamma=0.5).compute(net, x, y, events=SendOnDelta(0.01)))
    trace = step.events
    assert trace.populations == ("value[0]", "value[1]", "error[2]")
    assert trace.sent.tolist() == [[0, 0, 1], [0, 1, 1]]
    assert trace.total() == 3 + 5  # plus the feed-forward sweep
    # one relaxation tick, 3 + 2 relaxing neurons (the clamped input does not count), 2 of them sent
    assert trace.active_fraction() == 2 / 5
    connections = trace.per_connection()
    assert (connections["W[1]"]["synaptic_events"], connections["W[2]"]["synaptic_events"],
            connections["W[2]^T"]["synaptic_events"]) == (0, 2, 6)
    assert kernels["prediction"] == (1, 2, 4, 1)
    assert kernels["feedback"] == (2, 6, 0, 2)
    assert (counter.macs, counter.ops, counter.messages) == (32, 31, 11)
    # the Hebbian terms read what the synapses received: W_2 saw (1.5, 1, 2), not x_1's 2.005
    (dW1, db1), (dW2, db2) = net.grad_views(step.grads)
    assert np.max(np.abs(dW2 + np.outer([0.5, 0.0], [1.5, 1.0, 2.0]))) < 1e-12
    assert np.max(np.abs(db2 + np.array([0.5, 0.0]))) < 1e-12
    assert np.max(np.abs(dW1 + np.outer([0.5, 0.0, 0.005], [1.0, 1.0]))) < 1e-12


def test_relative_send_on_delta_by_hand():
    """x = (2, 2): x_1 = (2, 2, 4), mu_2 = (2.04, 4.04); y = (3.04, 4.04), e_2 = (1, 0). Relative
    threshold 0.3: at tick 0 error neuron 1 sends (|1 - 0| > 0.3 |0|); at tick 1 value neuron 1
    moves by 0.5 <= 0.3 x 2, so no value neuron sends, mu_2 and e_2 stay put and no error is sent.
    (An absolute threshold of 0.3 would let value neuron 1 send.)"""
    net = _hand_net()
    x, y = np.array([[2.0, 2.0]]), np.array([[3.04, 4.04]])
    counter, kernels, step = _counts(
        lambda: ns.variant("il", T=1, gamma=0.5).compute(net, x, y, events=SendOnDelta(0.3, relative=True)))
    assert step.events.sent.tolist() == [[0, 0, 1], [0, 0, 0]]
    assert kernels["prediction"] == (1, 0, 4, 0)
    assert kernels["feedback"] == (2, 3, 0, 1)
    assert (counter.macs, counter.messages) == (12 + 3 + 12, 5 + 1 + 3)
    absolute = ns.variant("il", T=1, gamma=0.5).compute(net, x, y, events=SendOnDelta(0.3))
    assert absolute.events.sent.tolist() == [[0, 0, 1], [0, 1, 1]]
