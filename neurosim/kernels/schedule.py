"""The numba loop that runs a schedule (see :mod:`neurosim.circuit.schedule`) on a dense circuit.

One compiled function interprets the encoded ops of ticks ``first..last`` on the flat buffers of
:mod:`neurosim.kernels.dense`; every op is a call of the dense kernels' building blocks (prediction
rows, feedback, value update, Hebbian product) or a short loop written here (soft output target,
energy). It knows the ops, never a variant: seqil, ipc and ilprox are different ``code`` arrays run
by the same loop. The NumPy reference is :mod:`neurosim.backends.reference`.
"""
from __future__ import annotations

import numpy as np

from .dense import (BLAS_MIN_BATCH, _block, _feedback_layer, _feedforward, _first_nonfinite_layer,
                    _learn_and_predict_layer,
                    _predict_layer, _update_bound, _update_stays_finite, _weight)
from .events import feedback_events, forget_rows, predict_events, refeed, repredict, start_events
from .views import buffers_fit, events_fit, matrix
from .scalar import FASTMATH, activate, activate_deriv_given, const, finite, njit, tanh

PREDICT, ERROR, FEEDBACK, RELAX, HEBBIAN, LEARN, SOFT_TARGET, ENERGY, RELAX_FIXED, RESET, DELTA = range(11)

# A ``learn l`` op followed by ``predict l`` runs as one pass over W_l (below BLAS_MIN_BATCH) when
# W_l has at least this many entries. Measured with iPC at batch 1, float32: 784-512-512-10 steps
# 12% faster fused (W_1 does not stay in cache between two passes); 64-128-128-10 steps 7% slower
# (W_1 stays in cache, and the separate loops are tighter).
FUSE_MIN_WEIGHTS = 65536


# The elementwise ops (relax, error, delta, energy) are inlined into the schedule loop at the numba
# level: a call with a dozen array arguments costs about as much as the loop itself over a layer of
# 128 neurons. Measured at 64-128-128-10, batch 1, float32: IL's tick 1.50 -> 1.31 us dense and
# 1.41 -> 1.14 us under send-on-delta with nothing sent; the cold compile did not grow (26 s against
# 28-29.5 s side by side: fewer signatures to compile).
@njit(cache=True, fastmath=FASTMATH, inline="always")
def _relax_layer(s_off, sizes, batch, layer, act_code, rate, error_gain, values, acts, errors, feedback):
    """x_l += rate (-g e_l + f'(x_l) * fb_l);  a_l = f(x_l)  (g = ``error_gain``)."""
    start = s_off[layer]
    stop = start + batch * sizes[layer]
    x, a, e, fb = values[start:stop], acts[start:stop], errors[start:stop], feedback[start:stop]
    if act_code == 1 and error_gain == 1.0:  # its own loop, without the switch, so LLVM vectorises it
        one = const(1.0, rate)
        for k in range(x.shape[0]):
            ak = a[k]
            v = x[k] + rate * (fb[k] * (one - ak * ak) - e[k])
            x[k] = v
            a[k] = tanh(v)
        return
    gain = const(error_gain, rate)
    for k in range(x.shape[0]):
        v = x[k]
        v = v + rate * (-gain * e[k] + activate_deriv_given(act_code, v, a[k]) * fb[k])
        x[k] = v
        a[k] = activate(act_code, v)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _relax_front(s_off, sizes, batch, layer, act_code, rate, values, acts, feedback):
    """x_l += rate f'(x_l) * fb_l: the relaxation from a zero error, a_l left as it was."""
    start = s_off[layer]
    stop = start + batch * sizes[layer]
    x, a, fb = values[start:stop], acts[start:stop], feedback[start:stop]
    for k in range(x.shape[0]):
        v = x[k]
        x[k] = v + rate * (activate_deriv_given(act_code, v, a[k]) * fb[k])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _delta_layer(s_off, sizes, batch, layer, act_code, values, acts, errors, feedback):
    """e_l = f'(x_l) * fb_l (BP's step down one layer)."""
    start = s_off[layer]
    stop = start + batch * sizes[layer]
    x, a, e, fb = values[start:stop], acts[start:stop], errors[start:stop], feedback[start:stop]
    for k in range(x.shape[0]):
        e[k] = activate_deriv_given(act_code, x[k], a[k]) * fb[k]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _relax_fixed_layer(s_off, sizes, batch, layer, act_code, rate, values, acts, preds, errors, feedback):
    """x_l += rate (-e_l + f'(mu_l) * fb_l); mu_l and a_l = f(mu_l) stay at their feed-forward values."""
    start = s_off[layer]
    stop = start + batch * sizes[layer]
    x, a, mu, e, fb = values[start:stop], acts[start:stop], preds[start:stop], errors[start:stop], feedback[start:stop]
    for k in range(x.shape[0]):  # slices, so k >= 0 is known and the loop vectorises
        gain = activate_deriv_given(act_code, mu[k], a[k])
        x[k] = x[k] + rate * (-e[k] + gain * fb[k])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _error_layer(s_off, sizes, batch, layer, values, preds, errors):
    start = s_off[layer]
    stop = start + batch * sizes[layer]
    x, mu, e = values[start:stop], preds[start:stop], errors[start:stop]
    for k in range(x.shape[0]):
        e[k] = x[k] - mu[k]


@njit(cache=True, fastmath=FASTMATH)
def _presynaptic_norm(s_off, sizes, batch, layer, acts, eps, bias=1.0, batch_mean=True):
    """n_l = mean_b ||a_{l-1}||^2 + bias + eps (float64); the batch sum for the mean when not
    ``batch_mean``."""
    start = s_off[layer - 1]
    a = acts[start:start + batch * sizes[layer - 1]]
    total = 0.0
    for k in range(a.shape[0]):
        total += np.float64(a[k]) * np.float64(a[k])
    if batch_mean:
        total = total / batch
    return total + bias + eps


@njit(cache=True, fastmath=FASTMATH)
def _hebbian_add(params_layout, w_off, b_off, s_off, sizes, batch, layer, scale, errors, acts, out,
                 scratch):
    """out[W_l] += scale * e_l^T a_{l-1},  out[b_l] += scale * sum_b e_l."""
    e = _block(errors, s_off, sizes, batch, layer)
    a_in = _block(acts, s_off, sizes, batch, layer - 1)
    gW = _weight(out, w_off, sizes, layer)
    n_out, n_in = gW.shape
    if batch >= BLAS_MIN_BATCH:
        product = matrix(scratch[:n_out * n_in], n_out, n_in)
        np.dot(e.T, a_in, product)
        for i in range(n_out):
            for j in range(n_in):
                gW[i, j] += scale * product[i, j]
    else:
        for b in range(batch):
            for i in range(n_out):
                coeff = scale * e[b, i]
                for j in range(n_in):
                    gW[i, j] += coeff * a_in[b, j]
    gb = out[b_off[layer]:b_off[layer] + n_out]
    for i in range(n_out):
        s = const(0.0, scale)
        for b in range(batch):
            s += e[b, i]
        gb[i] += scale * s


@njit(cache=True, fastmath=FASTMATH)
def _output_prediction(s_off, sizes, batch, mode, preds, out):
    """out = s(mu_L): the logits (mode 0) or their row-wise softmax (mode 1), (B, n_L)."""
    n_layers = sizes.shape[0] - 1
    mu = _block(preds, s_off, sizes, batch, n_layers)
    for b in range(batch):
        if mode == 0:
            for i in range(sizes[n_layers]):
                out[b, i] = mu[b, i]
            continue
        top = mu[b, 0]
        for i in range(1, sizes[n_layers]):
            top = max(top, mu[b, i])
        total = const(0.0, top)
        for i in range(sizes[n_layers]):
            v = np.exp(mu[b, i] - top)
            out[b, i] = v
            total += v
        for i in range(sizes[n_layers]):
            out[b, i] = out[b, i] / total


@njit(cache=True, fastmath=FASTMATH)
def _soft_target(s_off, sizes, batch, mode, blend, value, eps, norm_bias, target, values, acts, preds,
                 errors, predicted):
    """x_L = blend(y, s(mu_L)),  a_L = x_L,  e_L = x_L - s(mu_L)  (blend 3: x_L kept)."""
    n_layers = sizes.shape[0] - 1
    _output_prediction(s_off, sizes, batch, mode, preds, predicted)
    x = _block(values, s_off, sizes, batch, n_layers)
    a = _block(acts, s_off, sizes, batch, n_layers)
    e = _block(errors, s_off, sizes, batch, n_layers)
    one = const(1.0, x[0, 0])
    if blend == 3:
        for b in range(batch):
            for i in range(sizes[n_layers]):
                e[b, i] = x[b, i] - predicted[b, i]
        return
    pi = const(value, x[0, 0])
    keep = one - pi
    weight = one
    if blend != 0:
        weight = const(value * _presynaptic_norm(s_off, sizes, batch, n_layers, acts, eps, norm_bias,
                                                 blend == 1), x[0, 0])
    for b in range(batch):
        for i in range(sizes[n_layers]):
            s = predicted[b, i]
            if blend == 0:
                v = keep * target[b, i] + pi * s
            else:
                v = (s + weight * target[b, i]) / (one + weight)
            x[b, i] = v
            a[b, i] = v
            e[b, i] = v - s


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _energy(s_off, sizes, batch, mode, values, preds, errors):
    """1/2 sum_{l<L} ||e_l||^2 + the output term (mode 0: 1/2 ||e_L||^2; 1: cross-entropy), batch mean."""
    n_layers = sizes.shape[0] - 1
    total = 0.0
    stop = s_off[n_layers] if mode == 1 else s_off[n_layers] + batch * sizes[n_layers]
    e = errors[s_off[1]:stop]
    for k in range(e.shape[0]):
        total += np.float64(e[k]) * np.float64(e[k])
    total *= 0.5
    if mode == 1:
        x = _block(values, s_off, sizes, batch, n_layers)
        mu = _block(preds, s_off, sizes, batch, n_layers)
        for b in range(batch):
            top = np.float64(mu[b, 0])
            for i in range(1, sizes[n_layers]):
                top = max(top, np.float64(mu[b, i]))
            norm = 0.0
            for i in range(sizes[n_layers]):
                norm += np.exp(np.float64(mu[b, i]) - top)
            log_norm = np.log(norm)
            for i in range(sizes[n_layers]):
                total -= np.float64(x[b, i]) * (np.float64(mu[b, i]) - top - log_norm)
    return total / batch


@njit(cache=True)
def _check_buffers(params, back, w_off, b_off, s_off, sizes, batch, values, acts, preds, errors, feedback,
                   grads, scratch, predicted, target, events, send_on_delta):
    """ValueError unless every buffer of a schedule run fits the layout (the kernels' views are
    unchecked, :mod:`.views`): checked once per call, not per view."""
    length = values.shape[0]
    fits = (buffers_fit(params, w_off, b_off, s_off, sizes, batch, length, grads.shape[0], scratch.shape[0])
            and back.shape[0] == params.shape[0] and acts.shape[0] == length and preds.shape[0] == length
            and errors.shape[0] == length and feedback.shape[0] == length)
    n_out = sizes[sizes.shape[0] - 1]
    fits = fits and predicted.shape[0] == batch and predicted.shape[1] == n_out
    fits = fits and target.shape[0] == batch and target.shape[1] == n_out
    if send_on_delta:
        fits = fits and events_fit(events, params.shape[0], length, sizes)
    if not fits:
        raise ValueError("schedule kernel: a buffer does not fit the circuit's layout (sizes, offsets, batch)")


def _schedule_loop(send_on_delta: bool):
    """The schedule interpreter, compiled for dense ticks (``send_on_delta`` False) or for
    send-on-delta messages: ``send_on_delta`` is a constant of the closure, so numba drops the other
    kind's branches before typing them and a dense run never compiles the event kernels."""

    @njit(cache=True, fastmath=FASTMATH)
    def run_schedule(code, args, tick_start, first, last, params, back, w_off, b_off, s_off, sizes, batch,
                     act_code, target, values, acts, preds, errors, feedback, grads, scratch, predicted,
                     energies, events):
        """Run the encoded ops of ticks ``first..last`` (see :mod:`neurosim.circuit.schedule`).

        ``params``: the working parameters (``learn`` changes them); ``back``: feedback matrices laid
        out like ``params`` (``params`` itself for symmetric feedback); ``target``: ``y`` ``(B, n_L)``;
        ``grads``: accumulates the Hebbian terms; ``scratch``: at least the largest ``W_l``;
        ``predicted``: ``(B, n_L)`` work space; ``energies[t]`` receives each ``energy`` op's value.

        ``events``: ``(settings, sent, transposed, messages, stale, index, delta, ready)`` (see
        :meth:`neurosim.circuit.schedule.Run.start_events`). Compiled for send-on-delta
        (:data:`run_schedule_events`; ``settings[0]`` the threshold, ``settings[1]`` relative),
        ``predict`` and ``feedback`` send on delta (:mod:`neurosim.kernels.events`): ``messages[k]``
        gets op ``k``'s value and error messages and whether its receiver recomputed its input after a
        ``learn`` op (``stale[l]``) changed its synapses; Hebbian terms read the presynaptic activity
        the synapses received (``sent[0]``). Compiled for dense ticks (:data:`run_schedule`), every
        population sends every tick and ``events`` is not read.

        Returns ``(tick, layer)`` of the first tick whose energy is not finite (that tick's later ops
        did not run), or ``(-1, -1)``.
        """
        _check_buffers(params, back, w_off, b_off, s_off, sizes, batch, values, acts, preds, errors, feedback,
                       grads, scratch, predicted, target, events, send_on_delta)
        if first < 0 or last >= energies.shape[0] or last + 1 >= tick_start.shape[0]:
            raise ValueError("run_schedule: ticks first..last are outside the schedule or its energies")
        settings, sent, transposed, messages, stale, index, delta, ready = events
        threshold = settings[0]
        relative = settings[1] != 0.0
        presynaptic = sent[0] if send_on_delta else acts
        fused = -1  # a predict op already run together with the learn op before it
        for tick in range(first, last + 1):
            for k in range(tick_start[tick], tick_start[tick + 1]):
                if k == fused:
                    continue
                op = code[k, 0]
                layer = code[k, 1]
                if op == PREDICT and send_on_delta:
                    if stale[layer, 0]:
                        forget_rows(sizes, layer, ready)
                        repredict(params, w_off, b_off, s_off, sizes, batch, layer, sent[0], preds)
                        stale[layer, 0] = 0
                        messages[k, 2] = 1
                    messages[k, 0] = predict_events(params, transposed, w_off, s_off, sizes, batch, layer,
                                                    threshold, relative, values, acts, sent[0], preds, errors,
                                                    index, delta, ready)
                    if code[k, 2] == 1 and layer >= 2:
                        _send_errors(back, w_off, s_off, sizes, batch, layer, threshold, relative, errors,
                                     feedback, events, k)
                elif op == PREDICT:
                    _predict_layer(params, back, w_off, b_off, s_off, sizes, batch, layer,
                                   values, acts, preds, errors, feedback, code[k, 2] == 1 and layer >= 2)
                elif op == ERROR:
                    _error_layer(s_off, sizes, batch, layer, values, preds, errors)
                elif op == FEEDBACK and send_on_delta:
                    _send_errors(back, w_off, s_off, sizes, batch, layer, threshold, relative, errors,
                                 feedback, events, k)
                elif op == FEEDBACK:
                    _feedback_layer(back, w_off, s_off, sizes, batch, layer, errors, feedback)
                elif op == RELAX:
                    if code[k, 2] == 1:  # from a zero error, nothing downstream reads a_l (Z-IL's front)
                        _relax_front(s_off, sizes, batch, layer, act_code, const(args[k, 0], values[0]),
                                     values, acts, feedback)
                    else:
                        _relax_layer(s_off, sizes, batch, layer, act_code, const(args[k, 0], values[0]),
                                     args[k, 2], values, acts, errors, feedback)
                elif op == DELTA:
                    _delta_layer(s_off, sizes, batch, layer, act_code, values, acts, errors, feedback)
                elif op == RESET:
                    value = const(args[k, 0], values[0])
                    start = s_off[layer]
                    values[start:start + batch * sizes[layer]] = value
                    acts[start:start + batch * sizes[layer]] = activate(act_code, value)
                elif op == RELAX_FIXED:
                    _relax_fixed_layer(s_off, sizes, batch, layer, act_code, const(args[k, 0], values[0]),
                                       values, acts, preds, errors, feedback)
                elif op == HEBBIAN:
                    scale = args[k, 0] / batch
                    if code[k, 2] == 1:
                        scale = scale / _presynaptic_norm(s_off, sizes, batch, layer, presynaptic, args[k, 1])
                    _hebbian_add(params, w_off, b_off, s_off, sizes, batch, layer, const(scale, values[0]),
                                 errors, presynaptic, grads, scratch)
                elif (op == LEARN and not send_on_delta and batch < BLAS_MIN_BATCH and grads.shape[0] == 0
                      and sizes[layer] * sizes[layer - 1] >= FUSE_MIN_WEIGHTS
                      and k + 1 < tick_start[tick + 1] and code[k + 1, 0] == PREDICT and code[k + 1, 1] == layer):
                    # learn l, then predict l: one pass over W_l instead of two (same arithmetic)
                    _learn_and_predict_layer(params, back, w_off, b_off, s_off, sizes, batch, layer,
                                             const(args[k, 0] / batch, values[0]), values, acts, preds, errors,
                                             feedback, code[k + 1, 2] == 1 and layer >= 2)
                    fused = k + 1
                elif op == LEARN:
                    rate = const(args[k, 0] / batch, values[0])
                    _hebbian_add(params, w_off, b_off, s_off, sizes, batch, layer, rate, errors, presynaptic,
                                 params, scratch)
                    if grads.shape[0] > 0:  # an empty grads: the caller needs only the moved weights
                        _hebbian_add(params, w_off, b_off, s_off, sizes, batch, layer,
                                     const(-1.0 / batch, values[0]), errors, presynaptic, grads, scratch)
                    if send_on_delta:  # the receivers of W_l hold inputs formed with the old synapses
                        stale[layer, 0] = 1
                        stale[layer, 1] = 1
                elif op == SOFT_TARGET:
                    _soft_target(s_off, sizes, batch, code[k, 2], code[k, 3], args[k, 0], args[k, 1],
                                 args[k, 2], target, values, acts, preds, errors, predicted)
                elif op == ENERGY:
                    energy = _energy(s_off, sizes, batch, code[k, 2], values, preds, errors)
                    energies[tick] = energy
                    if not finite(energy):
                        return tick, _first_nonfinite_layer(s_off, sizes, batch, values, errors)
        return -1, -1

    return run_schedule


@njit(cache=True, fastmath=FASTMATH)
def _send_errors(back, w_off, s_off, sizes, batch, layer, threshold, relative, errors, feedback, events, k):
    """error[l] sends its changes down to value[l-1] (after a recomputation if B_l changed)."""
    _, sent, _, messages, stale, index, delta, _ = events
    if stale[layer, 1]:
        refeed(back, w_off, s_off, sizes, batch, layer, sent[1], feedback)
        stale[layer, 1] = 0
        messages[k, 3] = 1
    messages[k, 1] = feedback_events(back, w_off, s_off, sizes, batch, layer, threshold, relative, errors,
                                     sent[1], feedback, index, delta)


@njit(cache=True, fastmath=FASTMATH)
def sgd_update(params, grads, lr):
    """params -= lr * grads, only if every new parameter is finite; returns whether it was applied.

    Two passes (check, then write) over the flat arrays, so a step that would overflow leaves the
    parameters bit-identical.
    """
    rate = const(lr, params[0])
    for k in range(params.shape[0]):
        if not finite(params[k] - rate * grads[k]):
            return False
    for k in range(params.shape[0]):
        params[k] -= rate * grads[k]
    return True


@njit(cache=True, fastmath=FASTMATH)
def learn_hebbian(code, args, first_op, last_op, params, w_off, b_off, s_off, sizes, batch, lr, errors,
                  acts, limit, scratch, bound):
    """Apply the ``hebbian`` ops ``first_op..last_op`` of a schedule straight to the parameters as the
    plain-SGD step ``theta -= lr * grads``: W_l += rate_l e_l^T a_{l-1}, b_l += rate_l sum_b e_l with
    ``rate_l = -lr * scale_l / B`` (``/ n_l`` when normalised); all layers or none.

    ``bound[l] >= max(|W_l|, |b_l|)`` (the Frobenius norms the feed-forward pass measured). Every new
    parameter is certainly finite when ``bound[l] + |rate_l| * sum_b ||e_b|| max(1, ||a_b||) < limit``
    for every layer; otherwise each new value is computed and checked first. Returns whether the
    update was applied.
    """
    n_layers = sizes.shape[0] - 1
    rates = np.zeros(n_layers + 1)
    for k in range(first_op, last_op + 1):
        if code[k, 0] != HEBBIAN:
            continue
        layer = code[k, 1]
        scale = args[k, 0] / batch
        if code[k, 2] == 1:
            scale = scale / _presynaptic_norm(s_off, sizes, batch, layer, acts, args[k, 1])
        rates[layer] = -lr * scale
    for layer in range(1, n_layers + 1):
        if not bound[layer] + abs(rates[layer]) * _update_bound(s_off, sizes, batch, layer, errors, acts) < limit:
            for check in range(1, n_layers + 1):
                if not _update_stays_finite(params, w_off, b_off, s_off, sizes, batch, check,
                                            const(rates[check], params[0]), errors, acts):
                    return False
            break
    for layer in range(1, n_layers + 1):
        if rates[layer] != 0.0:
            _hebbian_add(params, w_off, b_off, s_off, sizes, batch, layer, const(rates[layer], params[0]),
                         errors, acts, params, scratch)
    return True


def _step_loop(send_on_delta: bool):
    """A whole step in one compiled call, for dense ticks or send-on-delta (as :func:`_schedule_loop`)."""

    @njit(cache=True, fastmath=FASTMATH)
    def run_step(code, args, tick_start, n_ticks, learn_code, learn_args, learn_first, learn_last, learn,
                 learn_at_end, lr, limit, x, y, params, working, back, offsets, batch, act_code, state, grads,
                 scratch, predicted, energies, output, param_bound, events):
        """A whole step under a schedule in one call: ``x_0 = x``, the feed-forward initialisation
        (``param_bound[l] >= |theta_l|`` on the way), ``output = x_L``, the loss, the clamp
        ``x_L = a_L = y``, ticks 0..n_ticks of :func:`run_schedule` on the ``working`` parameters, and,
        with ``learn``, the plain-SGD update of ``params``: straight from the last tick's ``hebbian``
        ops, rows ``learn_first..learn_last`` of ``learn_code``/``learn_args`` (:func:`learn_hebbian`;
        ``code`` then omits them), when ``learn_at_end``, else ``params -= lr * grads`` (:func:`sgd_update`).

        ``offsets``: rows ``w_off, b_off, s_off, sizes``; ``state``: rows ``values, acts, preds, errors,
        feedback`` (the workspace's ``state``), so that a call passes fewer arguments; ``events``: as for
        :func:`run_schedule` (send-on-delta from the feed-forward state, where every neuron has sent once).

        Returns ``(status, tick, layer, loss)``: 0 done; 1 a tick's energy became non-finite at
        (tick, layer); 2 the update would make a parameter non-finite; 3 the feed-forward pass overflowed
        (tick 0, the first layer whose prediction is not finite). Nothing is updated unless 0.
        """
        w_off, b_off, s_off, sizes = offsets[0], offsets[1], offsets[2], offsets[3]
        values, acts, preds, errors, feedback = state[0], state[1], state[2], state[3], state[4]
        n_layers = sizes.shape[0] - 1
        if (state.shape[0] < 5 or x.shape[0] != batch or x.shape[1] != sizes[0] or output.shape[0] != batch
                or output.shape[1] != sizes[n_layers] or working.shape[0] != params.shape[0]
                or param_bound.shape[0] < n_layers + 1):
            raise ValueError("run_step: an input, output or parameter buffer does not fit the circuit's layout")
        x_in = _block(values, s_off, sizes, batch, 0)
        a_in = _block(acts, s_off, sizes, batch, 0)
        for b in range(batch):
            for j in range(sizes[0]):
                x_in[b, j] = x[b, j]
                a_in[b, j] = x[b, j]
        _feedforward(params, w_off, b_off, s_off, sizes, batch, act_code, values, acts, preds, errors,
                     feedback, param_bound)
        x_out = _block(values, s_off, sizes, batch, n_layers)
        a_out = _block(acts, s_off, sizes, batch, n_layers)
        loss = 0.0
        for b in range(batch):
            for i in range(sizes[n_layers]):
                prediction = x_out[b, i]
                output[b, i] = prediction
                err = np.float64(y[b, i]) - np.float64(prediction)
                loss += err * err
                x_out[b, i] = y[b, i]
                a_out[b, i] = y[b, i]
        loss = 0.5 * loss / batch
        if not finite(loss):
            for layer in range(1, n_layers + 1):
                block = _block(preds, s_off, sizes, batch, layer)
                for b in range(batch):
                    for i in range(sizes[layer]):
                        if not finite(block[b, i]):
                            return 3, 0, layer, loss
            return 3, 0, n_layers, loss
        if send_on_delta:
            start_events(acts, events[1], feedback, events[7])
            events[3][:, :] = 0
            events[4][:, :] = 0
            tick, layer = run_schedule_events(code, args, tick_start, 0, n_ticks, working, back, w_off, b_off,
                                              s_off, sizes, batch, act_code, y, values, acts, preds, errors,
                                              feedback, grads, scratch, predicted, energies, events)
        else:
            tick, layer = run_schedule(code, args, tick_start, 0, n_ticks, working, back, w_off, b_off, s_off,
                                       sizes, batch, act_code, y, values, acts, preds, errors, feedback, grads,
                                       scratch, predicted, energies, events)
        if tick >= 0:
            return 1, tick, layer, loss
        if learn:
            if grads.shape[0] == 0 and not learn_at_end:
                # The weights moved during inference at rate lr_inner (args of the learn ops): the summed
                # gradient is (params - working) / lr_inner, so theta -= lr * grads is a blend.
                applied = blend_update(params, working, lr / learn_args[learn_first, 0])
            elif learn_at_end:
                applied = learn_hebbian(learn_code, learn_args, learn_first, learn_last, params, w_off, b_off,
                                        s_off, sizes, batch, lr, errors, events[1][0] if send_on_delta else acts,
                                        limit,
                                        scratch, param_bound)
            else:
                applied = sgd_update(params, grads, lr)
            if not applied:
                return 2, -1, -1, loss
        return 0, -1, -1, loss

    return run_step


@njit(cache=True, fastmath=FASTMATH)
def blend_update(params, moved, factor):
    """params += factor * (moved - params), only if every new parameter is finite (two passes);
    ``factor = 1`` copies ``moved``. Returns whether it was applied."""
    rate = const(factor, params[0])
    for k in range(params.shape[0]):
        if not finite(params[k] + rate * (moved[k] - params[k])):
            return False
    if factor == 1.0:
        for k in range(params.shape[0]):
            params[k] = moved[k]
        return True
    for k in range(params.shape[0]):
        params[k] += rate * (moved[k] - params[k])
    return True


# The two compiled flavours of each loop. A dense step compiles none of the event kernels (they
# were about a fifth of a cold compile when one loop held both).
run_schedule = _schedule_loop(False)
run_schedule_events = _schedule_loop(True)
run_step = _step_loop(False)
run_step_events = _step_loop(True)
