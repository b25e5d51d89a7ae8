"""Parameter sweeps: many run configurations trained in parallel on a Dask cluster.

A sweep file (TOML) holds a base run configuration (the sections of ``models/*.toml``) and the
values to vary, as dotted ``section.key`` names::

    base = "mlp_digits.toml"          # or a [base] table holding the config itself
    [grid]                            # the cartesian product of these lists
    "variant.name" = ["il", "bp"]
    "optimizer.lr" = [0.01, 0.1]

or, instead of ``[grid]``, a list of ``[[runs]]`` tables of dotted overrides, one run each.

Each run is keyed by its resolved configuration (:func:`config_key`), trains on a worker and writes
``OUT/runs/<key>.npz`` (weights) and then ``OUT/runs/<key>.json`` (config, status, history); a run
whose JSON is there is finished, so running a sweep again only computes what is missing.
:func:`load` flattens the results for ``pandas.DataFrame``; :func:`plot` draws test accuracy
against learning rate. See ``docs/sweeps.md``.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import io
import itertools
import json
import logging
import math
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import config as configs

SWEEP_KEYS = ("base", "grid", "runs")
STATUSES = ("completed", "diverged", "failed")
# A sweep's tasks are named after their runs, so that a scheduler shared by two drivers of the same
# sweep runs each run once.
TASK_PREFIX = "neurosim-sweep-"
CONNECT_TIMEOUT_S = 10.0


class ClusterError(RuntimeError):
    """The Dask cluster could not start or failed during a sweep; finished runs are kept."""


@dataclass(frozen=True)
class Run:
    """One resolved run of a sweep.

    key: :func:`config_key` of ``config``; swept: the sweep's dotted overrides for this run
    (``{"optimizer.lr": 0.1, ...}``); config: the full validated run configuration.
    """

    key: str
    swept: dict
    config: dict



# -- resolving a sweep -------------------------------------------------------------------------


def config_key(config: dict) -> str:
    """First 16 hex digits of the SHA-256 of ``config`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def _read_sweep(sweep) -> tuple[dict, str, Path]:
    """``(table, source name for messages, folder relative paths start from)``."""
    if isinstance(sweep, dict):
        return sweep, "sweep", Path.cwd()
    if not isinstance(sweep, (str, os.PathLike)):
        raise TypeError(f"sweep must be a path to a TOML file or a dict, got {type(sweep).__name__}")
    path = Path(sweep)
    return configs.read_toml(path, "sweep"), str(path), path.parent


def _base_config(table: dict, source: str, folder: Path) -> dict:
    if "base" not in table:
        raise ValueError(f"{source}: no base; give a [base] table holding a run config, or "
                         f"base = \"path/to/config.toml\"")
    base = table["base"]
    if isinstance(base, (str, os.PathLike)):
        path = folder / base
        try:
            return configs.load(path)
        except FileNotFoundError:
            raise ValueError(f"{source}: base = {str(base)!r}: no such file {path}") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{source}: base = {str(base)!r}: {exc}") from None
    if not isinstance(base, dict):
        raise ValueError(f"{source}: base must be a table (a run config) or a path, got {base!r}")
    for section, body in base.items():
        if section not in configs.SCHEMA:
            raise ValueError(f"{source}: unknown section [base.{section}]; expected "
                             f"{', '.join(configs.SCHEMA)}")
        if not isinstance(body, dict):
            raise ValueError(f"{source}: [base.{section}] must be a table, got {body!r}")
    return copy.deepcopy(base)


def _check_dotted(name, source: str, where: str) -> tuple[str, str]:
    """``"section.key"`` split, checked against the run config schema."""
    if not isinstance(name, str) or name.count(".") != 1 or "" in name.split("."):
        raise ValueError(f"{source}: {where} {name!r}: expected a dotted name section.key, e.g. "
                         f"\"optimizer.lr\"")
    section, key = name.split(".")
    if section not in configs.SCHEMA:
        raise ValueError(f"{source}: {where} {name!r}: unknown section [{section}]; expected "
                         f"{', '.join(configs.SCHEMA)}")
    if section not in configs.OPEN_SECTIONS and key not in configs.SCHEMA[section]:
        raise ValueError(f"{source}: {where} {name!r}: unknown key {key!r} in [{section}]; expected "
                         f"one of {', '.join(configs.SCHEMA[section])}")
    return section, key


def _flatten_dotted(table: dict) -> dict:
    """``{"variant": {"name": v}}`` (TOML's unquoted ``variant.name = v``) as ``{"variant.name": v}``;
    quoted ``"variant.name"`` keys are kept as they are."""
    flat = {}
    for name, value in table.items():
        if "." not in name and isinstance(value, dict):
            flat.update({f"{name}.{key}": inner for key, inner in value.items()})
        else:
            flat[name] = value
    return flat


def _overrides(table: dict, source: str) -> list[dict]:
    """The dotted overrides of every run, from ``[grid]`` or ``[[runs]]``."""
    if "grid" in table and "runs" in table:
        raise ValueError(f"{source}: give either [grid] or [[runs]], not both")
    if "grid" in table:
        grid = table["grid"]
        if not isinstance(grid, dict):
            raise ValueError(f"{source}: grid must be a table of dotted keys to lists, got {grid!r}")
        grid = _flatten_dotted(grid)
        if not grid:
            raise ValueError(f"{source}: [grid] is empty; give at least one key, e.g. "
                             f"\"optimizer.lr\" = [0.01, 0.1]")
        for name, values in grid.items():
            _check_dotted(name, source, "grid key")
            if not isinstance(values, list) or not values:
                raise ValueError(f"{source}: grid key {name!r} must be a non-empty list of values, "
                                 f"got {values!r}")
        names = list(grid)
        return [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    if "runs" in table:
        runs = table["runs"]
        if not isinstance(runs, list) or not runs or not all(isinstance(run, dict) for run in runs):
            raise ValueError(f"{source}: runs must be a non-empty list of tables ([[runs]]) of dotted "
                             f"overrides")
        overrides = []
        for number, run in enumerate(runs, start=1):
            run = _flatten_dotted(run)
            for name in run:
                _check_dotted(name, source, f"run {number}: key")
            overrides.append(run)
        return overrides
    raise ValueError(f"{source}: nothing to sweep; add a [grid] of dotted keys to lists of values or "
                     f"[[runs]] tables of dotted overrides")


def _resolve_one(base: dict, overrides: dict, source: str, where: str) -> dict:
    """The base with a run's overrides applied, minus the base's hyper-parameters that a switched
    variant / optimiser / dataset does not take."""
    config = copy.deepcopy(base)
    for name, value in overrides.items():
        section, key = name.split(".")
        config.setdefault(section, {})[key] = copy.deepcopy(value)
    for section in ("variant", "optimizer", "data"):
        body = config.get(section)
        if not isinstance(body, dict) or f"{section}.name" not in overrides:
            continue
        if body.get("name") == base.get(section, {}).get("name"):
            continue  # not switched: the base's keys are the base's business, and validated as such
        accepted = configs.accepted_keys(section, body.get("name"))
        if accepted is None:
            continue
        for key in [key for key in body if key != "name" and key not in accepted]:
            if f"{section}.{key}" in overrides:
                raise ValueError(
                    f"{source}: {where}: {section}.{key} is not a hyper-parameter of {section} "
                    f"{body['name']!r} (it takes: {', '.join(sorted(accepted)) or 'none'}); use [[runs]] "
                    f"to give each {section} its own")
            del body[key]  # came from the base, meant for the base's own choice
    return config


class _Checker:
    """Cheap checks of resolved configs before any run starts: constructs each variant and
    optimiser, each distinct network and dataset once, and checks that they fit together."""

    def __init__(self):
        self.networks, self.datasets = {}, {}

    def check(self, config: dict) -> None:
        from . import events as event_models, optim
        from .validation import check_int
        from .variants import variant as make_variant

        def extra(body):
            return {key: value for key, value in body.items() if key != "name"}

        def attempt(section, make):
            try:
                return make()
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"config [{section}]: {exc}") from None

        variant = attempt("variant", lambda: make_variant(config["variant"]["name"], **extra(config["variant"])))
        attempt("optimizer", lambda: optim.make(config["optimizer"]["name"], **extra(config["optimizer"])))
        attempt("events", lambda: event_models.resolve(event_models.from_config(config["events"]), variant))
        train = config["train"]
        attempt("train", lambda: (check_int(train["epochs"], "epochs", minimum=1),
                                  check_int(train["batch_size"], "batch_size", minimum=1),
                                  check_int(train["seed"], "seed", minimum=0)))
        net = self._cached(self.networks, "model", config["model"],
                           lambda: configs.build_model(config["model"]))
        data = self._cached(self.datasets, "data", config["data"], lambda: self._load_data(config["data"]))
        attempt("model", lambda: variant.check_network(net))
        attempt("data", lambda: net.check_features(data.n_inputs, f"dataset {data.name!r}"))
        if data.n_outputs != net.n_outputs:
            raise ValueError(f"config [data]: dataset {data.name!r} has {data.n_outputs} outputs but the "
                             f"network has {net.n_outputs}")

    @staticmethod
    def _load_data(section):
        from . import datasets

        # an unknown keyword is refused by datasets.load before anything is generated
        return datasets.load(section["name"], **{k: v for k, v in section.items() if k != "name"})

    @staticmethod
    def _cached(cache, section, body, make):
        token = json.dumps(body, sort_keys=True, default=repr)
        if token not in cache:
            try:
                cache[token] = make()
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"config [{section}]: {exc}") from None
        return cache[token]


def plan(sweep) -> list[Run]:
    """Resolve and validate every run of a sweep (a TOML path or the same table as a dict), in
    order: grid keys vary slowest first. Nothing trains. ``ValueError`` naming the file and the key
    or run for anything wrong; two runs that resolve to the same configuration are an error too."""
    table, source, folder = _read_sweep(sweep)
    unknown = sorted(set(table) - set(SWEEP_KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown top-level key {unknown[0]!r}; expected {', '.join(SWEEP_KEYS)}")
    base = _base_config(table, source, folder)
    checker, runs, seen = _Checker(), [], {}
    overrides = _overrides(table, source)
    for number, swept in enumerate(overrides, start=1):
        values = ", ".join(f"{name}={value!r}" for name, value in swept.items()) or "the base"
        where = f"run {number} of {len(overrides)} ({values})"
        config = _resolve_one(base, swept, source, where)
        try:
            config = configs.validate(config)
            checker.check(config)
            key = config_key(config)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{source}: {where}: {exc}") from None
        if key in seen:
            raise ValueError(f"{source}: {where} resolves to the same config as run {seen[key]}; "
                             f"each run must differ")
        seen[key] = number
        runs.append(Run(key=key, swept=dict(swept), config=config))
    return runs


# -- files -----------------------------------------------------------------------------------


def _partial_name(path: Path) -> Path:
    # unique per writer, so two processes finishing the same run never share a temporary file
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


def _write_atomic(path: Path, write) -> None:
    """``write(handle)`` into a temporary file beside ``path`` then rename it into place, so that a
    reader never sees a half-written file (a crash leaves at most a ``.*.partial`` file)."""
    temporary = _partial_name(path)
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless ``path`` holds exactly it already; returns whether written."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    _write_atomic(path, lambda handle: handle.write(data))
    return True


def _finite_or_none(value):
    """JSON-safe copy: non-finite floats (a regression's NaN accuracy) become ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(inner) for inner in value]
    return value


def _json_bytes(payload) -> bytes:
    return (json.dumps(_finite_or_none(payload), indent=1, allow_nan=False) + "\n").encode()


def _finished_record(path: Path, key: str) -> dict | None:
    """The run's record if ``path`` holds a complete one for ``key``, else ``None``."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key or record.get("status") not in STATUSES:
        return None
    return record


# -- one run, on a worker ----------------------------------------------------------------------


def _train_run(config: dict, key: str, swept: dict, runs_dir: str) -> dict:
    """Train one config and record it in ``runs_dir``: ``<key>.npz`` first, ``<key>.json`` last.

    Runs in a Dask worker. A run recorded already (the task was rescheduled after its worker died
    past the JSON's rename) is returned as it is, so each run is written once.
    """
    import numpy as np

    import neurosim as ns

    folder = Path(runs_dir)
    json_path, weights_path = folder / f"{key}.json", folder / f"{key}.npz"
    finished = _finished_record(json_path, key)
    if finished is not None:
        return finished
    started = time.perf_counter()
    status, error, details, history, net = "completed", None, None, None, None
    try:
        net, variant, optimizer, data, train_kwargs = configs.build(config)
        # one BLAS thread: the workers are the parallelism, more threads only contend for cores
        history = ns.train(net, variant, data, optimizer=optimizer, progress=False, blas_threads=1,
                           **train_kwargs).to_dict()
    except ns.DivergenceError as exc:
        status, error = "diverged", str(exc)
        history = exc.history.to_dict() if exc.history is not None else None
    except Exception as exc:  # noqa: BLE001 - recorded with the run; one bad run must not stop a sweep
        status, error, details = "failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()
    weights = None
    if net is not None and status != "failed":  # a diverged network is at its last sound state
        state = net.state_dict()  # what Network.save writes, through our own atomic writer
        _write_atomic(weights_path, lambda handle: np.savez(handle, **state))
        weights = weights_path.name
    record = {"key": key, "status": status, "error": error, "swept": swept, "config": config,
              "history": history, "seconds": time.perf_counter() - started, "weights": weights,
              "neurosim_version": ns.__version__}
    if details is not None:
        record["traceback"] = details
    _write_atomic(json_path, lambda handle: handle.write(_json_bytes(record)))
    return json.loads(_json_bytes(record))  # what the file holds, NaNs as None


# -- the cluster -----------------------------------------------------------------------------


def _probe_scheduler(address, timeout: float) -> None:
    """A ValueError naming ``address`` unless a TCP connection to it opens within ``timeout``.

    Checked with a plain socket first: a ``distributed.Client`` that fails to connect lingers and
    blocks for seconds when collected.
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"scheduler must be an address such as tcp://host:8786, got {address!r}")
    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return  # another transport: left to distributed
        host, port = parse_host_port(location, default_port=8786)
    except ValueError as exc:
        raise ValueError(f"scheduler {address!r} is not a Dask address such as tcp://host:8786: {exc}") from None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s: "
                         f"{exc.strerror or exc}") from None


@contextmanager
def _dask_client(scheduler, n_workers: int, scratch_parent: Path, connect_timeout: float):
    """A ``distributed.Client``: to ``scheduler`` if given, else to a LocalCluster of ``n_workers``
    single-threaded processes with no dashboards whose scratch space lies in ``scratch_parent``.
    What it started is closed on leaving, however it is left."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        _probe_scheduler(scheduler, connect_timeout)
        try:
            client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a bad address
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler!r} within "
                             f"{connect_timeout:g} s: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    # Dask's scratch space (locks, spill files) would go to the system temp dir: keep it beside the
    # results instead, and remove it when the cluster is gone.
    scratch = Path(tempfile.mkdtemp(prefix=".dask-scratch-", dir=scratch_parent))
    quiet = {"temporary-directory": str(scratch),
             # no HTTP endpoints (metrics, health) on the scheduler or the workers: a sweep on a
             # shared machine should not take, or fight over, port 8787
             "distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
    try:
        with dask.config.set(quiet):
            try:
                # silence_logs: the workers' and scheduler's chatter, including the tracebacks
                # distributed logs when connections close at shutdown, is not for the user;
                # what a run did is in its record
                cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                       silence_logs=logging.CRITICAL,
                                       dashboard_address=None, worker_dashboard_address=None,
                                       scheduler_kwargs={"dashboard": False,
                                                         "dashboard_address": "127.0.0.1:0"},
                                       local_directory=str(scratch))
            except Exception as exc:  # noqa: BLE001 - RuntimeError("Nanny failed to start."), OSError
                raise ClusterError(
                    f"could not start a local Dask cluster of {n_workers} workers ({type(exc).__name__}: "
                    f"{exc}); in a script, call neurosim.sweep.run under if __name__ == \"__main__\": "
                    f"the workers start by importing it") from exc
            try:
                client = Client(cluster, set_as_default=False)
                try:
                    yield client
                finally:
                    client.close()
            finally:
                with _quiet_logs():
                    cluster.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _quiet_logs():
    """Hold distributed's loggers in this process to CRITICAL while the cluster shuts down."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _cancel_quietly(client, futures) -> None:
    try:
        client.cancel(list(futures))
    except Exception:  # noqa: BLE001 - already failing; the original error is the one to report
        pass


def _lost_record(run: Run, exc: BaseException) -> dict:
    """A run whose task did not come back (its workers kept dying, or could not import neurosim):
    reported failed but not written, so that running the sweep again retries it."""
    return {"key": run.key, "status": "failed", "swept": run.swept, "config": run.config,
            "error": f"the run's task failed outside training, not recorded (the next run of the sweep "
                     f"retries it): {type(exc).__name__}: {exc}",
            "history": None, "seconds": None, "weights": None}


def _check_workers(workers, scheduler):
    if workers is None:
        return None
    if scheduler is not None:
        raise ValueError("workers applies to the local cluster; a scheduler's cluster has its own workers")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return workers


def run(sweep, out_dir, scheduler=None, workers=None, progress=True,
        connect_timeout: float = CONNECT_TIMEOUT_S) -> list[dict]:
    """Train every run of ``sweep`` (a TOML path or dict, see :func:`plan`) on a Dask cluster.

    ``scheduler``: a Dask scheduler address (``"tcp://host:8786"``) whose workers can import
    neurosim and see ``out_dir`` at the same path; ``None`` starts a LocalCluster of ``workers``
    processes (default: one per core, at most one per run), closed when done. Runs recorded in
    ``out_dir/runs`` already are not trained again; a sweep with nothing left to compute starts no
    cluster. Returns one record per run, in sweep order: ``key``, ``status`` ("completed",
    "diverged", "failed"), ``error``, ``swept``, ``config``, ``history`` (``History.to_dict()``,
    ``None`` if the run failed), ``seconds`` (wall-clock seconds of the task) and ``weights``.
    """
    runs = plan(sweep)
    workers = _check_workers(workers, scheduler)
    numeric = isinstance(connect_timeout, (int, float)) and not isinstance(connect_timeout, bool)
    if not numeric or not connect_timeout > 0:
        raise ValueError(f"connect_timeout must be a number of seconds > 0, got {connect_timeout!r}")
    out = Path(out_dir).resolve()
    runs_dir = out / "runs"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the output folder {runs_dir}: {exc}") from None
    records = {}
    for one in runs:
        finished = _finished_record(runs_dir / f"{one.key}.json", one.key)
        if finished is not None:
            records[one.key] = finished
    pending = [one for one in runs if one.key not in records]
    if pending:
        n_workers = min(workers or os.cpu_count() or 1, len(pending))
        records.update(_compute(pending, runs_dir, scheduler, n_workers, connect_timeout,
                                progress, total=len(runs)))
    return [records[one.key] for one in runs]


def _compute(pending, runs_dir: Path, scheduler, n_workers, connect_timeout, progress, total) -> dict:
    from distributed import as_completed
    from .progress import progress_bar as tqdm

    results, futures = {}, {}
    bar = tqdm(total=total, initial=total - len(pending), desc="sweep", unit="run", disable=not progress)
    try:
        with _dask_client(scheduler, n_workers, runs_dir.parent, connect_timeout) as client:
            try:
                for one in pending:
                    future = client.submit(_train_run, one.config, one.key, one.swept, str(runs_dir),
                                           key=f"{TASK_PREFIX}{one.key}")
                    futures[future] = one
                for future in as_completed(futures, loop=client.loop):
                    one = futures[future]
                    try:
                        results[one.key] = future.result()
                    except Exception as exc:  # noqa: BLE001 - the worker's, not the user's, problem
                        results[one.key] = _lost_record(one, exc)
                    bar.update(1)
                    bar.set_postfix(last=results[one.key]["status"])
            except Exception as exc:  # the scheduler went away, ...: not the sweep file's fault
                _cancel_quietly(client, futures)
                raise ClusterError(f"the Dask cluster failed during the sweep ({type(exc).__name__}: "
                                   f"{exc}); finished runs are kept in {runs_dir}, run the sweep again "
                                   f"to resume") from exc
            except BaseException:  # KeyboardInterrupt: stop what has not started; finished runs stay
                _cancel_quietly(client, futures)
                raise
    finally:
        bar.close()
        # temporary files of workers killed mid-write (the local cluster is closed by now)
        for one in pending:
            for leftover in runs_dir.glob(f".{one.key}.*.partial"):
                leftover.unlink(missing_ok=True)
    return results


# -- results ---------------------------------------------------------------------------------


def _metrics(history) -> dict:
    def finite(values):
        return [v for v in values or [] if isinstance(v, (int, float)) and math.isfinite(v)]

    history = history or {}
    accuracy, loss = history.get("test_accuracy") or [], history.get("test_loss") or []
    final_accuracy = accuracy[-1] if accuracy else None
    final_loss = loss[-1] if loss else None
    best = finite(accuracy)
    return {"test_accuracy": _finite_or_none(final_accuracy), "test_loss": _finite_or_none(final_loss),
            "best_test_accuracy": max(best) if best else None, "epochs": len(history.get("epoch") or [])}


def flat_record(record: dict, swept_keys) -> dict:
    """One row: ``key``, ``status``, ``variant``, each of ``swept_keys`` (read from the run's config;
    ``None`` where the run does not have it), final ``test_accuracy``/``test_loss``,
    ``best_test_accuracy``, ``epochs`` run, ``seconds`` and ``error``."""
    config = record.get("config") or {}
    row = {"key": record.get("key"), "status": record.get("status"),
           "variant": (config.get("variant") or {}).get("name")}
    for name in swept_keys:
        section, _, key = name.partition(".")
        row[name] = (config.get(section) or {}).get(key)
    row.update(_metrics(record.get("history")))
    row["seconds"] = record.get("seconds")
    row["error"] = record.get("error")
    return row


def _swept_keys(records) -> list:
    names = {}
    for record in records:
        names.update(dict.fromkeys(record.get("swept") or {}))
    return list(names)


def load(out_dir) -> list[dict]:
    """One flat record (:func:`flat_record`) per finished run in ``out_dir/runs``, sorted by key;
    the columns are the union of every run's swept keys. ``pandas.DataFrame(load(out_dir))``.
    A JSON file that is not a complete run record is a ``ValueError`` naming it."""
    runs_dir = Path(out_dir) / "runs"
    if not runs_dir.is_dir():
        raise ValueError(f"no sweep results in {out_dir}: {runs_dir} is not a folder")
    records = []
    for path in sorted(runs_dir.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable run record: {exc}") from None
        if not isinstance(record, dict) or record.get("key") != path.stem or record.get("status") not in STATUSES:
            raise ValueError(f"{path}: not a run record (needs key {path.stem!r} and a status among "
                             f"{', '.join(STATUSES)})")
        records.append(record)
    swept = _swept_keys(records)
    return [flat_record(record, swept) for record in records]


def plot(records, ax=None):
    """Final test accuracy against learning rate (``optimizer.lr``, log axis), one colour per
    variant (and per setting of any other swept key but seeds); the line is the mean over seeds
    (``*.seed`` keys), the band their min-max. A diverged run counts with the accuracy of its last
    whole epoch; where every run diverged before finishing one, an x on the bottom axis. Failed runs
    are left out. ``records``: :func:`load`'s rows. Returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [row for row in records if row.get("status") in ("completed", "diverged")]
    rows = [row for row in rows if isinstance(row.get("optimizer.lr"), (int, float))]
    if not rows:
        raise ValueError("plot needs completed or diverged runs with an optimizer.lr column (sweep "
                         "\"optimizer.lr\")")
    ignored = {"key", "status", "variant", "variant.name", "optimizer.lr", "test_accuracy", "test_loss",
               "best_test_accuracy", "epochs", "seconds", "error"}
    groups = {}
    for row in rows:
        # seeds (model.seed, train.seed, ...) are what the band aggregates over; other swept keys
        # are settings of their own
        others = ", ".join(f"{name.split('.', 1)[1]}={row[name]}" for name in row
                           if name not in ignored and not name.endswith(".seed") and row[name] is not None)
        label = f"{row['variant']} ({others})" if others else str(row["variant"])
        groups.setdefault(label, {}).setdefault(float(row["optimizer.lr"]), []).append(row["test_accuracy"])
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
    else:
        fig = ax.figure
    colours = plt.get_cmap("tab10")
    n_seeds = max(len(values) for by_lr in groups.values() for values in by_lr.values())
    any_lost = False
    for index, (label, by_lr) in enumerate(groups.items()):
        colour = colours(index % 10)
        lrs = sorted(by_lr)
        scored = [(lr, np.array([v for v in by_lr[lr] if v is not None], dtype=float)) for lr in lrs]
        xs = [lr for lr, values in scored if values.size]
        mean = [values.mean() for _, values in scored if values.size]
        low = [values.min() for _, values in scored if values.size]
        high = [values.max() for _, values in scored if values.size]
        ax.plot(xs, mean, marker="o", color=colour, label=label)
        ax.fill_between(xs, low, high, color=colour, alpha=0.2, linewidth=0)
        lost = [lr for lr, values in scored if not values.size]
        if lost:
            # nudged sideways on the log axis, so that variants diverging at the same lr all show
            nudge = 10 ** (0.025 * (index - (len(groups) - 1) / 2))
            ax.plot([lr * nudge for lr in lost], [0.0] * len(lost), linestyle="none", marker="x",
                    markersize=9, markeredgewidth=2, color=colour)
            any_lost = True
    if any_lost:
        ax.plot([], [], linestyle="none", marker="x", markersize=9, markeredgewidth=2, color="0.4",
                label="diverged before epoch 1")
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("learning rate (optimizer.lr)")
    ax.set_ylabel("final test accuracy")
    seeds = f"mean and min-max over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    ax.set_title(f"test accuracy against learning rate ({seeds})", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- command line ----------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``neurosim sweep`` on the ``add_subparsers()`` object of the neurosim CLI."""
    parser = subparsers.add_parser(
        "sweep", help="train every run of a sweep TOML (grid or list of runs) on a Dask cluster",
        description="Train the runs of a sweep file in parallel on a local Dask cluster or a "
                    "scheduler's; each run is recorded in OUT/runs/<key>.json and .npz, so running "
                    "the sweep again only computes what is missing. Prints a table and writes "
                    "OUT/summary.json. Exit status: 0 all completed, 1 some failed or diverged, 2 "
                    "bad input.")
    parser.add_argument("sweep", help="path to a sweep TOML, e.g. models/sweep_smoke.toml")
    parser.add_argument("--out", required=True, help="output folder (runs/, summary.json, sweep.png)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S, metavar="SECONDS",
                        help="give up reaching --scheduler after this long (default: %(default)s)")
    parser.add_argument("--plot", action="store_true",
                        help="save sweep.png: test accuracy against learning rate per variant")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_cli)
    return parser


def _table(rows, columns) -> str:
    widths = [max(len(col), *(len(str(row[i])) for row in rows)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(value).ljust(w) for value, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def run_cli(args) -> int:
    """``neurosim sweep``: 0 when every run completed, 1 when some failed or diverged, 2 for bad
    input (printed as one line naming the problem)."""
    try:
        runs = plan(args.sweep)
        swept = _swept_keys([{"swept": one.swept} for one in runs])
        if args.plot and "optimizer.lr" not in swept:
            raise ValueError(f"--plot draws accuracy against optimizer.lr, which {args.sweep} does not sweep")
        out = Path(args.out)
        done = sum(_finished_record(out / "runs" / f"{one.key}.json", one.key) is not None for one in runs)
        where = args.scheduler or "a local cluster"
        print(f"neurosim sweep: {len(runs)} runs, {done} recorded already in {out / 'runs'}"
              + ("" if done == len(runs) else f"; training {len(runs) - done} on {where}"))
        records = run(args.sweep, out, scheduler=args.scheduler, workers=args.workers,
                      progress=not args.quiet, connect_timeout=args.connect_timeout)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"neurosim: error: {exc}", file=sys.stderr)
        return 2
    except ClusterError as exc:
        print(f"neurosim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neurosim: interrupted; finished runs are kept, run the sweep again to resume", file=sys.stderr)
        return 130
    rows = [flat_record(record, swept) for record in records]
    shown = [name for name in swept if name != "variant.name"]
    table = [(row["key"], row["variant"], *(_format(row[name]) for name in shown), row["status"],
              _format(row["test_accuracy"])) for row in rows]
    print(_table(table, ("key", "variant", *shown, "status", "test accuracy")))
    for row in rows:
        if row["status"] != "completed":
            print(f"{row['key']} {row['status']}: {row['error']}")
    counts = {status: sum(row["status"] == status for row in rows) for status in STATUSES}
    summary = {"swept": swept, "counts": counts, "runs": rows}
    _write_if_changed(out / "summary.json", _json_bytes(summary))
    saved = ["summary.json"]
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        try:
            figure = plot(rows)
        except ValueError as exc:  # nothing to plot (every run failed): the runs are reported above
            print(f"neurosim: no plot: {exc}", file=sys.stderr)
        else:
            image = io.BytesIO()
            figure.savefig(image, dpi=120, format="png", metadata={"Software": None})
            plt.close(figure)
            _write_if_changed(out / "sweep.png", image.getvalue())
            saved.append("sweep.png")
    print(f"{counts['completed']} completed, {counts['diverged']} diverged, {counts['failed']} failed; "
          f"saved {' and '.join(saved)} in {out}")
    return 0 if counts["completed"] == len(rows) else 1
