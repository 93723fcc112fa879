"""Saving and loading models: an `MLP` as a small, exact, human-readable JSON file.

The file holds the architecture and every parameter:

    {
     "format": "micrograd_batch.MLP",
     "format_version": 1,
     "nin": 2,
     "nouts": [4, 1],
     "activation": "relu",
     "output_activation": "linear",
     "fused": true,
     "layers": [{"weights": [[w11, w12], ...], "biases": [b1, ...]}, ...]
    }

`layers[i]["weights"][j]` are neuron j's weights and `layers[i]["biases"][j]` its bias, the
order of `model.parameters()`. Python writes a float as the shortest decimal that reads back as
the same float, so every parameter — and therefore every prediction — comes back bit for bit.
NaN and infinite parameters are refused when saving (JSON has no spelling for them).

Writing is atomic: the text goes to a temporary file in the same directory, is flushed and
fsync'ed, and only then renamed over the old file (`os.replace`). A crash, an error or a Ctrl-C
half-way leaves the previous file untouched and no temporary file or open descriptor behind.
An existing file keeps its permission bits; a symbolic link stays a link to the new file.

A file that is not a model this version can read — truncated, corrupt, wrong format version,
missing or unknown keys, wrong types, the wrong number of parameters, an integer a float cannot
hold exactly, not a regular file, more than MAX_FILE_BYTES — raises `ModelFileError` (a
`ValueError`) naming the file and the problem. Problems opening the file itself (missing file,
no permission) are the usual `OSError`s; a path that is not a str, bytes or os.PathLike is a
TypeError, and nothing is opened.

A checkpoint (`save_checkpoint`, `load_checkpoint`) holds the model (BatchNorm's running
statistics included), the optimiser's state and the training loop's progress, so a run can
resume exactly:

    {"format": "micrograd_batch.checkpoint", "format_version": 1,
     "model": {the model dict above},
     "optimizer": {"kind": "SGD", "settings": {"lr": .., "momentum": .., "weight_decay": ..},
                   "state": {"velocity": [...]}},          # Adam: beta1, beta2, eps; m, v, t
     "progress": {...}}              # the loop's own state; see train.fit
"""

from __future__ import annotations

import json
import math
import os
import stat
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ._checks import is_whole_number
from ._files import checked_destination, checked_path, write_atomically
from .nn import ACTIVATIONS, MLP
from .optim import SGD, Adam, Optimizer

FORMAT = "micrograd_batch.MLP"
FORMAT_VERSION = 1

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

_KEYS = ("format", "format_version", "nin", "nouts", "activation", "output_activation", "fused",
         "layers")
_LAYER_KEYS = ("weights", "biases")


class ModelFileError(ValueError):
    """A model or checkpoint file (or dict) that cannot be loaded: `path` names it and `problem`
    says why."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"cannot load {path}: {problem}")
        self.path = path
        self.problem = problem


# ---- model <-> dict --------------------------------------------------------------------------


def _neuron_setting(model: MLP, name: str, default: Any) -> Any:
    """A setting every neuron of `model` shares (e.g. `fused`); the default when absent."""
    values = {getattr(n, name, default) for layer in model.layers for n in layer.neurons}
    if len(values) != 1:
        raise ValueError(f"the neurons of this MLP disagree on {name!r} ({sorted(values)}); "
                         "such a model cannot be described by the file format")
    return values.pop()


def model_to_dict(model: MLP) -> dict[str, Any]:
    """The architecture and parameters of `model` as a JSON-ready dict (see the module doc).

    Raises TypeError for anything but an `MLP`, and ValueError if a parameter is NaN or
    infinite (it could not be written exactly) or the model's parts do not fit its sizes.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"can only save an MLP, got {type(model).__name__}")
    sizes = list(model.sizes)
    params = _layer_parameters(model)
    expected = sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(sizes) - 1))
    if len(params) != expected:
        raise ValueError(f"the MLP has {len(params)} parameters but its sizes {sizes} need "
                         f"{expected}")
    for i, p in enumerate(params):
        if type(p.data) is not float or not math.isfinite(p.data):
            raise ValueError(
                f"parameter {i} ({p.label or 'unlabelled'}) is {p.data!r}; only finite floats "
                "can be saved exactly (did training diverge?)"
            )
    layers = []
    it = iter(params)
    for nin, nout in zip(sizes, sizes[1:]):
        weights, biases = [], []
        for _ in range(nout):
            weights.append([next(it).data for _ in range(nin)])
            biases.append(next(it).data)
        layers.append({"weights": weights, "biases": biases})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nin": sizes[0],
        "nouts": sizes[1:],
        "activation": model.activation,
        "output_activation": model.output_activation,
        "fused": bool(_neuron_setting(model, "fused", True)),
        "layers": layers,
        **_norms_to_dict(model),
    }


def _number(x: object, where: str, source: object) -> float:
    """A number read from a file: a finite float, or an int a float holds exactly (not a bool)."""
    if type(x) not in (int, float):
        raise ModelFileError(source, f"{where} is {type(x).__name__} {x!r:.40}, expected a number")
    try:
        value = float(x)  # type: ignore[arg-type]  # an int or a float, checked above
    except OverflowError:
        raise ModelFileError(source, f"{where} is too large for a float") from None
    if not math.isfinite(value):
        raise ModelFileError(source, f"{where} is {value!r}, expected a finite number")
    if value != x:  # an int such as 2**53 + 1: a float would silently round it
        raise ModelFileError(source, f"{where} is the integer {x!r:.40}, which a float cannot hold "
                                     f"exactly (it would become {value!r})")
    return value


def _check_header(data: object, source: object, fmt: str = FORMAT) -> dict[str, Any]:
    """`data` as a dict whose 'format' is `fmt` and whose 'format_version' this version reads."""
    if not isinstance(data, dict):
        raise ModelFileError(source, f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != fmt:
        raise ModelFileError(source, f"'format' is {data.get('format')!r:.60}, expected {fmt!r}")
    version = data.get("format_version")
    if type(version) is not int:
        raise ModelFileError(source, f"'format_version' is {version!r:.40}, expected an integer")
    if version != FORMAT_VERSION:
        newer = " (written by a newer version of micrograd_batch)" if version > FORMAT_VERSION else ""
        raise ModelFileError(source, f"format_version {version} is not supported{newer}; "
                                     f"this version reads format_version {FORMAT_VERSION}")
    return data


def _check_keys(data: dict[Any, Any], keys: Sequence[str], source: object, where: str = "",
                optional: Sequence[str] = ()) -> None:
    """All the keys `keys`, and no others but `optional` ones: none missing, none unknown."""
    missing = [k for k in keys if k not in data]
    if missing:
        raise ModelFileError(source, f"missing key(s) {missing}{where}")
    unknown = sorted(str(k) for k in data if k not in keys and k not in optional)
    if unknown:
        raise ModelFileError(source, f"unknown key(s) {unknown}{where}")


def _check_architecture(data: dict[str, Any], source: object) -> list[int]:
    """The layer sizes [nin, *nouts], the activations and `fused`, checked; returns the sizes."""
    nin, nouts = data["nin"], data["nouts"]
    if not is_whole_number(nin):
        raise ModelFileError(source, f"'nin' is {nin!r:.40}, expected a whole number >= 1")
    if not isinstance(nouts, list) or not nouts or not all(is_whole_number(n) for n in nouts):
        raise ModelFileError(source, f"'nouts' is {nouts!r:.60}, expected a non-empty list of "
                                     "whole numbers >= 1")
    for key in ("activation", "output_activation"):
        if not isinstance(data[key], str) or data[key] not in ACTIVATIONS:
            raise ModelFileError(source, f"{key!r} is {data[key]!r:.40}, expected one of "
                                         f"{sorted(ACTIVATIONS)}")
    if type(data["fused"]) is not bool:
        raise ModelFileError(source, f"'fused' is {data['fused']!r:.40}, expected true or false")
    return [nin, *nouts]


def _layer_values(layer: object, where: str, fan_in: int, width: int, source: object) -> list[float]:
    """One layer's parameters in `parameters()` order: each neuron's weights, then its bias."""
    if not isinstance(layer, dict) or set(layer) != set(_LAYER_KEYS):
        raise ModelFileError(source, f"{where} must be an object with exactly the keys "
                                     f"{list(_LAYER_KEYS)}")
    weights, biases = layer["weights"], layer["biases"]
    if not isinstance(weights, list) or len(weights) != width:
        raise ModelFileError(source, f"{where}.weights must be a list of {width} rows (one per neuron)")
    if not isinstance(biases, list) or len(biases) != width:
        raise ModelFileError(source, f"{where}.biases must be a list of {width} numbers")
    params: list[float] = []
    for j, row in enumerate(weights):
        if not isinstance(row, list) or len(row) != fan_in:
            raise ModelFileError(source, f"{where}.weights[{j}] must be a list of {fan_in} "
                                         "numbers (one per input)")
        params.extend(_number(w, f"{where}.weights[{j}][{k}]", source) for k, w in enumerate(row))
        params.append(_number(biases[j], f"{where}.biases[{j}]", source))
    return params


def _checked(data: object, source: object) -> tuple[dict[str, Any], list[float]]:
    """Validate a model dict completely; return it and its parameters in `parameters()` order.

    Nothing is built before every check has passed, so a bad file never allocates a model of
    the size it claims unless the parameters for that size are really there.
    """
    spec = _check_header(data, source)
    _check_keys(spec, _KEYS, source, optional=_NORM_KEYS)
    sizes = _check_architecture(spec, source)
    layers = spec["layers"]
    if not isinstance(layers, list) or len(layers) != len(sizes) - 1:
        count = len(layers) if isinstance(layers, list) else type(layers).__name__
        raise ModelFileError(source, f"'layers' has {count} entries, expected {len(sizes) - 1} "
                                     f"(one per entry of nouts)")
    params: list[float] = []
    for i, layer in enumerate(layers):
        params.extend(_layer_values(layer, f"layers[{i}]", sizes[i], sizes[i + 1], source))
    return spec, params


def model_from_dict(data: object, source: object = "<dict>") -> MLP:
    """Build the `MLP` a dict from `model_to_dict` describes; ModelFileError if it is invalid."""
    spec, params = _checked(data, source)
    norms = _checked_norms(spec, source)
    # seed=0: the throw-away initial weights come from a private generator, so loading a model
    # never disturbs the global `random` state.
    model = MLP(spec["nin"], spec["nouts"], activation=spec["activation"],
                output_activation=spec["output_activation"], seed=0, fused=spec["fused"],
                norm=spec.get("norm"))
    _set_values(model, params, norms)
    return model


# ---- files -----------------------------------------------------------------------------------

MAX_FILE_BYTES = 256 * 2**20
"""The largest model or checkpoint file `load_model`/`load_checkpoint` read (256 MiB, far above
any model this scalar engine can train); a bigger file is refused before it is read."""


def save_model(model: MLP, path: PathLike) -> None:
    """Write `model` to `path` as JSON, atomically: all of the new file or all of the old one.

    The model and path are checked first (TypeError for a non-MLP or a path that is not a str,
    bytes or os.PathLike; ValueError for a NaN or infinite parameter; IsADirectoryError for a
    directory; FileNotFoundError naming a missing folder), before the disk is touched.
    The write keeps an existing file's permission bits and writes through a symbolic link.
    """
    data = model_to_dict(model)
    checked_destination(path)
    write_atomically(path, json.dumps(data, allow_nan=False, indent=1) + "\n")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a model file may contain")


def _open_without_blocking(name: Union[str, bytes], flags: int) -> int:
    """`open`'s opener: O_NONBLOCK, so opening a FIFO returns at once instead of waiting."""
    return os.open(name, flags | getattr(os, "O_NONBLOCK", 0))


def _read_bytes(path: object) -> bytes:
    """The bytes of the regular file `path`, at most MAX_FILE_BYTES of them.

    A FIFO, a device (e.g. a link to /dev/zero) or a file larger than the limit raises
    ModelFileError without being read; a missing or unreadable file the usual OSError.
    """
    with open(checked_path(path), "rb", opener=_open_without_blocking) as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(path, "not a regular file (a FIFO, device or socket cannot hold "
                                       "a model)")
        if info.st_size > MAX_FILE_BYTES:
            raise ModelFileError(path, f"the file has {info.st_size} bytes, more than the "
                                       f"{MAX_FILE_BYTES} a model file may have")
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:  # it grew while we read it
        raise ModelFileError(path, f"the file has more than the {MAX_FILE_BYTES} bytes a model "
                                   "file may have")
    return raw


def _read(path: object) -> Any:
    """The JSON value in the file `path`; ModelFileError if it is not valid UTF-8 JSON."""
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ModelFileError(path, f"not UTF-8 text ({error})") from None
    if not text.strip():
        raise ModelFileError(path, "the file is empty")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ModelFileError(path, "not valid JSON (nested too deeply)") from None
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        raise ModelFileError(path, f"not valid JSON, or truncated ({error})") from None


def load_model(path: PathLike) -> MLP:
    """Read a model saved by `save_model`: an `MLP` whose predictions are bit-identical.

    Raises ModelFileError (a ValueError) naming `path` if the file is not such a model,
    TypeError if `path` is not a str, bytes or os.PathLike, and the usual OSError (e.g.
    FileNotFoundError) if it cannot be read.
    """
    return model_from_dict(_read(path), source=path)


def _parameters_for(model: MLP, data: object, source: object) -> tuple[list[float], list[dict[str, Any]]]:
    """The weights and biases, and the norms' entries, a model dict holds for `model`, checked:
    same sizes, activations and norm (`fused`, which changes no number, may differ). Nothing is
    changed."""
    spec, params = _checked(data, source)
    norms = _checked_norms(spec, source)
    theirs = ([spec["nin"], *spec["nouts"]], spec["activation"], spec["output_activation"], spec.get("norm"))
    ours = (list(model.sizes), model.activation, model.output_activation, model.norm)
    if theirs != ours:
        raise ModelFileError(
            source, f"the file holds a model with sizes {theirs[0]} and activations "
                    f"{theirs[1]!r}/{theirs[2]!r} and norm {theirs[3]!r}, but this model has sizes "
                    f"{ours[0]} and activations {ours[1]!r}/{ours[2]!r} and norm {ours[3]!r}; the model "
                    "was not changed")
    if len(_layer_parameters(model)) != len(params):
        raise ModelFileError(source, f"the file has {len(params)} parameters, the model "
                                     f"{len(_layer_parameters(model))}; the model was not changed")
    return params, norms


def _set_values(model: MLP, params: list[float], norms: list[dict[str, Any]]) -> None:
    """Copy checked weights, biases and norm entries into `model`."""
    for p, value in zip(_layer_parameters(model), params):
        p.data = value
    _set_norms(model, norms)


def load_parameters_into(model: MLP, path: PathLike) -> None:
    """Copy the parameters saved in `path` into an existing `model` of the same architecture.

    The file must describe the same sizes, activations and norm as `model` (`fused`, which does
    not change any number, may differ). On any problem — a bad file or a different architecture
    — ModelFileError is raised and `model` is not changed at all. Gradients are left as they are.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"can only load parameters into an MLP, got {type(model).__name__}")
    _set_values(model, *_parameters_for(model, _read(path), path))


# ---- normalisation layers (MLP(..., norm="batch" | "layer")) ----------------------------------
# A model with norms has two more keys: "norm" ("batch" or "layer") and "norms", one object per
# hidden layer with its γs ("gamma"), βs ("beta") and "eps"; a BatchNorm adds "momentum" and its
# running statistics "running_mean" and "running_var", all exact. The mode (train/eval) is not
# saved: a loaded model starts in training mode, as a new one does.

_NORM_KEYS = ("norm", "norms")
_NORM_FIELDS = {"batch": ("gamma", "beta", "eps", "momentum", "running_mean", "running_var"),
                "layer": ("gamma", "beta", "eps")}


def _layer_parameters(model: MLP) -> list:
    """The weights and biases of `model`, in `parameters()` order, without the norms' γ and β."""
    return [p for layer in model.layers for p in layer.parameters()]


def _norms_to_dict(model: MLP) -> dict[str, Any]:
    """{"norm": ..., "norms": [...]} for a model with norms (see above), {} for one without."""
    if getattr(model, "norm", None) is None:
        return {}
    entries = []
    for i, n in enumerate(model.norms):
        entry = {field: list(getattr(n, field)) if field.startswith("running") else getattr(n, field)
                 for field in _NORM_FIELDS[model.norm]}  # type: ignore[index]
        entry["gamma"], entry["beta"] = [g.data for g in n.gamma], [b.data for b in n.beta]
        numbers = [x for v in entry.values() for x in (v if isinstance(v, list) else [v])]
        if not all(type(x) is float and math.isfinite(x) for x in numbers):
            raise ValueError(f"norm {i + 1} holds a NaN or infinite number; only finite floats can "
                             "be saved exactly (did training diverge?)")
        entries.append(entry)
    return {"norm": model.norm, "norms": entries}


def _checked_norms(spec: dict[str, Any], source: object) -> list[dict[str, Any]]:
    """The "norms" entries of a checked model dict, validated against its sizes ([] if none)."""
    norm = spec.get("norm")
    if norm is None and "norms" not in spec:
        return []
    if norm not in _NORM_FIELDS or not isinstance(spec.get("norms"), list):
        raise ModelFileError(source, f"'norm' is {norm!r:.40} with 'norms' "
                                     f"{type(spec.get('norms')).__name__}, expected one of "
                                     f"{sorted(_NORM_FIELDS)} and a list")
    widths = spec["nouts"][:-1]
    if len(spec["norms"]) != len(widths):
        raise ModelFileError(source, f"'norms' has {len(spec['norms'])} entries, expected "
                                     f"{len(widths)} (one per hidden layer)")
    return [_checked_norm(entry, _NORM_FIELDS[norm], width, f"norms[{i}]", source)
            for i, (entry, width) in enumerate(zip(spec["norms"], widths))]


def _checked_norm(entry: object, keys: tuple[str, ...], width: int, where: str, source: object) -> dict[str, Any]:
    """One "norms" entry with exactly `keys`, its lists `width` numbers long, checked."""
    if not isinstance(entry, dict) or set(entry) != set(keys):
        raise ModelFileError(source, f"{where} must be an object with exactly the keys {list(keys)}")
    fields: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ("eps", "momentum"):
            fields[key] = _number(value, f"{where}.{key}", source)
        elif not isinstance(value, list) or len(value) != width:
            raise ModelFileError(source, f"{where}.{key} must be a list of {width} numbers")
        else:
            fields[key] = [_number(x, f"{where}.{key}[{j}]", source) for j, x in enumerate(value)]
    if not (fields["eps"] > 0.0 and 0.0 <= fields.get("momentum", 0.0) <= 1.0
            and min(fields.get("running_var", [0.0])) >= 0.0):
        raise ModelFileError(source, f"{where} needs eps > 0, momentum in [0, 1] and running_var >= 0")
    return fields


def _set_norms(model: MLP, norms: list[dict[str, Any]]) -> None:
    """Copy checked "norms" entries into the model's norms (γ, β, eps, running statistics)."""
    for n, fields in zip(model.norms, norms):
        for key, value in fields.items():
            if key in ("gamma", "beta"):
                for p, x in zip(getattr(n, key), value):
                    p.data = x
            else:
                setattr(n, key, value)


# ---- checkpoints: model, optimiser and the training loop's progress ---------------------------

CHECKPOINT_FORMAT = "micrograd_batch.checkpoint"
_CHECKPOINT_KEYS = ("format", "format_version", "model", "optimizer", "progress")
# Checkpoints written by earlier versions also hold "buffers": [] (a hook for a model.buffers() no
# library model has); such a file is still read, one whose "buffers" holds anything is refused.
_OLD_KEYS = ("buffers",)
_OPTIMIZER_KEYS = ("kind", "settings", "state")

# Per optimiser kind: its class, its settings (floats), its per-parameter state (lists of floats,
# one number per parameter) and its counters (whole numbers >= 0).
_OPTIMIZERS: dict[str, tuple[type, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "SGD": (SGD, ("lr", "momentum", "weight_decay"), ("velocity",), ()),
    "Adam": (Adam, ("lr", "beta1", "beta2", "eps", "weight_decay"), ("m", "v"), ("t",)),
}


def _optimizer_kind(optimizer: object) -> str:
    """'SGD' or 'Adam'; a TypeError for anything else (whose state could not be saved exactly)."""
    for kind, (cls, *_) in _OPTIMIZERS.items():
        if type(optimizer) is cls:
            return kind
    raise TypeError(f"a checkpoint can hold the state of SGD or Adam, got {type(optimizer).__name__}"
                    " (a subclass may keep state these two do not have)")


def check_checkpointable(model: object, optimizer: object, path: object = "checkpoint.json") -> None:
    """A TypeError/ValueError, before any work, unless `model` and `optimizer` can be saved in a
    checkpoint at `path` and restored exactly (see `save_checkpoint`); an OSError if `path` is a
    directory or its folder is missing (see `_files.checked_destination`)."""
    checked_destination(path)
    _check_matching(model, optimizer)  # type: ignore[arg-type]


def _check_matching(model: MLP, optimizer: Optimizer) -> None:
    """A TypeError/ValueError unless `optimizer` updates exactly `model.parameters()`, in order."""
    if not isinstance(model, MLP):
        raise TypeError(f"a checkpoint holds an MLP, got {type(model).__name__}")
    _optimizer_kind(optimizer)
    params = model.parameters()
    if len(optimizer.params) != len(params) or any(a is not b for a, b in zip(optimizer.params, params)):
        raise ValueError("the optimiser must update exactly model.parameters(), in that order, for "
                         "a checkpoint to restore it")


def optimizer_to_dict(optimizer: Optimizer) -> dict[str, Any]:
    """The kind, settings and state of an SGD or Adam optimiser as a JSON-ready dict."""
    kind = _optimizer_kind(optimizer)
    _, settings, vectors, counters = _OPTIMIZERS[kind]
    state: dict[str, Any] = {name: list(getattr(optimizer, name)) for name in vectors}
    state.update({name: getattr(optimizer, name) for name in counters})
    return {"kind": kind, "settings": {name: getattr(optimizer, name) for name in settings},
            "state": state}


def save_checkpoint(path: PathLike, model: MLP, optimizer: Optimizer,
                    progress: Optional[Mapping[str, Any]] = None) -> None:
    """Write a checkpoint atomically (as `save_model` writes a model): the model exactly
    (BatchNorm's running statistics included), the optimiser's kind, settings and state exactly, and
    `progress`, a JSON-ready dict of the training loop's own state (`fit` keeps the epochs
    done, the History and the shuffling seed there; tuples come back as lists).

    Raises TypeError/ValueError before touching the disk if something cannot be saved exactly
    (a non-MLP, an optimiser other than SGD or Adam, one that does not update exactly
    `model.parameters()`, a NaN, or something JSON cannot hold in `progress`).
    """
    _check_matching(model, optimizer)
    data = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_to_dict(model),
        "optimizer": optimizer_to_dict(optimizer),
        "progress": dict(progress or {}),
    }
    try:
        text = json.dumps(data, allow_nan=False)
    except ValueError as error:
        raise ValueError(f"the checkpoint holds a NaN or infinite number ({error})") from None
    write_atomically(path, text)


def _numbers(values: object, count: int, where: str, source: object) -> list[float]:
    """A list of `count` numbers from a file, each checked by `_number`."""
    if not isinstance(values, list) or len(values) != count:
        raise ModelFileError(source, f"{where} must be a list of {count} numbers")
    return [_number(v, f"{where}[{i}]", source) for i, v in enumerate(values)]


def _settings_mismatch(saved: object, optimizer: Optimizer, names: Sequence[str],
                       source: object) -> None:
    """ModelFileError naming the first setting (lr, momentum, ...) that differs from the file."""
    if not isinstance(saved, dict):
        raise ModelFileError(source, "optimizer.settings must be an object")
    _check_keys(saved, names, source, " in optimizer.settings")
    for name in names:
        if _number(saved[name], f"optimizer.settings.{name}", source) != getattr(optimizer, name):
            raise ModelFileError(source, f"the checkpoint's optimiser has {name} = {saved[name]!r}, "
                                         f"this one {getattr(optimizer, name)!r}")


def _optimizer_state(data: object, optimizer: Optimizer, source: object) -> dict[str, Any]:
    """The optimiser state a checkpoint holds for `optimizer`, checked against its kind and
    settings; nothing is changed."""
    if not isinstance(data, dict):
        raise ModelFileError(source, "'optimizer' must be an object")
    _check_keys(data, _OPTIMIZER_KEYS, source, " in 'optimizer'")
    kind = _optimizer_kind(optimizer)
    if data["kind"] != kind:
        raise ModelFileError(source, f"the checkpoint holds the state of a {data['kind']!r:.20} "
                                     f"optimiser, this one is {kind!r}")
    _, settings, vectors, counters = _OPTIMIZERS[kind]
    _settings_mismatch(data["settings"], optimizer, settings, source)
    saved = data["state"]
    if not isinstance(saved, dict):
        raise ModelFileError(source, "optimizer.state must be an object")
    _check_keys(saved, vectors + counters, source, " in optimizer.state")
    state: dict[str, Any] = {name: _numbers(saved[name], len(optimizer.params), f"optimizer.state.{name}",
                                            source) for name in vectors}
    for name in counters:
        if not is_whole_number(saved[name], 0):
            raise ModelFileError(source, f"optimizer.state.{name} is {saved[name]!r:.40}, expected a "
                                         "whole number >= 0")
        state[name] = int(saved[name])
    return state


def _check_no_buffers(data: dict[str, Any], source: object) -> None:
    """ModelFileError unless the old 'buffers' key is absent or [] (as every earlier checkpoint
    of a library model has it): state saved there would not be restored."""
    if "buffers" in data and data["buffers"] != []:
        raise ModelFileError(source, f"'buffers' is {data['buffers']!r:.40}: this version restores no "
                                     "model.buffers() (BatchNorm's running statistics are in 'model'); "
                                     "expected no 'buffers', or []")


def load_checkpoint(path: PathLike, model: MLP, optimizer: Optimizer,
                    check: Optional[Callable[[dict[str, Any]], None]] = None) -> dict[str, Any]:
    """Restore `model` (parameters, BatchNorm statistics) and `optimizer` (state) from a checkpoint
    written by `save_checkpoint`, exactly; return the checkpoint's `progress` dict.

    `model` and `optimizer` must be built like the saved ones: same sizes and activations,
    same optimiser kind and settings. Every check is made before anything changes, including
    `check(progress)` if given (it may raise ModelFileError to refuse the file). On any
    problem — a truncated, corrupt or foreign file, a different architecture or optimiser —
    ModelFileError names it and nothing is changed. Gradients are left alone.
    """
    _check_matching(model, optimizer)
    data = _check_header(_read(path), path, CHECKPOINT_FORMAT)
    _check_keys(data, _CHECKPOINT_KEYS, path, optional=_OLD_KEYS)
    _check_no_buffers(data, path)
    params, norms = _parameters_for(model, data["model"], path)
    state = _optimizer_state(data["optimizer"], optimizer, path)
    progress = data["progress"]
    if not isinstance(progress, dict):
        raise ModelFileError(path, "'progress' must be an object")
    if check is not None:
        check(progress)
    _set_values(model, params, norms)
    for name, value in state.items():
        setattr(optimizer, name, value)
    return progress
