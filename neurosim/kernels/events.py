"""numba kernels of send-on-delta messages between populations (the model: :mod:`neurosim.events`).

A sending neuron keeps the last value it sent (``sent``, laid out like the state buffers); on its
population's turn it sends ``delta = now - sent`` when ``|delta| > threshold`` (absolute) or
``|delta| > threshold * |sent|`` (relative), and then ``sent = now``. A receiver adds what arrives
to the input it holds, so its work is one row of synapses per message:

    value[l-1] -> error[l]   mu_l   += delta_j  W_l[:, j]     (row j of the transposed copy of W_l)
    error[l]   -> value[l-1] fb_l-1 += delta_i  B_l[i, :]     (row i of B_l; B_l = W_l if symmetric)

Synapses are read by presynaptic neuron, as a chip stores them: a message touches one contiguous row
of its fan-out and nothing else, so the work follows the messages, not neurons x ticks. The forward
rows are rows of ``W_l`` transposed (``transposed``, laid out like ``params``); row ``j`` is copied
from column ``j`` of ``W_l`` the first time neuron ``j`` sends in a step (``ready``, one flag per
neuron), so even that copy is paid only for neurons that send.

The NumPy reference of the same model is :mod:`neurosim.backends.reference`; the tests hold them equal.
"""
from __future__ import annotations

import numpy as np

from .dense import _bias, _block, _weight
from .scalar import FASTMATH, const, njit
from .views import matrix


@njit(cache=True)
def _fan_out(transposed, w_off, sizes, layer):
    """The transposed copy of ``W_l``: ``(n_{l-1}, n_l)``, row j = the synapses neuron j drives."""
    start = w_off[layer]
    return matrix(transposed[start:start + sizes[layer] * sizes[layer - 1]], sizes[layer - 1], sizes[layer])


@njit(cache=True, fastmath=FASTMATH)
def _sends(change, last, threshold, relative):
    """Whether a neuron whose output moved by ``change`` since it last sent ``last`` sends now (the
    one place the rule is written; a NaN change never sends)."""
    if relative:
        return abs(change) > threshold * abs(last)
    return abs(change) > threshold


@njit(cache=True, fastmath=FASTMATH)
def _count_senders(now, sent, threshold, relative):
    """How many neurons send (a compare per neuron; the loop vectorises)."""
    count = 0
    for j in range(now.shape[0]):
        count += _sends(now[j] - sent[j], sent[j], threshold, relative)
    return count


@njit(cache=True, fastmath=FASTMATH)
def _senders(now, sent, threshold, relative, index, delta):
    """The neurons of one sample that send: their indices in ``index[:n]`` and deltas in
    ``delta[:n]``; ``sent`` takes their new value. Returns ``n``. A NaN never sends (the energy
    check reports it where it arises).

    The compaction (a store per neuron at a running index) does not vectorise, the count does (about
    10x faster per neuron), so a population is counted first: one that is quiet on a tick costs a
    compare per neuron. (Counting chunk by chunk and compacting only the chunks that send was
    slower whenever more than one chunk in eight sent.)"""
    if _count_senders(now, sent, threshold, relative) == 0:
        return 0
    n = 0
    for j in range(now.shape[0]):
        change = now[j] - sent[j]
        send = _sends(change, sent[j], threshold, relative)
        index[n] = j  # written always, kept only if it sends: no branch to mispredict
        delta[n] = change
        sent[j] = now[j] if send else sent[j]
        n += send
    return n


@njit(cache=True, fastmath=FASTMATH)
def start_events(acts, sent, feedback, ready):
    """The state after the feed-forward initialisation, where every neuron has sent its value once:
    ``sent[0] = acts``, no error sent (``sent[1] = 0``, ``feedback = 0``), no synapse row copied
    yet for this step's weights (``ready = 0``)."""
    sent[0, :] = acts
    sent[1, :] = 0.0
    feedback[:] = 0.0
    ready[:] = 0


@njit(cache=True)
def _ready_start(sizes, layer):
    """Where the flags of value[l-1] start in ``ready`` (one flag per neuron, layer after layer)."""
    start = 0
    for below in range(layer - 1):
        start += sizes[below]
    return start


@njit(cache=True)
def forget_rows(sizes, layer, ready):
    """W_l changed: its copied rows are out of date."""
    start = _ready_start(sizes, layer)
    ready[start:start + sizes[layer - 1]] = 0


@njit(cache=True, fastmath=FASTMATH)
def repredict(params, w_off, b_off, s_off, sizes, batch, layer, sent, preds):
    """mu_l = W_l sent_{l-1} + b_l: the receiver recomputes its input from what it has received,
    after its synapses changed (no message is sent)."""
    W = _weight(params, w_off, sizes, layer)
    bias = _bias(params, b_off, sizes, layer)
    a_in = _block(sent, s_off, sizes, batch, layer - 1)
    mu = _block(preds, s_off, sizes, batch, layer)
    for b in range(batch):
        for i in range(sizes[layer]):
            total = bias[i]
            for j in range(sizes[layer - 1]):
                total += W[i, j] * a_in[b, j]
            mu[b, i] = total


@njit(cache=True, fastmath=FASTMATH)
def refeed(back, w_off, s_off, sizes, batch, layer, sent_errors, feedback):
    """fb_{l-1} = sent_l B_l: the value neurons below recompute their input after B_l changed."""
    W = _weight(back, w_off, sizes, layer)
    e = _block(sent_errors, s_off, sizes, batch, layer)
    fb = _block(feedback, s_off, sizes, batch, layer - 1)
    for b in range(batch):
        for j in range(sizes[layer - 1]):
            fb[b, j] = 0.0
        for i in range(sizes[layer]):
            err = e[b, i]
            for j in range(sizes[layer - 1]):
                fb[b, j] += err * W[i, j]


@njit(cache=True, fastmath=FASTMATH)
def predict_events(params, transposed, w_off, s_off, sizes, batch, layer, threshold, relative, values,
                   acts, sent, preds, errors, index, delta, ready):
    """value[l-1] sends: ``mu_l += delta_j W_l[:, j]`` for each sender ``j``; then
    ``e_l = x_l - mu_l``. Returns the number of messages (senders summed over the batch)."""
    W = _weight(params, w_off, sizes, layer)
    Wt = _fan_out(transposed, w_off, sizes, layer)
    flags = ready[_ready_start(sizes, layer):]
    a_in = _block(acts, s_off, sizes, batch, layer - 1)
    s_in = _block(sent, s_off, sizes, batch, layer - 1)
    x = _block(values, s_off, sizes, batch, layer)
    mu = _block(preds, s_off, sizes, batch, layer)
    e = _block(errors, s_off, sizes, batch, layer)
    n_out = sizes[layer]
    total = 0
    for b in range(batch):
        n = _senders(a_in[b], s_in[b], const(threshold, x[0, 0]), relative, index, delta)
        total += n
        mu_row = mu[b]
        for k in range(n):
            j = index[k]
            row = Wt[j]
            if flags[j] == 0:  # the first message of neuron j in this step: copy its synapse row
                for i in range(n_out):
                    row[i] = W[i, j]
                flags[j] = 1
            change = delta[k]
            for i in range(n_out):
                mu_row[i] += change * row[i]
        for i in range(n_out):
            e[b, i] = x[b, i] - mu_row[i]
    return total


@njit(cache=True, fastmath=FASTMATH)
def feedback_events(back, w_off, s_off, sizes, batch, layer, threshold, relative, errors, sent_errors,
                    feedback, index, delta):
    """error[l] sends: ``fb_{l-1} += delta_i B_l[i, :]`` for each sender ``i``. Returns the number
    of messages."""
    W = _weight(back, w_off, sizes, layer)
    e = _block(errors, s_off, sizes, batch, layer)
    s_e = _block(sent_errors, s_off, sizes, batch, layer)
    fb = _block(feedback, s_off, sizes, batch, layer - 1)
    n_in = sizes[layer - 1]
    total = 0
    for b in range(batch):
        n = _senders(e[b], s_e[b], const(threshold, e[0, 0]), relative, index, delta)
        total += n
        fb_row = fb[b]
        for k in range(n):
            change = delta[k]
            row = W[index[k]]
            for j in range(n_in):
                fb_row[j] += change * row[j]
    return total


@njit(cache=True)
def message_totals(messages, start, stop, value_fan, value_recompute, error_fan, error_recompute):
    """Totals of rows ``start..stop-1`` of a step's per-op ``messages`` (columns: value messages,
    error messages, value and error recomputations): ``(value messages, their synaptic events plus
    recomputed MACs, error messages, theirs)``, a message's synaptic events being ``rint(fan-out)``.
    One call instead of a dozen NumPy reductions per step (about 8 us of Python at batch 1)."""
    value_messages = 0
    value_macs = 0
    error_messages = 0
    error_macs = 0
    for k in range(start, stop):
        count = messages[k, 0]
        value_messages += count
        value_macs += np.int64(np.rint(count * value_fan[k])) + messages[k, 2] * value_recompute[k]
        count = messages[k, 1]
        error_messages += count
        error_macs += np.int64(np.rint(count * error_fan[k])) + messages[k, 3] * error_recompute[k]
    return value_messages, value_macs, error_messages, error_macs
