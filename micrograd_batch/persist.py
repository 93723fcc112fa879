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
fsync'ed, and only then renamed over the old file (`os.replace`). A crash or an error half-way
leaves the previous file untouched and no temporary file behind.

A file that is not a model this version can read — truncated, corrupt, wrong format version,
missing or unknown keys, wrong types, the wrong number of parameters — raises `ModelFileError`
(a `ValueError`) naming the file and the problem. Problems opening the file itself (missing
file, no permission) are the usual `OSError`s. The optimiser's state is not saved.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from typing import Any, Union

from ._checks import is_whole_number
from .nn import ACTIVATIONS, MLP

FORMAT = "micrograd_batch.MLP"
FORMAT_VERSION = 1

PathLike = Union[str, "os.PathLike[str]"]

_KEYS = ("format", "format_version", "nin", "nouts", "activation", "output_activation", "fused",
         "layers")
_LAYER_KEYS = ("weights", "biases")


class ModelFileError(ValueError):
    """A model file (or dict) that cannot be loaded: `path` names it and `problem` says why."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"cannot load model from {path}: {problem}")
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
    """A parameter read from a file: a finite int or float (not a bool), as a float."""
    if type(x) not in (int, float):
        raise ModelFileError(source, f"{where} is {type(x).__name__} {x!r:.40}, expected a number")
    try:
        value = float(x)  # type: ignore[arg-type]  # an int or a float, checked above
    except OverflowError:
        raise ModelFileError(source, f"{where} is too large for a float") from None
    if not math.isfinite(value):
        raise ModelFileError(source, f"{where} is {value!r}, expected a finite number")
    return value


def _checked(data: object, source: object) -> tuple[dict[str, Any], list[float]]:
    """Validate a model dict completely; return it and its parameters in `parameters()` order.

    Nothing is built before every check has passed, so a bad file never allocates a model of
    the size it claims unless the parameters for that size are really there.
    """
    if not isinstance(data, dict):
        raise ModelFileError(source, f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ModelFileError(source, f"'format' is {data.get('format')!r:.60}, expected {FORMAT!r}")
    version = data.get("format_version")
    if type(version) is not int:
        raise ModelFileError(source, f"'format_version' is {version!r:.40}, expected an integer")
    if version != FORMAT_VERSION:
        newer = " (written by a newer version of micrograd_batch)" if version > FORMAT_VERSION else ""
        raise ModelFileError(source, f"format_version {version} is not supported{newer}; "
                                     f"this version reads format_version {FORMAT_VERSION}")
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise ModelFileError(source, f"missing key(s) {missing}")
    unknown = sorted(str(k) for k in data if k not in _KEYS + _NORM_KEYS)
    if unknown:
        raise ModelFileError(source, f"unknown key(s) {unknown}")
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
    layers = data["layers"]
    if not isinstance(layers, list) or len(layers) != len(nouts):
        count = len(layers) if isinstance(layers, list) else type(layers).__name__
        raise ModelFileError(source, f"'layers' has {count} entries, expected {len(nouts)} "
                                     f"(one per entry of nouts)")
    params: list[float] = []
    sizes = [nin, *nouts]
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        if not isinstance(layer, dict) or set(layer) != set(_LAYER_KEYS):
            raise ModelFileError(source, f"{where} must be an object with exactly the keys "
                                         f"{list(_LAYER_KEYS)}")
        weights, biases, fan_in, width = layer["weights"], layer["biases"], sizes[i], sizes[i + 1]
        if not isinstance(weights, list) or len(weights) != width:
            raise ModelFileError(source, f"{where}.weights must be a list of {width} rows "
                                         f"(one per neuron)")
        if not isinstance(biases, list) or len(biases) != width:
            raise ModelFileError(source, f"{where}.biases must be a list of {width} numbers")
        for j, row in enumerate(weights):
            if not isinstance(row, list) or len(row) != fan_in:
                raise ModelFileError(source, f"{where}.weights[{j}] must be a list of {fan_in} "
                                             "numbers (one per input)")
            params.extend(_number(w, f"{where}.weights[{j}][{k}]", source) for k, w in enumerate(row))
            params.append(_number(biases[j], f"{where}.biases[{j}]", source))
    return data, params


def model_from_dict(data: object, source: object = "<dict>") -> MLP:
    """Build the `MLP` a dict from `model_to_dict` describes; ModelFileError if it is invalid."""
    spec, params = _checked(data, source)
    # seed=0: the throw-away initial weights come from a private generator, so loading a model
    # never disturbs the global `random` state.
    norms = _checked_norms(spec, source)
    model = MLP(spec["nin"], spec["nouts"], activation=spec["activation"],
                output_activation=spec["output_activation"], seed=0, fused=spec["fused"],
                norm=spec.get("norm"))
    for p, value in zip(_layer_parameters(model), params):
        p.data = value
    _set_norms(model, norms)
    return model


# ---- files -----------------------------------------------------------------------------------


def _fsync_directory(directory: str) -> None:
    """Make a rename in `directory` durable (POSIX); silently skipped where unsupported."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_model(model: MLP, path: PathLike) -> None:
    """Write `model` to `path` as JSON, atomically: all of the new file or all of the old one.

    The model is checked first (TypeError for a non-MLP, ValueError for a NaN or infinite
    parameter), before the disk is touched. The text is written to a temporary file beside
    `path`, flushed and fsync'ed, then renamed over `path`; on any error the temporary file
    is removed and the previous `path`, if any, is left as it was.
    """
    data = model_to_dict(model)
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    directory = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(target)
    while True:  # a fresh name; O_EXCL never reuses somebody else's file
        temp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, allow_nan=False, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_directory(directory)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a model file may contain")


def _read(path: PathLike) -> dict[str, Any]:
    """The JSON object in `path`; ModelFileError if it is not valid UTF-8 JSON."""
    with open(path, "rb") as f:
        raw = f.read()
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
    and the usual OSError (e.g. FileNotFoundError) if it cannot be read.
    """
    return model_from_dict(_read(path), source=path)


def load_parameters_into(model: MLP, path: PathLike) -> None:
    """Copy the parameters saved in `path` into an existing `model` of the same architecture.

    The file must describe the same sizes and activations as `model` (`fused`, which does not
    change any number, may differ). On any problem — a bad file or a different architecture —
    ModelFileError is raised and `model` is not changed at all. Gradients are left as they are.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"can only load parameters into an MLP, got {type(model).__name__}")
    spec, params = _checked(_read(path), path)
    norms = _checked_norms(spec, path)
    theirs = ([spec["nin"], *spec["nouts"]], spec["activation"], spec["output_activation"], spec.get("norm"))
    ours = (list(model.sizes), model.activation, model.output_activation, model.norm)
    if theirs != ours:
        raise ModelFileError(
            path, f"the file holds a model with sizes {theirs[0]} and activations "
                  f"{theirs[1]!r}/{theirs[2]!r} and norm {theirs[3]!r}, but this model has sizes "
                  f"{ours[0]} and activations {ours[1]!r}/{ours[2]!r} and norm {ours[3]!r}; the model "
                  "was not changed")
    targets = _layer_parameters(model)
    if len(targets) != len(params):
        raise ModelFileError(path, f"the file has {len(params)} parameters, the model "
                                   f"{len(targets)}; the model was not changed")
    for p, value in zip(targets, params):
        p.data = value
    _set_norms(model, norms)


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
