"""Training checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is two files in the checkpoint folder, named by position:

    checkpoint-EEEE-BBBBBB.npz    arrays: "params", "optimizer/<name>", "variant/<name>"
    checkpoint-EEEE-BBBBBB.json   {"format": 1, "position": {"epoch", "batch"}, "sha256": <of the npz>,
                                   "optimizer": {"repr", "scalars"}, "variant": repr, "network": {...},
                                   "history": History.to_dict(), "epoch_progress": {...}}

``epoch`` counts from 0 and ``batch`` is the number of batches of that epoch already applied, so
resuming runs batch ``batch`` of epoch ``epoch`` next (the shuffling is ``seed + epoch``, so the
order is known). Both files are written to a temporary name, flushed to disk (``fsync``) and
renamed into place, the npz first and the JSON last: a JSON whose checksum matches its npz is a
complete checkpoint. :func:`latest` returns the newest one that reads back whole, and reports the
ones it skipped (truncated, corrupt, or mismatching their checksum).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = 1
KEEP = 3  # checkpoints kept; older ones are removed once a newer one is complete
_NAME = re.compile(r"^checkpoint-(\d{4,})-(\d{6,})\.json$")


@dataclass
class Checkpoint:
    """A checkpoint read back: ``epoch``, ``batch`` (batches of that epoch applied), ``params``,
    ``optimizer_state`` (for ``Optimizer.load_state``), ``variant_state`` (for
    ``Variant.restore_learned_state``), ``history`` (a dict), ``epoch_progress`` (the running sums
    of the epoch in progress), ``meta`` (the JSON) and ``path``."""

    epoch: int
    batch: int
    params: np.ndarray
    optimizer_state: dict
    variant_state: dict
    history: dict
    epoch_progress: dict
    meta: dict
    path: Path
    skipped: list = field(default_factory=list)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, flushed to disk and
    renamed over it: ``path`` is always either its old content or all of ``data``."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a filesystem without folder handles
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(descriptor)


def _split_state(state: dict, prefix: str) -> tuple:
    """``({prefix/name: array}, {name: JSON scalar})`` of an optimiser's or variant's state."""
    arrays, scalars = {}, {}
    for name, value in state.items():
        if name.startswith("_"):
            continue  # bookkeeping of the live object (which network it steps), not state
        if isinstance(value, np.ndarray):
            arrays[f"{prefix}/{name}"] = value
        elif value is None or isinstance(value, (bool, int, float, str)):
            scalars[name] = value
        elif isinstance(value, (np.integer, np.floating)):
            scalars[name] = value.item()
        else:
            raise TypeError(f"checkpoint: cannot store {prefix} state {name!r} of type {type(value).__name__}")
    return arrays, scalars


def save(folder, *, epoch: int, batch: int, net, optimizer, variant, history: dict,
         epoch_progress: dict, keep: int = KEEP) -> Path:
    """Write a checkpoint at (``epoch``, ``batch``) into ``folder`` (created if needed); returns the
    JSON path. Older checkpoints beyond the newest ``keep`` are removed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"checkpoint-{epoch:04d}-{batch:06d}"
    optimizer_arrays, optimizer_scalars = _split_state(optimizer.save_state(), "optimizer")
    variant_arrays, variant_scalars = _split_state(variant.learned_state(net), "variant")
    if variant_scalars:
        raise TypeError("checkpoint: a variant's learned state must be arrays")
    buffer = io.BytesIO()
    np.savez(buffer, params=net.params, **optimizer_arrays, **variant_arrays)
    data = buffer.getvalue()
    write_atomic(folder / f"{stem}.npz", data)
    meta = {"format": FORMAT, "position": {"epoch": int(epoch), "batch": int(batch)},
            "sha256": hashlib.sha256(data).hexdigest(),
            "optimizer": {"repr": repr(optimizer), "scalars": optimizer_scalars},
            "variant": repr(variant),
            "network": {"repr": repr(net), "dtype": str(net.params.dtype), "n_params": int(net.params.size)},
            "history": history, "epoch_progress": epoch_progress}
    path = folder / f"{stem}.json"
    write_atomic(path, json.dumps(meta, indent=1).encode())
    for old in _listed(folder)[keep:]:
        for suffix in (".json", ".npz"):
            old.with_suffix(suffix).unlink(missing_ok=True)
    return path


def _listed(folder: Path) -> list:
    """Checkpoint JSON paths in ``folder``, newest position first."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _NAME.match(path.name)
        if match:
            found.append(((int(match.group(1)), int(match.group(2))), path))
    return [path for _, path in sorted(found, reverse=True)]


def read(path) -> Checkpoint:
    """One checkpoint from its JSON path; ``ValueError`` naming the file and what is wrong."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint {path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path}: not a format-{FORMAT} neurosim checkpoint")
    try:
        epoch, batch = int(meta["position"]["epoch"]), int(meta["position"]["batch"])
        expected = meta["sha256"]
        scalars = dict(meta["optimizer"]["scalars"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"checkpoint {path}: its JSON lacks position, sha256 or optimizer") from None
    archive = path.with_suffix(".npz")
    try:
        data = archive.read_bytes()
    except OSError:
        raise ValueError(f"checkpoint {path}: its arrays {archive.name} are missing") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise ValueError(f"checkpoint {archive}: checksum mismatch (truncated or corrupted)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            content = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:  # pragma: no cover - checksum first
        raise ValueError(f"checkpoint {archive}: unreadable ({exc})") from None
    if "params" not in content:
        raise ValueError(f"checkpoint {archive}: no params array")
    optimizer_state = dict(scalars)
    variant_state = {}
    for name, value in content.items():
        if name.startswith("optimizer/"):
            optimizer_state[name.split("/", 1)[1]] = value
        elif name.startswith("variant/"):
            variant_state[name.split("/", 1)[1]] = value
    return Checkpoint(epoch, batch, content["params"], optimizer_state, variant_state,
                      meta.get("history") or {}, meta.get("epoch_progress") or {}, meta, path)


def latest(folder) -> Checkpoint | None:
    """The newest checkpoint in ``folder`` that reads back whole, or ``None`` if there is none; the
    ones skipped on the way are listed in its ``skipped`` (``[(path, reason)]``)."""
    skipped = []
    folder = Path(folder)
    for stale in folder.glob(".checkpoint-*.partial") if folder.is_dir() else ():
        stale.unlink(missing_ok=True)  # a write cut short by a crash
    for path in _listed(folder):
        try:
            found = read(path)
        except ValueError as exc:
            skipped.append((str(path), str(exc)))
            continue
        found.skipped = skipped
        return found
    if skipped:
        raise ValueError(f"no readable checkpoint in {folder}: " + "; ".join(reason for _, reason in skipped))
    return None
