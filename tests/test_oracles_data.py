"""Oracles: the data a run sees. Invariants observed on what ``ns.train`` actually feeds.

- Batch order: ``Trainer.step`` is wrapped to record every batch. Each epoch visits every training
  row exactly once (the last batch smaller), with its own target; the order changes from epoch to
  epoch (each epoch shuffles with ``seed + epoch``, as documented), and the same seed gives the same
  orders, another seed other orders.
- Divergence detection: with scripted losses (``Trainer.step`` replaced), a run stops when three
  batches in a row exceed ``divergence_factor`` times the running value of the sound losses before
  them, and that running value averages over them: one unusually good batch does not make the next
  ordinary one look like a divergence.
- Splits: no row of a shipped dataset's test split appears in its training split, and the splits
  are disjoint for user files split by the loaders too; MNIST-1D is standardised with training
  statistics only.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import datasets

N_ROWS, BATCH = 10, 4


def _tiny():
    """Ten rows, each identified by its first feature (row k holds k / 100), labels k % 3."""
    x = np.stack([np.arange(N_ROWS) / 100.0, np.linspace(-1.0, 1.0, N_ROWS)], axis=1)
    labels = np.arange(N_ROWS) % 3
    return ns.datasets.Dataset("tiny", x, labels, x[:3].copy(), labels[:3].copy(), n_classes=3)


def _batches(monkeypatch, seed, epochs=3, optimizer=None):
    """The rows of every batch ``ns.train`` feeds, per epoch, and whether each target matched."""
    fed = []
    original = ns.Trainer.step

    def spy(self, x, y):
        rows = np.rint(np.asarray(x)[:, 0] * 100).astype(int)
        assert np.array_equal(np.asarray(y), np.eye(3)[rows % 3]), "a batch's targets are not its rows'"
        fed.append(rows.tolist())
        return original(self, x, y)

    monkeypatch.setattr(ns.Trainer, "step", spy)
    net = ns.mlp([2, 4, 3], seed=0)
    ns.train(net, ns.variant("bp"), _tiny(), optimizer or ns.optim.SGD(lr=0.01), epochs=epochs,
             batch_size=BATCH, seed=seed, progress=False)
    per_epoch = -(-N_ROWS // BATCH)
    assert len(fed) == epochs * per_epoch
    return [sum(fed[e * per_epoch:(e + 1) * per_epoch], []) for e in range(epochs)], fed


@pytest.mark.parametrize("optimizer", [None, ns.optim.Adam(lr=0.01)], ids=["fused-sgd", "adam"])
def test_every_epoch_visits_every_row_once_in_a_new_order(monkeypatch, optimizer):
    orders, fed = _batches(monkeypatch, seed=5, optimizer=optimizer)
    assert [len(batch) for batch in fed[:3]] == [4, 4, 2]  # the last batch is smaller, not dropped
    for order in orders:
        assert sorted(order) == list(range(N_ROWS))
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]
    for epoch, order in enumerate(orders):  # the documented shuffle: seed + epoch
        assert order == np.random.default_rng(5 + epoch).permutation(N_ROWS).tolist()


def test_batch_orders_are_reproducible_from_the_seed(monkeypatch):
    first, _ = _batches(monkeypatch, seed=7)
    again, _ = _batches(monkeypatch, seed=7)
    other, _ = _batches(monkeypatch, seed=8)
    assert first == again
    assert first != other


def _scripted(monkeypatch, losses, divergence_factor, batch_size=1):
    """Train one epoch of ``len(losses)`` batches of ``batch_size`` rows where batch k reports
    ``losses[k]`` (weights left alone)."""
    from neurosim.variants.base import Step

    seen = []

    def scripted(self, x, y):
        seen.append(len(seen))
        return Step(None, losses[len(seen) - 1], np.zeros((len(x), 3)))

    monkeypatch.setattr(ns.Trainer, "step", scripted)
    rows = len(losses) * batch_size
    x = np.stack([np.arange(rows) / 1e4, np.linspace(-1.0, 1.0, rows)], axis=1)
    data = ns.datasets.Dataset("scripted", x, np.arange(rows) % 3, x[:3].copy(), np.arange(3), n_classes=3)
    ns.train(ns.mlp([2, 4, 3], seed=0), ns.variant("bp"), data, epochs=1, batch_size=batch_size,
             progress=False, divergence_factor=divergence_factor)
    return seen


def test_divergence_is_judged_against_a_running_value_of_the_sound_losses(monkeypatch):
    """Steady losses of 1, ``divergence_factor = 5``: one unusually good batch (0.001) does not make
    the next ordinary ones look like a divergence (the running value averages over the sound losses),
    nor do two outlying batches of 6; at batch size 32 three in a row stop the run at the third."""
    steady = [1.0] * 5
    for batch_size in (1, 32):
        assert len(_scripted(monkeypatch, steady + [0.001] + [1.0] * 4, 5.0, batch_size)) == 10
        assert len(_scripted(monkeypatch, steady + [6.0, 6.0] + [1.0] * 3, 5.0, batch_size)) == 10
    with pytest.raises(ns.DivergenceError, match=r"over 5x its running value 1 .*\(epoch 1, batch 8\)") as info:
        _scripted(monkeypatch, steady + [6.0, 6.0, 6.0] + [1.0] * 2, 5.0, batch_size=32)
    assert (info.value.epoch, info.value.step) == (1, 8)


def test_at_batch_size_1_the_excess_must_last_96_samples(monkeypatch):
    """Three hard samples in a row are not a divergence at batch size 1; 96 are, at the 96th."""
    steady = [1.0] * 5
    assert len(_scripted(monkeypatch, steady + [6.0] * 3 + [1.0] * 2, 5.0)) == 10
    assert len(_scripted(monkeypatch, steady + [6.0] * 95 + [1.0], 5.0)) == 101
    with pytest.raises(ns.DivergenceError, match=r"for 96 batches in a row \(epoch 1, batch 101\)"):
        _scripted(monkeypatch, steady + [6.0] * 100, 5.0)


def _rows(array) -> set:
    flat = np.ascontiguousarray(array).reshape(len(array), -1)
    return {row.tobytes() for row in flat}


SHIPPED = {"digits": lambda: datasets.digits(), "digits-seed-3": lambda: datasets.digits(seed=3),
           "digits-images": lambda: datasets.digits(flat=False), "mnist1d": lambda: datasets.mnist1d(),
           "teacher": lambda: datasets.teacher()}


def test_every_shipped_dataset_is_covered():
    """The datasets that need no file of yours are all checked below; the others are the loaders."""
    built_in = {name.split("-")[0] for name in SHIPPED}
    assert set(datasets.available()) - built_in == {"npz", "idx"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_no_test_row_is_a_training_row(name):
    data = SHIPPED[name]()
    train, test = _rows(data.x_train), _rows(data.x_test)
    assert len(train) == data.n_train and len(test) == data.n_test  # no row twice within a split
    assert not train & test


def test_the_split_depends_on_its_seed():
    a, b = datasets.digits(seed=0), datasets.digits(seed=1)
    assert _rows(a.x_test) != _rows(b.x_test)
    assert _rows(a.x_train) | _rows(a.x_test) == _rows(b.x_train) | _rows(b.x_test)


def test_mnist1d_is_standardised_with_training_statistics_only():
    data = datasets.mnist1d()
    assert np.max(np.abs(data.x_train.mean(axis=0))) < 1e-12
    assert np.max(np.abs(data.x_train.std(axis=0) - 1.0)) < 1e-12
    assert np.max(np.abs(data.x_test.mean(axis=0))) > 1e-6  # the test set was not used to centre


def test_loaders_split_user_files_without_overlap(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((50, 6))
    labels = np.arange(50) % 5
    np.savez(tmp_path / "mine.npz", x_train=x, y_train=labels)
    datasets.write_idx(tmp_path / "images.idx", (x * 255).astype(np.uint8))
    datasets.write_idx(tmp_path / "labels.idx", labels.astype(np.uint8))
    for data in (datasets.load("npz", path=tmp_path / "mine.npz"),
                 datasets.load("idx", images=tmp_path / "images.idx", labels=tmp_path / "labels.idx")):
        train, test = _rows(data.x_train), _rows(data.x_test)
        assert data.n_train + data.n_test == 50 and len(train | test) == 50
        assert not train & test
