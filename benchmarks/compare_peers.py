"""A reference IL training step side by side: neurosim, plain NumPy and pcx (JAX).

Reference step: inference learning on a tanh MLP, float32, feed-forward initialisation,
output clamped to the target, T = 20 relaxation ticks at gamma = 0.1 (SGD on the value nodes), then
one SGD step on the weights with the Hebbian/energy gradient averaged over the batch. Three
implementations run it from the same initial weights (copied from ``ns.mlp(..., seed=0)``):

- ``neurosim``: ``ns.Trainer(net, ns.variant("il", T=20, gamma=0.1), ns.optim.SGD(lr)).step(x, y)``;
- ``numpy``: ``neurosim.kernels.reference`` (feed-forward, predict_errors, relax) plus the weight
  update written here in NumPy;
- ``pcx``: pcx 0.6.3 (JAX): the same MLP as ``pcx.predictive_coding.Vode`` value nodes holding
  pre-activations, ``jnp.tanh`` between them, ``pcx.nn.Linear`` layers, the whole step
  (forward init + T value-node SGD steps with ``optax.sgd(gamma)`` + weight SGD step with
  ``scale_by=1/B``) in one ``pcx.functional.jit``-compiled function; timed with
  ``block_until_ready`` on the updated weights after every step. pcx is optional
  (``pip install -e .[peers]``); without it the pcx column is skipped with a message.

Timing: medians over interleaved rounds (each round samples neurosim, NumPy and pcx back to back),
after warm-up; pcx's jit compile time (its first calls: one trace for the initial state, one more
once the value nodes know their shapes) is reported separately. Ratios pcx/neurosim and
numpy/neurosim are from this one run (> 1: neurosim faster). The goals: at batch 1, >= 4x faster
than pcx on 64-128-128-10 and >= 2x on 784-512-512-10; at batch 32, >= 1.5x; at batch 256, not
slower (>= 1.0x).

Thread policy: all sides get the same thread count, ``--threads`` (default 1). NumPy/neurosim: BLAS
limited through ``neurosim.threads.limit``; the whole process is pinned to ``--threads`` CPUs
(``os.sched_setaffinity``), so no side can use more cores than the others; JAX: ``XLA_FLAGS`` set
before jax is imported (``--xla_cpu_multi_thread_eigen=false`` for one thread,
``--xla_force_host_platform_device_count=1``), plus
``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``. The CPU time / wall time of each side's samples is
reported ("cores used") so the policy can be checked.

Accuracy check: each implementation trains ``--accuracy-epochs`` epoch(s) of the scikit-learn
digits (``ns.datasets.digits()``) at batch 32 on 64-128-128-10 from the same initial weights and
the same batch order (the last partial batch is dropped, so pcx compiles one shape); test accuracy
of the trained weights is evaluated by one shared feed-forward, side by side.

    python benchmarks/compare_peers.py [--quick] [--json out.json] [--threads 1] [--batches 1 32 256]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

from benchlib import fmt, time_per_call, write_json
import neurosim as ns
from neurosim import threads as blas
from neurosim.kernels import reference

NETWORKS = {"64-128-128-10": [64, 128, 128, 10], "784-512-512-10": [784, 512, 512, 10]}
BATCHES = (1, 32, 256)
T, GAMMA, LR, DTYPE = 20, 0.1, 0.05, "float32"
# Target: minimum pcx / neurosim time ratio, per (network, batch).
TARGETS = {
    ("64-128-128-10", 1): ("batch 1", 4.0), ("784-512-512-10", 1): ("batch 1", 2.0),
    ("64-128-128-10", 32): ("batch 32", 1.5), ("784-512-512-10", 32): ("batch 32", 1.5),
    ("64-128-128-10", 256): ("batch 256", 1.0), ("784-512-512-10", 256): ("batch 256", 1.0),
}


# -- thread policy and the optional pcx import ---------------------------------------------------
def configure_threads(threads: int) -> dict:
    """Give every side the same ``threads`` cores: pin the process to the first ``threads`` CPUs
    (so no library can use more, whatever its own thread pool thinks) and tell XLA, OpenMP and
    OpenBLAS to use that many threads.

    Must run before jax is imported; returns what was set (or a note that jax was already loaded).
    """
    cpus = sorted(os.sched_getaffinity(0))[:threads] if hasattr(os, "sched_getaffinity") else None
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    xla = "--xla_force_host_platform_device_count=1"
    if threads == 1:
        xla = "--xla_cpu_multi_thread_eigen=false " + xla
    env = {"XLA_FLAGS": xla, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    if "jax" in sys.modules:
        return {"note": "jax was imported before configure_threads: XLA thread flags not applied",
                "cpus": cpus}
    for key, value in env.items():
        os.environ[key] = value
    return {**env, "cpus": cpus}


def load_pcx():
    """``(modules, None)`` with jax, pcx and friends, or ``(None, reason)`` when pcx is missing."""
    try:
        import jax
        import jax.numpy as jnp
        import optax
        import pcx
        import pcx.functional as pxf
        import pcx.nn as pxnn
        import pcx.predictive_coding as pxc
        import pcx.utils as pxu
    except Exception as exc:  # ImportError, or a broken install
        return None, (f"pcx column skipped: cannot import pcx/jax ({type(exc).__name__}: {exc}); "
                      f"install with `pip install -e .[peers]` (pcx>=0.6.3, Python >= 3.11)")
    jax.config.update("jax_enable_x64", False)
    version = getattr(pcx, "__version__", None)
    try:
        from importlib.metadata import version as dist_version
        version = version or dist_version("pcx")
    except Exception:
        pass
    mods = dict(jax=jax, jnp=jnp, optax=optax, pcx=pcx, pxf=pxf, pxnn=pxnn, pxc=pxc, pxu=pxu,
                version=version, jax_version=jax.__version__)
    mods.update(_pcx_functions(mods))
    return mods, None


def _pcx_functions(m):
    """The pcx model class and the jit-compiled train step, built once per process."""
    jax, jnp, optax, pxf, pxnn, pxc, pxu = (m[k] for k in ("jax", "jnp", "optax", "pxf", "pxnn", "pxc", "pxu"))

    class MLP(pxc.EnergyModule):
        """Value nodes hold pre-activations x_l (as in neurosim); mu_l = W_l tanh(x_{l-1}) + b_l,
        tanh skipped on the input; the output node is frozen at the target during inference."""

        def __init__(self, sizes):
            super().__init__()
            self.layers = [pxnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
            self.vodes = [pxc.Vode() for _ in sizes[1:]]  # squared-error energy 1/2 ||x - mu||^2
            self.vodes[-1].h.frozen = True

        def __call__(self, x, y=None):
            for vode, layer in zip(self.vodes[:-1], self.layers[:-1]):
                x = jnp.tanh(vode(layer(x)))
            x = self.vodes[-1](self.layers[-1](x))
            if y is not None:
                self.vodes[-1].set("h", y)
            return self.vodes[-1].get("u")

    vode_axes = pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0))

    @pxf.vmap(vode_axes, in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    @pxf.vmap(vode_axes, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
    def energy(x, *, model):
        y_hat = model(x, None)
        return jax.lax.psum(model.energy(), "batch"), y_hat

    def free_values():  # a fresh mask each time: ``M.to`` changes the mask it is called on
        return pxu.M_hasnot(pxc.VodeParam, frozen=True)

    @pxf.jit(static_argnums=0)
    def train_step(n_ticks, x, y, *, model, optim_w, optim_h):
        model.train()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(x, y, model=model)  # tick 0: feed-forward init, output clamped to y
        optim_h.init(free_values()(model))
        for _ in range(n_ticks):  # x_l <- x_l - gamma dF/dx_l, F summed over the batch (per-sample grads)
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                _, grads = pxf.value_and_grad(free_values().to([False, True]), has_aux=True)(energy)(x, model=model)
            optim_h.step(model, grads["model"])
        optim_h.clear()
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):  # W <- W - lr (1/B) dF/dW
            _, grads = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy)(
                x, model=model)
        optim_w.step(model, grads["model"], scale_by=1.0 / x.shape[0])

    def make(net, lr, gamma):
        model = MLP([net.n_inputs] + [w.shape[0] for w in net.weights])
        for layer, weight, bias in zip(model.layers, net.weights, net.biases):
            layer.nn.weight.set(jnp.asarray(np.array(weight)))
            layer.nn.bias.set(jnp.asarray(np.array(bias)))
        optim_h = pxu.Optim(lambda: optax.sgd(gamma))
        optim_w = pxu.Optim(lambda: optax.sgd(lr), pxu.M(pxnn.LayerParam)(model))
        return model, optim_w, optim_h

    def params(model):
        return ([np.asarray(layer.nn.weight.get()) for layer in model.layers],
                [np.asarray(layer.nn.bias.get()) for layer in model.layers])

    return {"MLP": MLP, "train_step": train_step, "make": make, "params": params}


# -- the three implementations --------------------------------------------------------------------
def neurosim_runner(net, lr=LR, T=T, gamma=GAMMA):
    trainer = ns.Trainer(net, ns.variant("il", T=T, gamma=gamma), ns.optim.SGD(lr=lr))
    return trainer.step, lambda: (list(net.weights), list(net.biases))


def numpy_runner(net, lr=LR, T=T, gamma=GAMMA):
    """The reference kernels plus a NumPy SGD step: grads are (-1/B) e_l^T phi(x_{l-1}), -mean_b e_l."""
    weights = [np.array(w) for w in net.weights]
    biases = [np.array(b) for b in net.biases]
    n_layers = len(weights)
    update = np.full(n_layers + 1, T)  # every layer's Hebbian term at tick T, as il does
    activation = net.activation

    def step(x, y):
        state = reference.feedforward(weights, biases, activation, x)
        state.values[-1] = y.copy()
        state.acts[-1] = y.copy()
        reference.predict_errors(weights, biases, state)
        grads, _, (tick, _) = reference.relax(weights, biases, activation, gamma, T, state, update,
                                              -1.0 / x.shape[0])
        if tick >= 0:
            raise FloatingPointError(f"numpy reference diverged at tick {tick}")
        for layer, (grad_w, grad_b) in enumerate(grads):
            weights[layer] -= lr * grad_w.astype(weights[layer].dtype, copy=False)
            biases[layer] -= lr * grad_b.astype(biases[layer].dtype, copy=False)
    return step, lambda: (weights, biases)


def pcx_runner(mods, net, lr=LR, T=T, gamma=GAMMA):
    model, optim_w, optim_h = mods["make"](net, lr, gamma)
    train_step, jnp, jax = mods["train_step"], mods["jnp"], mods["jax"]
    cache = {}

    def step(x, y):
        key = (id(x), id(y))
        if key not in cache:  # host -> device once per batch array, outside the timed work
            cache.clear()
            cache[key] = (x, y, jnp.asarray(x), jnp.asarray(y))
        train_step(T, cache[key][2], cache[key][3], model=model, optim_w=optim_w, optim_h=optim_h)
        jax.block_until_ready(model.layers[-1].nn.weight.get())
    return step, lambda: mods["params"](model)


# -- measurement ----------------------------------------------------------------------------------
def measure(sizes, batch, mods=None, threads=1, rounds=5, min_seconds=0.2, warmup=2, lr=LR, T=T,
            gamma=GAMMA):
    """One (network, batch) case: medians of the three implementations, interleaved round by round."""
    label = "-".join(map(str, sizes))
    net = ns.mlp(sizes, activation="tanh", seed=0, dtype=DTYPE)
    rng = np.random.default_rng(0)
    x = rng.random((batch, sizes[0])).astype(DTYPE)
    y = np.eye(sizes[-1], dtype=DTYPE)[rng.integers(0, sizes[-1], batch)]
    builders = {"neurosim": lambda: neurosim_runner(net.copy(), lr, T, gamma),
                "numpy": lambda: numpy_runner(net, lr, T, gamma)}
    if mods is not None:
        builders["pcx"] = lambda: pcx_runner(mods, net, lr, T, gamma)
    runners, warm = {}, {}
    with blas.limit(threads):
        for name, build in builders.items():
            step, _ = build()
            calls = []
            for _ in range(max(1, warmup) + (1 if name == "pcx" else 0)):
                started = time.perf_counter()
                step(x, y)
                calls.append(time.perf_counter() - started)
            warm[name] = calls
            runners[name] = lambda step=step: step(x, y)
        samples = {name: [] for name in runners}
        cores = {name: [] for name in runners}
        for _ in range(rounds):
            for name, run in runners.items():
                seconds, _, used = time_per_call(run, min_seconds)
                samples[name].append(seconds)
                cores[name].append(used)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    row = {"network": label, "batch": batch, "dtype": DTYPE, "T": T, "gamma": gamma, "threads": threads,
           "samples": rounds}
    for name in ("neurosim", "numpy", "pcx"):
        if name in medians:
            row[f"{name}_ms"] = medians[name] * 1e3
            row[f"{name}_cores"] = statistics.median(cores[name])
        else:
            row[f"{name}_ms"] = row[f"{name}_cores"] = None
    row["numpy_over_neurosim"] = medians["numpy"] / medians["neurosim"]
    row["pcx_over_neurosim"] = medians["pcx"] / medians["neurosim"] if "pcx" in medians else None
    if "pcx" in warm:
        # Calls before the step time settles: their excess over the median is trace + compile.
        row["pcx_first_calls_s"] = warm["pcx"]
        row["pcx_compile_s"] = sum(max(0.0, c - medians["pcx"]) for c in warm["pcx"])
    else:
        row["pcx_first_calls_s"] = row["pcx_compile_s"] = None
    target = TARGETS.get((label, batch))
    if target is not None:
        row["target"], row["target_ratio"] = target
        row["target_met"] = None if row["pcx_over_neurosim"] is None else row["pcx_over_neurosim"] >= target[1]
    return row


def _accuracy(weights, biases, activation, dataset, labels=None):
    x = dataset.x_test.astype(DTYPE)
    state = reference.feedforward([np.asarray(w) for w in weights], [np.asarray(b) for b in biases], activation, x)
    return float(np.mean(state.values[-1].argmax(axis=1) == dataset.y_test))


def accuracy_check(mods=None, epochs=1, batch=32, lr=LR, T=T, gamma=GAMMA, threads=1, max_steps=None, seed=0):
    """Train every implementation on the same digits batches from the same init; test accuracy each."""
    data = ns.datasets.digits()
    sizes = [data.n_inputs, 128, 128, data.n_outputs]
    net = ns.mlp(sizes, activation="tanh", seed=0, dtype=DTYPE)
    x_all = data.x_train.astype(DTYPE)
    targets = data.targets(data.y_train, DTYPE)
    batches = []
    for epoch in range(epochs):
        order = np.random.default_rng(seed + epoch).permutation(len(x_all))
        batches += [order[i:i + batch] for i in range(0, len(order) - batch + 1, batch)]  # full batches only
    if max_steps is not None:
        batches = batches[:max_steps]
    builders = {"neurosim": lambda: neurosim_runner(net.copy(), lr, T, gamma),
                "numpy": lambda: numpy_runner(net, lr, T, gamma)}
    if mods is not None:
        builders["pcx"] = lambda: pcx_runner(mods, net, lr, T, gamma)
    result = {"network": "-".join(map(str, sizes)), "dataset": "digits", "batch": batch, "steps": len(batches),
              "epochs": epochs, "lr": lr, "initial_accuracy": _accuracy(net.weights, net.biases, net.activation, data)}
    trained = {}
    with blas.limit(threads):
        for name, build in builders.items():
            step, params = build()
            started = time.perf_counter()
            for index in batches:
                step(x_all[index], targets[index])
            weights, biases = params()
            trained[name] = [np.asarray(w, dtype=np.float64) for w in weights]
            result[f"{name}_accuracy"] = _accuracy(weights, biases, net.activation, data)
            result[f"{name}_train_s"] = time.perf_counter() - started
    for name in ("numpy", "pcx"):
        if name in trained:
            result[f"{name}_max_weight_diff"] = max(float(np.max(np.abs(a - b)))
                                                   for a, b in zip(trained[name], trained["neurosim"]))
        else:
            result[f"{name}_accuracy"] = result[f"{name}_max_weight_diff"] = None
    return result


# -- report ---------------------------------------------------------------------------------------
def tables(rows, accuracy):
    lines = ["| network | batch | threads | neurosim ms | NumPy ms | pcx ms | pcx compile s | numpy / neurosim | pcx / neurosim | target | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        target = f"{r['target']} >= {r['target_ratio']:g}x" if r.get("target") else ""
        met = {True: "met", False: "not met", None: "n/a (no pcx)"}[r.get("target_met")] if target else ""
        lines.append(f"| {r['network']} | {r['batch']} | {r['threads']} | {r['neurosim_ms']:.3f} | "
                     f"{r['numpy_ms']:.3f} | {fmt(r['pcx_ms'], '.3f')} | {fmt(r['pcx_compile_s'], '.1f')} | "
                     f"{r['numpy_over_neurosim']:.2f}x | {fmt(r['pcx_over_neurosim'], '.2f', 'x')} | {target} | {met} |")
    lines += ["", "| implementation | cores used (CPU s / wall s), per case |", "|---|---|"]
    for name in ("neurosim", "numpy", "pcx"):
        used = [r[f"{name}_cores"] for r in rows]
        if any(u is not None for u in used):
            lines.append(f"| {name} | " + ", ".join(f"{r['network'].split('-')[0]}/{r['batch']}: {fmt(u, '.2f')}"
                                                   for r, u in zip(rows, used)) + " |")
    if accuracy:
        a = accuracy
        lines += ["", f"Accuracy check: {a['network']} on {a['dataset']}, {a['steps']} steps of batch {a['batch']} "
                      f"(lr {a['lr']}, same init and batch order; initial test accuracy {a['initial_accuracy']:.3f})", "",
                  "| implementation | test accuracy | max abs weight diff vs neurosim | train s |", "|---|---|---|---|"]
        for name in ("neurosim", "numpy", "pcx"):
            if a.get(f"{name}_accuracy") is None:
                lines.append(f"| {name} | n/a | n/a | n/a |")
                continue
            diff = "-" if name == "neurosim" else fmt(a[f"{name}_max_weight_diff"], ".2e")
            lines.append(f"| {name} | {a[f'{name}_accuracy']:.4f} | {diff} | {a[f'{name}_train_s']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 0.05 s samples")
    parser.add_argument("--json", help="also write the JSON results to this file")
    parser.add_argument("--threads", type=int, default=1, help="threads for BLAS and XLA alike (default 1)")
    parser.add_argument("--nets", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--no-pcx", action="store_true", help="skip pcx even if installed")
    parser.add_argument("--accuracy-epochs", type=int, default=3, help="epochs of digits (default 3); 0 skips")
    parser.add_argument("--lr", type=float, default=LR)
    args = parser.parse_args(argv)
    env = configure_threads(args.threads)
    rounds, min_seconds = (3, 0.05) if args.quick else (7, 0.2)
    mods, reason = (None, "pcx column skipped: --no-pcx") if args.no_pcx else load_pcx()
    if reason:
        print(reason, file=sys.stderr, flush=True)
    started = time.perf_counter()
    rows = []
    for label in args.nets:
        for batch in args.batches:
            print(f"[{time.perf_counter() - started:6.1f}s] {label} batch {batch}", file=sys.stderr, flush=True)
            rows.append(measure(NETWORKS[label], batch, mods, args.threads, rounds, min_seconds, lr=args.lr))
    accuracy = None
    if args.accuracy_epochs > 0:
        print(f"[{time.perf_counter() - started:6.1f}s] accuracy check", file=sys.stderr, flush=True)
        accuracy = accuracy_check(mods, epochs=args.accuracy_epochs, lr=args.lr, threads=args.threads)
    report = {"benchmark": "peers_il_step", "machine": platform.machine(), "processor": platform.processor(),
              "python": platform.python_version(), "numpy": np.__version__, "neurosim": ns.__version__,
              "pcx": None if mods is None else mods["version"], "jax": None if mods is None else mods["jax_version"],
              "pcx_skipped": reason, "thread_env": env, "threads": args.threads, "rounds": rounds,
              "step": f"IL tanh MLP float32, feed-forward init + T={T} ticks gamma={GAMMA} + SGD lr={args.lr} weight update",
              "seconds": time.perf_counter() - started, "results": rows, "accuracy": accuracy}
    if reason:
        print(reason)
        print()
    print(tables(rows, accuracy))
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
