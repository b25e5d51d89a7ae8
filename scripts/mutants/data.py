"""Mutants of datasets and training (neurosim/datasets.py, neurosim/training.py)."""
from . import mutant

mutant("datasets-mnist1d-test-statistics", "neurosim/datasets.py",
       find="    mean = x_tr.mean(axis=0)\n",
       replace="    mean = np.concatenate([x_tr, x_te]).mean(axis=0)\n",
       description="MNIST-1D is standardised with a mean that includes the test rows (leak)",
       tests=["tests/test_datasets.py", "tests/test_oracles_data.py"])

mutant("datasets-digits-seed-ignored", "neurosim/datasets.py",
       find="return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=strat)",
       replace="return train_test_split(x, y, test_size=test_fraction, random_state=0, stratify=strat)",
       description="the train/test split ignores its seed",
       tests=["tests/test_datasets.py", "tests/test_oracles_data.py"])

mutant("datasets-digits-scale", "neurosim/datasets.py",
       find="x = np.asarray(bunch.data, dtype=np.float64) / 16.0",
       replace="x = np.asarray(bunch.data, dtype=np.float64) / 15.0",
       description="digits pixels (0..16) scaled by 1/15, past 1",
       tests=["tests/test_datasets.py", "tests/test_oracles_data.py"])

mutant("training-same-order-every-epoch", "neurosim/training.py",
       find="order = np.random.default_rng(seed + epoch).permutation(n_samples)",
       replace="order = np.random.default_rng(seed).permutation(n_samples)",
       description="every epoch shuffles with the same seed (the same batch order each epoch)",
       tests=["tests/test_training.py", "tests/test_oracles_data.py"])

mutant("training-last-batch-dropped", "neurosim/training.py",
       find="n_batches = -(-n_samples // batch_size)",
       replace="n_batches = n_samples // batch_size",
       description="the last, smaller batch of an epoch is silently dropped",
       tests=["tests/test_training.py", "tests/test_oracles_data.py"])

mutant("training-divergence-inverted", "neurosim/training.py",
       find="elif running is not None and watched > divergence_factor * running:",
       replace="elif running is not None and watched < divergence_factor * running:",
       description="divergence detection flags the sound losses instead of the runaway ones",
       tests=["tests/test_training.py", "tests/test_checkpoints.py", "tests/test_oracles_data.py"])

mutant("training-patience-off-by-one", "neurosim/training.py",
       find="if excess >= patience:",
       replace="if excess > patience:",
       description="divergence needs four batches in a row over the running loss, not the documented three",
       tests=["tests/test_training.py", "tests/test_checkpoints.py", "tests/test_oracles_data.py"])

mutant("training-patience-in-batches-only", "neurosim/training.py",
       find="patience = max(DIVERGENCE_PATIENCE, -(-DIVERGENCE_PATIENCE_SAMPLES // batch_size))",
       replace="patience = DIVERGENCE_PATIENCE",
       description="at batch size 1 three hard samples in a row stop a run that is learning",
       tests=["tests/test_training.py", "tests/test_oracles_data.py"])

mutant("training-running-loss-weights", "neurosim/training.py",
       find="running = watched if running is None else 0.9 * running + 0.1 * watched",
       replace="running = watched if running is None else 0.1 * running + 0.9 * watched",
       description="the running loss of divergence detection forgets almost everything each batch",
       tests=["tests/test_checkpoints.py", "tests/test_oracles_data.py"])
