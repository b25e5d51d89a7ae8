"""Training loop: mini-batches through a variant and an optimiser, metrics per epoch.

Nothing is lost on divergence: parameters are snapshotted before each update; if a variant's
inference or the updated parameters turn non-finite, the network is left at its last good state and
:class:`neurosim.DivergenceError` names the epoch, step, tick and layer, carrying the history so far.
"""
from __future__ import annotations

import time
import warnings
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field

import numpy as np

from . import events as event_models
from . import threads
from .progress import progress_bar
from .circuit.network import Network
from .datasets import Dataset
from .errors import DivergenceError
from .optim import SGD, Optimizer
from .validation import all_finite, check_int
from .variants.base import Step, Variant


@dataclass
class History:
    """Per-epoch metrics of a :func:`train` run (one entry per epoch in every list).

    train_loss: mean over the epoch's batches of 1/2 ||y - yhat||^2 (before each update);
    test_loss, test_accuracy: on the test split after the epoch (accuracy is NaN for regression);
    seconds: wall-clock training time of the epoch (evaluation excluded); ticks: inference ticks
    per training step; skipped: batches skipped after a divergence (``on_divergence="skip_batch"``).
    """

    variant: str = ""
    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    ticks: int = 0
    skipped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def plot(self, axes=None, label=None):
        """Learning curves: loss (train solid, test dashed) and test accuracy against epoch, in the
        variant's colour and marker (:mod:`neurosim.plotting`); returns the figure."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import LogLocator, MaxNLocator

        from .plotting import style

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), layout="constrained")
            fig.suptitle(f"learning curves: {label or self.variant}")
        else:
            fig = axes[0].figure
        label = label or self.variant
        look = style(label)
        common = {"color": look["color"], "marker": look["marker"], "markersize": 4}
        axes[0].plot(self.epoch, self.train_loss, linestyle="-", label=f"{label} train", **common)
        axes[0].plot(self.epoch, self.test_loss, linestyle="--", label=f"{label} test", **common)
        axes[0].set_xlabel("epoch")
        axes[0].set_ylabel("loss  mean 1/2||y - yhat||^2")
        axes[0].set_yscale("log")
        # a loss that moves less than a decade still gets readable ticks
        axes[0].yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes[0].set_title("loss")
        axes[1].plot(self.epoch, self.test_accuracy, linestyle=look["linestyle"], label=label, **common)
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("test accuracy")
        axes[1].set_title("test accuracy")
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        return fig


def evaluate(net: Network, dataset: Dataset, split: str = "test") -> dict:
    """``{"loss", "accuracy"}`` of the feed-forward network on a split (``"train"`` or ``"test"``)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    x = net.as_input(getattr(dataset, f"x_{split}"))
    labels = getattr(dataset, f"y_{split}")
    targets = dataset.targets(labels, net.dtype)
    out = net.forward(x)
    loss = float(0.5 * np.sum((targets - out) ** 2) / len(x))
    accuracy = float(np.mean(out.argmax(axis=1) == labels)) if dataset.task == "classification" else float("nan")
    return {"loss": loss, "accuracy": accuracy}


def _default_optimizer(variant) -> Optimizer:
    """The variant's own default (a wrong ``variant`` is reported by the checks that follow)."""
    chooser = getattr(variant, "default_optimizer", None)
    return chooser() if callable(chooser) else SGD(lr=0.05)


def _check_train_args(net, variant, dataset, optimizer, epochs, batch_size, seed):
    if not isinstance(net, Network):
        raise TypeError(f"net must be a neurosim Network, got {type(net).__name__}")
    if not isinstance(variant, Variant):
        raise TypeError(f"variant must come from neurosim.variant(...), got {type(variant).__name__}")
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a neurosim.datasets.Dataset, got {type(dataset).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must come from neurosim.optim, got {type(optimizer).__name__}")
    check_int(epochs, "epochs", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    check_int(seed, "seed", minimum=0)
    net.check_features(dataset.n_inputs, f"dataset {dataset.name!r}")
    if dataset.n_outputs != net.n_outputs:
        raise ValueError(f"dataset {dataset.name!r} has {dataset.n_outputs} outputs but the network "
                         f"has {net.n_outputs}")
    variant.check_network(net)


def _blas_threads(net, batch_size, blas_threads):
    if blas_threads is None:
        return None
    if blas_threads == "auto":
        return threads.auto_threads(net, batch_size)
    return check_int(blas_threads, "blas_threads", minimum=1)


class Trainer:
    """One training step at a time: ``Trainer(net, variant, optimizer).step(x, y)``.

    A step is the variant's inference phase and weight terms (``variant.compute``) followed by the
    optimiser's update, in place on ``net.params``. Nothing is lost on divergence: if the inference
    or the updated parameters turn non-finite, ``net.params`` is left exactly as before the step
    and :class:`neurosim.DivergenceError` says where. :func:`train` runs its epochs through this;
    benchmarks and custom loops use it directly. Returns the variant's :class:`~neurosim.Step`.
    ``check=False`` skips the argument checks, for callers that have made them already.
    """

    def __init__(self, net: Network, variant: Variant, optimizer: Optimizer | None = None,
                 check: bool = True, events=None):
        self.net, self.variant = net, variant
        self.optimizer = _default_optimizer(variant) if optimizer is None else optimizer
        self.events = event_models.resolve(events, variant)
        # passed on only when set, so a variant written before events existed still runs dense
        self._events = {} if self.events is None else {"events": self.events}
        if check:
            if not isinstance(net, Network):
                raise TypeError(f"net must be a neurosim Network, got {type(net).__name__}")
            if not isinstance(variant, Variant):
                raise TypeError(f"variant must come from neurosim.variant(...), got {type(variant).__name__}")
            if not isinstance(self.optimizer, Optimizer):
                raise TypeError(f"optimizer must come from neurosim.optim, got {type(self.optimizer).__name__}")
            variant.check_network(net)
            variant.check_optimizer(self.optimizer)
        # The parameters before an unfused update, restored if it diverges; the fused kernel,
        # which never needs them, uses the same buffer as scratch for its GEMM.
        self._snapshot = np.empty_like(net.params)

    def step(self, x, y) -> Step:
        """One training step on a batch ``x`` (B, ...) with targets ``y`` (B, n_out).

        With plain SGD (no momentum) a variant that has a fused kernel for the whole step
        (``variant.sgd_step``: ``il`` on dense networks) runs it, and the returned step's ``grads``
        is ``None``; otherwise ``variant.compute`` and then ``optimizer.step``.
        """
        net, optimizer = self.net, self.optimizer
        try:
            if type(optimizer) is SGD and optimizer.momentum == 0.0:
                step = self.variant.sgd_step(net, x, y, optimizer.lr, self._snapshot, **self._events)
                if step is not None:
                    return step
            step = self.variant.compute(net, x, y, **self._events)
        except DivergenceError as exc:  # raised before anything was updated
            raise DivergenceError(f"{exc}; weights and optimiser state kept at the last good state",
                                  exc.tick, exc.layer) from None
        if not all_finite(step.grads):
            raise DivergenceError(f"{self.variant.name}: non-finite gradient (loss {step.loss:.3g}); "
                                  f"weights and optimiser state kept at the last good state")
        if not np.isfinite(step.loss):
            raise DivergenceError(f"{self.variant.name}: the loss overflows ({step.loss}); nothing applied, "
                                  f"weights and optimiser state kept at the last good state")
        # Plain SGD keeps nothing between steps; other optimisers' running state (momentum, Adam's
        # moments, MQ's scales) is saved so that a diverging step can be undone whole.
        stateful = not (type(optimizer) is SGD and optimizer.momentum == 0.0)
        saved = optimizer.save_state() if stateful else None
        self._snapshot[...] = net.params
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
                optimizer.step(net, step.grads)
        except DivergenceError as exc:  # the optimiser applied nothing
            raise DivergenceError(f"{self.variant.name}: {exc}; weights and optimiser state kept at the last "
                                  f"good state (loss {step.loss:.3g})") from None
        if not all_finite(net.params):
            net.params[...] = self._snapshot
            if stateful:
                optimizer.load_state(saved)
            raise DivergenceError(
                f"{self.variant.name}: parameters became non-finite (loss {step.loss:.3g}); weights "
                f"and optimiser state restored to the last good state; lower the learning rate")
        return step


ON_DIVERGENCE = ("raise", "skip_batch")
DIVERGENCE_PATIENCE = 3  # batches in a row over divergence_factor x the running loss ...
DIVERGENCE_PATIENCE_SAMPLES = 96  # ... and at least this many samples: at batch size 1 one hard sample's
# loss can be hundreds of times the running value, and three such samples in a row are not rare


class _LastGood:
    """The newest state whose loss was sound: parameters, optimiser state, the variant's learned
    state and where it was (epoch and batch, from 1). Divergence recovery goes back to it."""

    def __init__(self, net, optimizer, variant):
        self.net, self.optimizer, self.variant = net, optimizer, variant
        self.params = net.params.copy()
        self._candidate = np.empty_like(net.params)
        self.optimizer_state = optimizer.save_state()
        self.variant_state = variant.learned_state(net)
        self.where, self.loss = (1, 0), float("nan")

    def hold(self) -> None:
        """Remember the state about to be evaluated (before a step)."""
        self._held = self._candidate  # the buffer stays the held state, whatever accept renames
        self._held[...] = self.net.params
        self._pending = (self.optimizer.save_state(), self.variant.learned_state(self.net))

    def accept(self, where, loss) -> None:
        """The held state's loss was sound: it becomes the last good state (the buffers trade
        places, no copy; :meth:`restore_held` reads the held buffer itself)."""
        self.params, self._candidate = self._candidate, self.params
        self.optimizer_state, self.variant_state = self._pending
        self.where, self.loss = where, loss

    def restore(self) -> None:
        self.net.params[...] = self.params
        self.optimizer.load_state(self.optimizer_state)
        self.variant.restore_learned_state(self.net, self.variant_state)

    def restore_held(self) -> None:
        """Back to the state held before the batch in progress (an interrupted step)."""
        self.net.params[...] = self._held
        self.optimizer.load_state(self._pending[0])
        self.variant.restore_learned_state(self.net, self._pending[1])


def train(net: Network, variant: Variant, dataset: Dataset, optimizer: Optimizer | None = None,
          epochs: int = 5, batch_size: int = 32, seed: int = 0, progress: bool = True,
          blas_threads="auto", events=None, divergence_factor: float = 100.0,
          on_divergence: str = "raise", checkpoint_dir=None, checkpoint_every: int | None = None,
          resume: bool = False) -> History:
    """Train ``net`` in place with ``variant`` and ``optimizer`` (default
    ``variant.default_optimizer()``: ``SGD(lr=1.0)`` for copi and ilprox, whose step is the whole
    parameter change, else ``SGD(lr=0.05)``).

    Each epoch shuffles the training set with ``seed + epoch``; the last batch may be smaller.
    Classification targets are one-hot. Samples are reshaped to the network's input by
    ``net.as_input`` (flat vectors, images ``(C, H, W)`` for a conv network, sequences ``(T, n_in)``
    for an RNN: 8x8 digits read row by row). Returns a :class:`History`.

    ``blas_threads``: threads the BLAS library may use during training; ``"auto"`` picks one thread
    for small matrix products (threads cost more than they save there, badly so on a busy machine)
    and leaves the library's default for large ones; an int sets it; ``None`` leaves it alone.

    ``events``: :class:`neurosim.events.SendOnDelta` to train with send-on-delta messages between
    populations (variants with ticks); ``None`` or :class:`neurosim.events.Dense` for dense ticks.

    Divergence is caught when it starts: a batch whose loss (at the weights it is given; the
    variant's own loss, cross-entropy for an ``output="ce"`` variant) is not finite, three batches in
    a row (and at least 96 samples: 96 batches at batch size 1, where one hard sample's loss can be
    hundreds of times the typical one) whose loss exceeds ``divergence_factor`` times the running
    value of the sound losses before them (an exponential average), or whose inference or update overflows, stops the run with
    :class:`neurosim.DivergenceError` naming the variant, epoch and batch (from 1), tick and layer.
    The network, the optimiser and the variant's learned state are then back at the last state whose
    loss was sound (within 2x of the running value). ``on_divergence="skip_batch"`` goes back to that
    state and carries on with the next batch instead (``history.skipped`` counts them).

    Checkpoints: with ``checkpoint_dir`` and ``checkpoint_every=N``, a checkpoint
    (:mod:`neurosim.checkpoint`) is written every ``N`` batches and at the end of every epoch;
    ``resume=True`` continues from the newest readable one in ``checkpoint_dir`` (the same network
    architecture, variant and optimiser are required) and ends exactly where an uninterrupted run
    would. Ctrl-C stops the run at the end of the batch in progress (a second Ctrl-C at once, undoing
    that batch), writes a checkpoint when checkpointing is on, and raises ``KeyboardInterrupt``.
    """
    from . import checkpoint as checkpoints
    from .validation import check_float

    optimizer = _default_optimizer(variant) if optimizer is None else optimizer
    _check_train_args(net, variant, dataset, optimizer, epochs, batch_size, seed)
    variant.check_optimizer(optimizer)
    events = event_models.resolve(events, variant)
    divergence_factor = check_float(divergence_factor, "divergence_factor", minimum=1.0)
    if divergence_factor == 1.0:
        raise ValueError("divergence_factor must be > 1 (a loss may exceed its running value somewhat)")
    if on_divergence not in ON_DIVERGENCE:
        raise ValueError(f"on_divergence must be one of {', '.join(map(repr, ON_DIVERGENCE))}, got {on_divergence!r}")
    if checkpoint_every is not None:
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
        if checkpoint_dir is None:
            raise ValueError("checkpoint_every needs a checkpoint_dir")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    x_all = net.check_input(net.as_input(dataset.x_train), "dataset.x_train")
    if len(x_all) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no training samples")
    if len(dataset.x_test) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no test samples to evaluate on")
    targets = dataset.targets(dataset.y_train, net.dtype)
    labels = dataset.y_train
    classify = dataset.task == "classification"
    n_samples = len(x_all)
    n_batches = -(-n_samples // batch_size)
    history = History(variant=variant.name, ticks=variant.n_ticks(net))
    first_epoch, first_batch, progress_sums = 0, 0, {"loss_sum": 0.0, "correct": 0, "seconds": 0.0}
    if resume:
        found = checkpoints.latest(checkpoint_dir)
        if found is not None:
            _check_resumable(found, net, variant, optimizer)
            net.params[...] = found.params
            optimizer.load_state(found.optimizer_state)
            variant.restore_learned_state(net, found.variant_state)
            for key, value in found.history.items():
                setattr(history, key, value)
            first_epoch, first_batch = found.epoch, found.batch
            progress_sums = {**progress_sums, **found.epoch_progress}
            for path, reason in found.skipped:
                warnings.warn(f"skipped checkpoint {path}: {reason}", RuntimeWarning, stacklevel=2)
    bar = progress_bar(total=epochs * n_batches, initial=first_epoch * n_batches + first_batch, desc=f"{variant.name}",
               disable=not progress, leave=False, unit="batch")
    trainer = Trainer(net, variant, optimizer, check=False, events=events)
    last_good = _LastGood(net, optimizer, variant)
    running, excess = None, 0  # exponential average of the sound losses; batches in a row far above it
    patience = max(DIVERGENCE_PATIENCE, -(-DIVERGENCE_PATIENCE_SAMPLES // batch_size))
    cleanup = ExitStack()
    cleanup.enter_context(threads.limit(_blas_threads(net, batch_size, blas_threads)))

    def save_checkpoint(epoch, batch, sums):
        checkpoints.save(checkpoint_dir, epoch=epoch, batch=batch, net=net, optimizer=optimizer, variant=variant,
                         history=history.to_dict(), epoch_progress=dict(sums))

    epoch, done, sums, started, in_step = first_epoch, first_batch, dict(progress_sums), time.perf_counter(), False
    stop = _CtrlC()
    cleanup.enter_context(stop)
    try:
        for epoch in range(first_epoch, epochs):
            order = np.random.default_rng(seed + epoch).permutation(n_samples)
            sums = progress_sums if epoch == first_epoch else {"loss_sum": 0.0, "correct": 0, "seconds": 0.0}
            started = time.perf_counter() - sums["seconds"]
            done = first_batch if epoch == first_epoch else 0
            for index in range(done, n_batches):
                batch = order[index * batch_size:(index + 1) * batch_size]
                where = (epoch + 1, index + 1)
                last_good.hold()
                in_step = True
                problem, step = None, None
                try:
                    step = trainer.step(x_all[batch], targets[batch])
                except DivergenceError as exc:
                    problem = exc
                if problem is None:
                    loss = float(step.loss)
                    watched = _watched_loss(variant, step, targets[batch], loss)
                    if not np.isfinite(loss):
                        problem = DivergenceError(f"{variant.name}: the loss is {loss} at the weights this batch "
                                                  f"was given")
                    elif running is not None and watched > divergence_factor * running:
                        excess += 1  # one outlying batch (at batch size 1, one hard sample) is not a trend
                        if excess >= patience:
                            problem = DivergenceError(
                                f"{variant.name}: loss {watched:.3g} is over {divergence_factor:g}x its running "
                                f"value {running:.3g} for {excess} batches in a row")
                    else:
                        excess = 0
                if problem is not None:
                    last_good.restore()
                    if on_divergence == "skip_batch":
                        history.skipped += 1
                        done, in_step = index + 1, False
                        bar.update(1)
                        continue
                    good_epoch, good_batch = last_good.where
                    raise DivergenceError(
                        f"{problem} (epoch {where[0]}, batch {where[1]}); weights, optimiser and variant state "
                        f"restored to the last sound state, before batch {good_batch} of epoch {good_epoch} "
                        f"(loss {last_good.loss:.3g})", problem.tick, problem.layer, where[0], where[1],
                        history) from None
                if running is None or watched <= 2.0 * running:
                    # Only losses near the running value move it (by at most 10% a batch), so a loss
                    # that climbs steadily, however slowly, leaves it behind and is caught.
                    last_good.accept(where, watched)
                    running = watched if running is None else 0.9 * running + 0.1 * watched
                sums["loss_sum"] += loss * len(batch)
                if classify:
                    sums["correct"] += int(np.sum(step.output.argmax(axis=1) == labels[batch]))
                done, in_step = index + 1, False
                bar.update(1)
                stop.check()  # Ctrl-C takes effect between batches, where the state is whole
                if checkpoint_every is not None and (index + 1) % checkpoint_every == 0 and index + 1 < n_batches:
                    sums["seconds"] = time.perf_counter() - started
                    save_checkpoint(epoch, index + 1, sums)
            seconds = time.perf_counter() - started
            test = evaluate(net, dataset, "test")
            history.epoch.append(epoch + 1)
            history.train_loss.append(sums["loss_sum"] / n_samples)
            history.train_accuracy.append(sums["correct"] / n_samples if classify else float("nan"))
            history.test_loss.append(test["loss"])
            history.test_accuracy.append(test["accuracy"])
            history.seconds.append(seconds)
            bar.set_postfix(loss=f"{history.train_loss[-1]:.4f}", test_acc=f"{test['accuracy']:.3f}")
            if checkpoint_dir is not None and checkpoint_every is not None:
                save_checkpoint(epoch + 1, 0, {"loss_sum": 0.0, "correct": 0, "seconds": 0.0})
            stop.check()
    except KeyboardInterrupt:
        # Ctrl-C: keep what was done. A batch cut short (a second Ctrl-C) is undone, so the
        # checkpoint is a state the run really passed through, and resuming repeats that batch.
        if in_step:
            last_good.restore_held()
        if checkpoint_dir is not None and checkpoint_every is not None:
            if len(history.epoch) > epoch:  # the epoch was finished and recorded
                save_checkpoint(epoch + 1, 0, {"loss_sum": 0.0, "correct": 0, "seconds": 0.0})
            else:
                sums["seconds"] = time.perf_counter() - started
                save_checkpoint(epoch, done, sums)
        raise
    finally:
        bar.close()
        cleanup.close()
    return history


class _CtrlC:
    """Ctrl-C during training takes effect at the end of the batch in progress (so the state is
    never caught halfway through a step); a second Ctrl-C stops at once. Off the main thread (a
    Dask worker, say) Python delivers no signals, and nothing is changed."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):  # pragma: no cover - an embedding that forbids it
                self._previous = None
        return self

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> bool:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _watched_loss(variant, step, targets, loss) -> float:
    """The loss divergence is judged on: the variant's own. A variant with a softmax cross-entropy
    output trains on ``-mean_b sum_k y log softmax(yhat)``, whose squared-error counterpart (what
    ``step.loss`` and the history report, for comparison with BP) may grow while training is sound."""
    if variant.hyper.get("output") != "ce" or step.output is None:
        return loss
    logits = np.asarray(step.output, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-np.sum(targets * log_softmax) / len(logits))


def _check_resumable(found, net, variant, optimizer) -> None:
    """A checkpoint continues only the run it came from: same network, variant and optimiser."""
    meta = found.meta
    if found.params.shape != net.params.shape or meta["network"]["dtype"] != str(net.params.dtype):
        raise ValueError(f"checkpoint {found.path}: written for {meta['network']['repr']} "
                         f"({meta['network']['dtype']}), not {net!r} ({net.params.dtype})")
    if meta["variant"] != repr(variant):
        raise ValueError(f"checkpoint {found.path}: written for {meta['variant']}, not {variant!r}")
    if meta["optimizer"]["repr"] != repr(optimizer):
        raise ValueError(f"checkpoint {found.path}: written for {meta['optimizer']['repr']}, not {optimizer!r}")
