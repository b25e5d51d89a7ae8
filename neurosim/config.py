"""Run configurations: TOML files in ``models/`` describing one training run.

```toml
[model]      # architecture
sizes = [64, 128, 128, 10]
activation = "tanh"
dtype = "float64"
seed = 0
[variant]    # name plus its hyper-parameters
name = "il"
T = 20
gamma = 0.1
[optimizer]  # name plus its hyper-parameters
name = "sgd"
lr = 0.05
[data]       # name plus its keyword arguments
name = "digits"
[train]
epochs = 10
batch_size = 32
seed = 0
[events]     # optional: send-on-delta messages between populations (neurosim.events)
kind = "send_on_delta"
threshold = 0.01
```

``[model] kind`` picks the architecture: ``"mlp"`` (default; ``sizes``), ``"cnn"`` (``layers``, a list of
tables as ``layer.config()`` writes them, and ``input_shape``), or ``"rnn"`` (``n_in``, ``n_hidden``,
``n_out``; samples are read as sequences of ``n_in`` values, 8x8 digits row by row):

```toml
[model]
kind = "cnn"
input_shape = [1, 8, 8]
layers = [{type = "conv2d", in_ch = 1, out_ch = 8, kernel_size = 3, padding = 1},
          {type = "avgpool2d", k = 2}, {type = "flatten"}, {type = "dense", n_in = 128, n_out = 10}]
```

Every section and key is checked; a bad one is a ``ValueError`` naming it (``model.sizes``).
``override(config, "train.epochs=3")`` applies the CLI's ``--set`` values (parsed as TOML values).
"""
from __future__ import annotations

import copy
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import datasets, events as event_models, optim
from .circuit import layers as layer_types
from .circuit.network import Network, mlp
from .circuit.recurrent import rnn
from .variants.base import variant as make_variant

SCHEMA = {
    "model": {"kind": str, "sizes": list, "layers": list, "input_shape": list, "n_in": int,
              "n_hidden": int, "n_out": int, "activation": str, "dtype": str, "seed": int},
    "variant": {"name": str},
    "optimizer": {"name": str},
    "data": {"name": str},
    "train": {"epochs": int, "batch_size": int, "seed": int},
    "events": {"kind": str},
}
MODEL_KINDS = {"mlp": ("sizes",), "cnn": ("layers", "input_shape"), "rnn": ("n_in", "n_hidden", "n_out")}
REQUIRED = {"model": (), "variant": ("name",), "optimizer": ("name",), "data": ("name",),
            "train": (), "events": ()}
OPEN_SECTIONS = ("variant", "optimizer", "data", "events")  # further keys are passed on
DEFAULTS = {"model": {"kind": "mlp", "activation": "tanh", "dtype": "float64", "seed": 0},
            "train": {"epochs": 10, "batch_size": 32, "seed": 0}, "events": {"kind": "dense"}}


def read_toml(path, what: str = "config") -> dict:
    """A TOML file as a dict; a missing file is ``FileNotFoundError``, a folder, binary or
    malformed file a ``ValueError`` naming ``what`` and the path."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path} is a folder, not a TOML file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None


def load(path) -> dict:
    """Read and validate a TOML run configuration."""
    return validate(read_toml(path, "config"))


def validate(config: dict) -> dict:
    """Fill defaults and check every section and key; returns a new dict."""
    if not isinstance(config, dict):
        raise TypeError("config must be a dict of sections")
    config = copy.deepcopy(config)
    for section in config:
        if section not in SCHEMA:
            raise ValueError(f"unknown config section [{section}]; expected {', '.join(SCHEMA)}")
    for section, keys in SCHEMA.items():
        body = config.setdefault(section, {})
        if not isinstance(body, dict):
            raise ValueError(f"config [{section}] must be a table")
        for key, value in DEFAULTS.get(section, {}).items():
            body.setdefault(key, value)
        for key in REQUIRED[section]:
            if key not in body:
                raise ValueError(f"config key {section}.{key} is required")
        for key, value in body.items():
            if key in keys:
                if not isinstance(value, keys[key]) or isinstance(value, bool):
                    raise ValueError(f"config key {section}.{key} must be {keys[key].__name__}, "
                                     f"got {value!r}")
            elif section not in OPEN_SECTIONS:
                raise ValueError(f"unknown config key {section}.{key}; expected one of "
                                 f"{', '.join(keys)}")
    model = config["model"]
    if model["kind"] not in MODEL_KINDS:
        raise ValueError(f"config key model.kind must be one of {', '.join(MODEL_KINDS)}, got "
                         f"{model['kind']!r}")
    for key in MODEL_KINDS[model["kind"]]:
        if key not in model:
            raise ValueError(f"config key model.{key} is required")
    for kind, keys in MODEL_KINDS.items():
        for key in keys:
            if kind != model["kind"] and key in model and key not in MODEL_KINDS[model["kind"]]:
                raise ValueError(f"config key model.{key} is for kind = {kind!r}, not {model['kind']!r}")
    return config


def build_model(model: dict):
    """The network described by a validated ``[model]`` table."""
    common = dict(activation=model["activation"], seed=model["seed"], dtype=model["dtype"])
    if model["kind"] == "cnn":
        layers = []
        for index, spec in enumerate(model["layers"]):
            try:
                layers.append(layer_types.from_config(spec))
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"model.layers[{index}]: {exc}") from None
        return Network(layers, input_shape=tuple(model["input_shape"]), **common)
    if model["kind"] == "rnn":
        return rnn(model["n_in"], model["n_hidden"], model["n_out"], **common)
    return mlp(model["sizes"], **common)


def override(config: dict, assignment: str) -> dict:
    """Apply ``"section.key=value"`` (value parsed as TOML, else kept as a string)."""
    if "=" not in assignment or "." not in assignment.split("=", 1)[0]:
        raise ValueError(f"--set expects section.key=value, got {assignment!r}")
    dotted, raw = assignment.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    config = copy.deepcopy(config)
    if section not in SCHEMA:
        raise ValueError(f"--set {assignment!r}: unknown config section [{section}]")
    table = config.setdefault(section, {})
    if key == "name" and section in ("variant", "optimizer", "data") and table.get("name") != value:
        # a new variant, optimiser or dataset keeps only the settings it takes: --set variant.name=zil
        # on an IL config drops T and gamma instead of failing on them
        accepted = accepted_keys(section, value)
        if accepted is not None:
            for other in [k for k in table if k != "name" and k not in accepted]:
                del table[other]
    table[key] = value
    return validate(config)


def unset(config: dict, dotted: str) -> dict:
    """Remove ``"section.key"`` (the CLI's ``--unset``), so the default applies."""
    if "." not in dotted:
        raise ValueError(f"--unset expects section.key, got {dotted!r}")
    section, key = dotted.strip().split(".", 1)
    if section not in SCHEMA:
        raise ValueError(f"--unset {dotted!r}: unknown config section [{section}]")
    if key == "name" and section in REQUIRED and "name" in REQUIRED[section]:
        raise ValueError(f"--unset {dotted!r}: [{section}] needs a name")
    config = copy.deepcopy(config)
    if key not in config.get(section, {}):
        raise ValueError(f"--unset {dotted!r}: the config has no {dotted}")
    del config[section][key]
    return validate(config)


def accepted_keys(section: str, name) -> set | None:
    """The settings the variant, optimiser or dataset of this name takes besides ``name``, or
    ``None`` where the name is unknown or it takes anything (validation has the last word)."""
    import inspect

    from .variants.base import REGISTRY

    if not isinstance(name, str):
        return None
    if section == "variant":
        found = REGISTRY.get(name)
        return None if found is None else set(found.defaults)
    if section == "optimizer":
        target = optim.OPTIMIZERS.get(name)
    elif section == "data":
        target = datasets._REGISTRY.get(name.strip().lower().replace("-", "").replace("_", ""))
    else:
        return None
    if target is None:
        return None
    parameters = inspect.signature(target).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _extra(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "name"}


def build(config: dict):
    """``(net, variant, optimizer, dataset, train_kwargs)`` from a validated config.

    Errors from the constructors are re-raised naming the config section.
    """
    config = validate(config)
    parts = {}
    steps = (
        ("model", build_model),
        ("variant", lambda c: make_variant(c["name"], **_extra(c))),
        ("optimizer", lambda c: optim.make(c["name"], **_extra(c))),
        ("data", lambda c: datasets.load(c["name"], **_extra(c))),
    )
    for section, make in steps:
        try:
            parts[section] = make(config[section])
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"config [{section}]: {exc}") from None
    train_kwargs = dict(config["train"])
    try:
        chosen = event_models.from_config(config["events"])
        event_models.resolve(chosen, parts["variant"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"config [events]: {exc}") from None
    if not isinstance(chosen, event_models.Dense):
        train_kwargs["events"] = chosen
    return parts["model"], parts["variant"], parts["optimizer"], parts["data"], train_kwargs
