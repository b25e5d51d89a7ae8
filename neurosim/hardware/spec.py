"""Chip specifications as data: every figure with its unit, its source and how it is known.

A spec is a TOML file (``neurosim/hardware/specs/<name>.toml``, or any path) with four tables of
figures, each figure an inline table ``{ value, unit, status, source }``:

    [chip]     name, title, references (strings)
    [core]     neurons, synaptic_memory, fan_in, fan_out, weight_bits,
               cores_per_chip, cores_per_tile, mesh_width, mesh_height
    [energy]   synaptic_op, synaptic_update, neuron_update_active, neuron_update_inactive,
               spike_in_tile, hop_east_west, hop_north_south, chip_crossing          (joules)
    [time]     synaptic_op, synaptic_update, neuron_update_active, neuron_update_inactive,
               spike_in_tile, hop_east_west, hop_north_south, chip_crossing,
               barrier_min, barrier_max, min_tick                                    (seconds)
    [features] on_chip_learning, graded_spikes                                       (true/false)

``status`` says how the figure is known: ``measured`` (on silicon), ``pre-silicon`` (simulation of
the design), ``design`` (an architectural limit stated by the maker) or ``assumed`` (no published
figure; ours, with the reason in ``source``). Energies may be given in ``J``, ``mJ``, ``uJ``,
``nJ``, ``pJ`` or ``fJ`` and times in ``s``, ``ms``, ``us``, ``ns`` or ``ps``; they are stored in
joules and seconds.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPEC_DIR = Path(__file__).parent / "specs"
CHIPS = ("loihi", "loihi2", "truenorth", "spinnaker2", "generic")
STATUSES = ("measured", "pre-silicon", "design", "assumed")

_COUNT_UNITS = {"neurons": "neurons", "synaptic_memory": "bytes", "fan_in": "axons", "fan_out": "axons",
                "weight_bits": "bits", "cores_per_chip": "cores", "cores_per_tile": "cores",
                "mesh_width": "tiles", "mesh_height": "tiles"}
_EVENTS = ("synaptic_op", "synaptic_update", "neuron_update_active", "neuron_update_inactive",
           "spike_in_tile", "hop_east_west", "hop_north_south", "chip_crossing")
SCHEMA = {
    "core": _COUNT_UNITS,
    "energy": dict.fromkeys(_EVENTS, "J"),
    "time": dict.fromkeys(_EVENTS + ("barrier_min", "barrier_max", "min_tick"), "s"),
    "features": {"on_chip_learning": "bool", "graded_spikes": "bool"},
}
_SCALE = {"J": {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "nJ": 1e-9, "pJ": 1e-12, "fJ": 1e-15},
          "s": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}}


@dataclass(frozen=True)
class Figure:
    """One number of a spec: ``value`` in SI units (J, s) or a count, with its provenance."""

    value: float
    unit: str
    status: str
    source: str


@dataclass(frozen=True)
class ChipSpec:
    """A loaded spec: ``spec.core["neurons"].value``, ``spec.energy["synaptic_op"].value`` (J) ...

    Shortcuts: :attr:`neurons_per_chip`, :meth:`value`, :meth:`figures` (every figure by dotted
    name, for tables and provenance checks).
    """

    name: str
    title: str
    references: tuple
    core: dict
    energy: dict
    time: dict
    features: dict
    path: str = ""
    notes: tuple = field(default_factory=tuple)

    def value(self, dotted: str):
        """``spec.value("energy.synaptic_op")`` -> the figure's value (J, s, a count or a bool)."""
        section, _, key = dotted.partition(".")
        try:
            return getattr(self, section)[key].value
        except (AttributeError, KeyError):
            raise ValueError(f"spec {self.name!r} has no figure {dotted!r}") from None

    def figures(self) -> dict:
        """``{"core.neurons": Figure, ...}`` for every figure, in schema order."""
        return {f"{section}.{key}": getattr(self, section)[key] for section, keys in SCHEMA.items()
                for key in keys}

    @property
    def neurons_per_chip(self) -> int:
        return int(self.core["neurons"].value * self.core["cores_per_chip"].value)

    @property
    def tiles_per_chip(self) -> int:
        return math.ceil(self.core["cores_per_chip"].value / self.core["cores_per_tile"].value)

    def table(self) -> str:
        """Every figure with its unit, status and source, one per line."""
        lines = [f"{self.title} ({self.name})"]
        for dotted, figure in self.figures().items():
            value = figure.value if figure.unit in ("bool",) else f"{figure.value:.4g}"
            lines.append(f"  {dotted:<30} {value:>10} {figure.unit:<7} {figure.status:<11} {figure.source}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ChipSpec({self.name!r}, {self.core['cores_per_chip'].value:g} cores x " \
               f"{self.core['neurons'].value:g} neurons)"


def available() -> tuple:
    """The names of the shipped chip specs."""
    return CHIPS


def load_spec(name_or_path) -> ChipSpec:
    """A chip spec by name (``loihi``, ``loihi2``, ``truenorth``, ``spinnaker2``, ``generic``) or from
    a TOML file path. Raises ``ValueError`` naming the file and field for a missing, negative,
    non-numeric or unsourced figure, and for an unknown name."""
    if isinstance(name_or_path, ChipSpec):
        return name_or_path
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"spec must be a chip name or a path to a TOML file, got {type(name_or_path).__name__}")
    text = str(name_or_path)
    if text in CHIPS:
        path = SPEC_DIR / f"{text}.toml"
    elif text.endswith(".toml") or Path(text).exists():
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"spec file {text} does not exist")
    else:
        raise ValueError(f"unknown chip {text!r}; choose from {', '.join(CHIPS)} or give a path to a TOML file")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"spec file {path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"spec file {path}: not a text file") from None
    return parse(raw, str(path))


def parse(raw: dict, where: str = "<spec>") -> ChipSpec:
    """Validate a spec already read from TOML (see the module docstring for the schema)."""
    if not isinstance(raw, dict):
        raise ValueError(f"spec {where}: expected tables [chip], [core], [energy], [time], [features]")
    chip = raw.get("chip")
    if not isinstance(chip, dict) or not isinstance(chip.get("name"), str) or not chip["name"]:
        raise ValueError(f"spec {where}: [chip] needs a name (a string)")
    references = chip.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise ValueError(f"spec {where}: chip.references must be a list of strings")
    unknown = set(raw) - set(SCHEMA) - {"chip"}
    if unknown:
        raise ValueError(f"spec {where}: unknown table(s) {', '.join(sorted(unknown))}; "
                         f"expected chip, {', '.join(SCHEMA)}")
    sections = {}
    for section, keys in SCHEMA.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            raise ValueError(f"spec {where}: missing table [{section}]")
        extra = set(table) - set(keys)
        if extra:
            raise ValueError(f"spec {where}: unknown figure(s) {', '.join(f'{section}.{k}' for k in sorted(extra))}")
        sections[section] = {key: _figure(table.get(key), f"{section}.{key}", unit, where)
                             for key, unit in keys.items()}
    core = sections["core"]
    for key in ("neurons", "cores_per_chip", "cores_per_tile", "mesh_width", "mesh_height", "weight_bits",
                "fan_in", "fan_out"):
        value = core[key].value
        if value < 1 or value != int(value):
            raise ValueError(f"spec {where}: core.{key} must be a whole number >= 1, got {value}")
    if core["cores_per_chip"].value > core["cores_per_tile"].value * core["mesh_width"].value * core["mesh_height"].value:
        raise ValueError(f"spec {where}: core.cores_per_chip ({core['cores_per_chip'].value:g}) exceeds "
                         f"cores_per_tile x mesh_width x mesh_height")
    if sections["time"]["barrier_max"].value < sections["time"]["barrier_min"].value:
        raise ValueError(f"spec {where}: time.barrier_max is below time.barrier_min")
    return ChipSpec(name=chip["name"], title=str(chip.get("title", chip["name"])), references=tuple(references),
                    path=where, notes=tuple(chip.get("notes", [])), **sections)


def _figure(entry, dotted: str, unit: str, where: str) -> Figure:
    if entry is None:
        raise ValueError(f"spec {where}: missing figure {dotted}")
    if not isinstance(entry, dict):
        raise ValueError(f"spec {where}: {dotted} must be a table {{ value, unit, status, source }}, got {entry!r}")
    extra = set(entry) - {"value", "unit", "status", "source"}
    if extra:
        raise ValueError(f"spec {where}: {dotted} has unknown key(s) {', '.join(sorted(extra))}")
    source, status = entry.get("source"), entry.get("status")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"spec {where}: {dotted} has no source")
    if status not in STATUSES:
        raise ValueError(f"spec {where}: {dotted}.status must be one of {', '.join(STATUSES)}, got {status!r}")
    value = entry.get("value")
    if unit == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"spec {where}: {dotted} must be true or false, got {value!r}")
        return Figure(value, "bool", status, source)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"spec {where}: {dotted} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"spec {where}: {dotted} must be finite and >= 0, got {value}")
    given = entry.get("unit", unit)
    if unit in _SCALE:
        if given not in _SCALE[unit]:
            raise ValueError(f"spec {where}: {dotted}.unit must be one of {', '.join(_SCALE[unit])}, got {given!r}")
        value = value * _SCALE[unit][given]
    elif given != unit:
        raise ValueError(f"spec {where}: {dotted}.unit must be {unit!r}, got {given!r}")
    return Figure(float(value), unit, status, source)
