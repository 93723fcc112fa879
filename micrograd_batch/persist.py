"""Models and checkpoints as exact JSON files, written atomically: a model's "config", "parameters" in
order and "norms" (settings, statistics); a checkpoint adds optimizer.state_dict() and the loop's
"extra". A damaged or mismatched file raises ModelFileError, changing nothing. See docs/checkpoints.md."""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import math
import os
import secrets
import stat
from collections.abc import Sequence
from typing import Any, Protocol, Union

from .engine import Value
from .nn import ACTIVATIONS, MLP

MODEL_FORMAT, CHECKPOINT_FORMAT, FORMAT_VERSION = "micrograd_batch.MLP", "micrograd_batch.checkpoint", 2
MAX_FILE_BYTES = 256 * 2**20  # far above any model this engine trains: a larger file is refused unread
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Updates = Sequence[tuple[object, dict[str, Any]]]  # (object, {attribute: new value}) pairs
_MODEL_KEYS = ("format", "format_version", "config", "parameters", "norms")
_CHECKPOINT_KEYS = ("format", "format_version", "model", "optimizer", "extra")
_CONFIG_KEYS = ("sizes", "activation", "output_activation", "norm")
_NORM_FIELDS = {"batch": ("eps", "momentum", "running_mean", "running_var"), "layer": ("eps",)}


class Stateful(Protocol):
    """What a checkpoint needs of an optimiser (`optim.Optimizer` has it; optim imports this module)."""

    params: list[Value]
    def state_dict(self) -> dict[str, Any]: ...
    def _checked_state(self, saved: object) -> dict[str, Any]: ...


class ModelFileError(ValueError):
    """A model or checkpoint file (or dict) that cannot be loaded: `path` names it, `problem` why."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"cannot load {path}: {problem}")
        self.path, self.problem = path, problem


def exact_floats(values: object, count: int, what: str) -> list[float]:
    """`values` as `count` finite floats; a ValueError naming `what` for junk or an int beyond ±2**53."""
    if not isinstance(values, list) or len(values) != count:
        raise ValueError(f"{what} must be a list of {count} numbers")
    for i, x in enumerate(values):
        if not (type(x) is float and math.isfinite(x) or type(x) is int and abs(x) <= 2**53):
            raise ValueError(f"{what}[{i}] is {x!r:.40}, expected a finite float (or an integer up to 2**53)")
    return [float(x) for x in values]


def _write(params: Sequence[Value], values: Sequence[float], updates: Updates) -> None:
    for obj, attributes in updates:
        for name, value in attributes.items():
            setattr(obj, name, value)
    for p, x in zip(params, values, strict=True):
        p.data = x


def assign(params: Sequence[Value], values: Sequence[float], updates: Updates = ()) -> None:
    """Set each parameter's `.data` to its value and the attributes `updates` name: all of it,
    or, if anything (Ctrl-C) interrupts the writes, none, as the old values are put back."""
    old = [p.data for p in params], [(obj, {k: getattr(obj, k) for k in a}) for obj, a in updates]
    try:
        _write(params, values, updates)
    except BaseException:
        _write(params, *old)
        raise


def _name(path: object) -> str:
    """`path` as a str; a TypeError, before anything is opened, for an int (a file descriptor) or junk."""
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(f"a path must be a str, bytes or os.PathLike, got {type(path).__name__} {path!r:.40}")
    return os.fsdecode(path)


def _destination(path: object) -> str:
    """`path`, checked: IsADirectoryError for a folder, FileNotFoundError naming a missing folder."""
    name = _name(path)
    if os.path.isdir(name):
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file path", name)
    if not os.path.isdir(os.path.dirname(os.path.abspath(name))):
        raise FileNotFoundError(errno.ENOENT, "no such folder to write the file in", os.path.dirname(name))
    return name


def write_atomically(path: PathLike, text: str) -> None:
    """Replace the file `path` by `text` (UTF-8), all or nothing: a temporary file beside it, fsync,
    `os.replace`; removed on any failure (a full disk at close, Ctrl-C). Symbolic links are followed."""
    name = os.path.realpath(_destination(path))  # a symbolic link stays a link to the new file
    temp = os.path.join(os.path.dirname(os.path.abspath(name)), f".{secrets.token_hex(8)}.tmp")
    try:
        with open(temp, "x", encoding="utf-8") as file:  # "x": a fresh file, never somebody else's
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise


def _read(path: object) -> Any:
    """The JSON in `path`: ModelFileError unless a regular file (FIFOs unopened) of <= MAX_FILE_BYTES."""
    info = os.stat(_name(path))
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        raise ModelFileError(path, f"not a regular file of at most {MAX_FILE_BYTES} bytes")
    with open(_name(path), "rb") as file:
        raw = file.read(info.st_size + 1)  # never more than its size: memory stays ~ the file's
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError; nesting
        raise ModelFileError(path, f"not UTF-8 JSON, or truncated ({type(error).__name__}: {error})") from None


def _header(data: object, fmt: str, keys: Sequence[str]) -> dict[str, Any]:
    """`data` as a dict of format `fmt`, this format version, and exactly `keys` (a ValueError)."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"not a {fmt!r} file ('format' is {found!r:.60})")
    if (version := data.get("format_version")) != FORMAT_VERSION or type(version) is not int:
        hint = " (written by an earlier version: docs/checkpoints.md says what to do)" if version == 1 else ""
        raise ValueError(f"format_version {version!r:.20} is not supported{hint}; this version reads {FORMAT_VERSION}")
    if set(data) != set(keys):
        raise ValueError(f"expected exactly the keys {list(keys)}, got {sorted(map(str, data))}")
    return data


def _save(path: PathLike, data: dict[str, Any]) -> None:
    """Write `data` as JSON, atomically; a ValueError, before the disk is touched, for NaN or ±inf."""
    try:
        text = json.dumps(data, allow_nan=False, indent=1) + "\n"
    except ValueError:
        raise ValueError("a NaN or infinite number cannot be saved exactly (did training diverge?)") from None
    write_atomically(path, text)


def model_to_dict(model: MLP) -> dict[str, Any]:
    """What a model file holds for `model` (see the module doc); TypeError for a non-MLP."""
    if not isinstance(model, MLP):
        raise TypeError(f"can only save an MLP, got {type(model).__name__}")
    norms = [{k: copy.copy(getattr(n, k)) for k in _NORM_FIELDS[model.norm]} for n in model.norms]  # type: ignore[index]
    config = {"sizes": model.sizes, "activation": model.activation, "output_activation": model.output_activation}
    return {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "config": {**config, "norm": model.norm},
            "parameters": [p.data for p in model.parameters()], "norms": norms}


def _norm_fields(entry: object, keys: Sequence[str], width: int, where: str) -> dict[str, Any]:
    """One "norms" entry, checked: exactly `keys`, exact numbers, statistics `width` long."""
    if not isinstance(entry, dict) or set(entry) != set(keys):
        raise ValueError(f"{where} must have exactly the keys {list(keys)}")
    fields: dict[str, Any] = {k: exact_floats(entry[k], width, f"{where}.{k}") if k.startswith("running")
              else exact_floats([entry[k]], 1, f"{where}.{k}")[0] for k in keys}
    if not (fields["eps"] > 0 and 0 <= fields.get("momentum", 0) <= 1 and min(fields.get("running_var", [0])) >= 0):
        raise ValueError(f"{where} needs eps > 0, momentum in [0, 1] and running_var >= 0")
    return fields


def _checked_config(config: object) -> dict[str, Any]:
    """A file's "config", checked: exactly its keys, sizes whole numbers >= 1, known names."""
    if not isinstance(config, dict) or set(config) != set(_CONFIG_KEYS):
        raise ValueError(f"config must have exactly the keys {list(_CONFIG_KEYS)}")
    if not (isinstance(s := config["sizes"], list) and len(s) > 1 and all(type(n) is int and n > 0 for n in s)):
        raise ValueError(f"config.sizes is {s!r:.60}, expected a list of two or more whole numbers >= 1")
    if not all(isinstance(a, str) and a in ACTIVATIONS for a in (config["activation"], config["output_activation"])):
        raise ValueError(f"config's activations must be one of {sorted(ACTIVATIONS)}")
    if config["norm"] not in (None, *_NORM_FIELDS):
        raise ValueError(f"config.norm is {config['norm']!r:.40}, expected null, 'batch' or 'layer'")
    return config


def _checked_model(data: object, model: MLP | None = None) -> tuple[MLP, list[float], Updates]:
    """Check a model dict: (a new model or `model` of the same config, parameter values, norm updates)."""
    file = _header(data, MODEL_FORMAT, _MODEL_KEYS)
    config = _checked_config(file["config"])
    sizes = config["sizes"]
    hidden = sizes[1:-1] if config["norm"] else []
    count = sum((a + 1) * b for a, b in zip(sizes, sizes[1:], strict=False)) + 2 * sum(hidden)  # before building
    values = exact_floats(file["parameters"], count, "parameters")
    if not isinstance(file["norms"], list) or len(file["norms"]) != len(hidden):
        raise ValueError(f"norms must be a list of {len(hidden)} entries, one per hidden layer")
    norms = [_norm_fields(entry, _NORM_FIELDS[config["norm"]], width, f"norms[{i}]")
             for i, (entry, width) in enumerate(zip(file["norms"], hidden, strict=True))]
    if model is None:
        model = MLP(sizes[0], sizes[1:], config["activation"], config["output_activation"], seed=0, norm=config["norm"])
    elif config != model_to_dict(model)["config"]:  # each norm's settings and statistics come from the file
        raise ValueError(f"the file's model is {config}, this one {model_to_dict(model)['config']}; it was not changed")
    return model, values, list(zip(model.norms, norms, strict=True))


def _restore(data: object, source: object, model: MLP | None = None,
             optimizer: Stateful | None = None) -> tuple[MLP, dict[str, Any]]:
    """Check a model (with `optimizer`: a checkpoint) dict, then restore it all, or raise ModelFileError."""
    try:
        file = _header(data, CHECKPOINT_FORMAT, _CHECKPOINT_KEYS) if optimizer else {"model": data, "extra": {}}
        model, values, updates = _checked_model(file["model"], model)  # the model first: the clearer message
        if optimizer is not None:
            updates = [*updates, (optimizer, optimizer._checked_state(file["optimizer"]))]
        if not isinstance(extra := file["extra"], dict):
            raise ValueError("'extra' must be an object")
    except (TypeError, ValueError, OverflowError) as error:
        raise ModelFileError(source, str(error)) from None
    assign(model.parameters(), values, updates)
    return model, extra


def model_from_dict(data: object, source: object = "<dict>") -> MLP:
    """The MLP a dict from `model_to_dict` describes; ModelFileError naming `source` if damaged."""
    return _restore(data, source)[0]


def save_model(model: MLP, path: PathLike) -> None:
    """Write `model` to `path` as JSON, atomically, every number exact (TypeError for a non-MLP)."""
    _save(path, model_to_dict(model))


def load_model(path: PathLike) -> MLP:
    """The MLP saved in `path`, bit for bit; ModelFileError if the file is damaged or foreign."""
    return model_from_dict(_read(path), path)


def load_parameters_into(model: MLP, path: PathLike) -> None:
    """Copy what `path` holds into `model` of the same config; else ModelFileError, `model` unchanged."""
    if not isinstance(model, MLP):
        raise TypeError(f"can only load parameters into an MLP, got {type(model).__name__}")
    _restore(_read(path), path, model)


def check_checkpointable(model: object, optimizer: object, path: object) -> None:
    """TypeError/ValueError unless `optimizer` (SGD, Adam) updates exactly `model.parameters()` of
    an MLP, in order; an OSError unless a file can be written at `path`."""
    _destination(path)
    if not isinstance(model, MLP) or "STATE" not in vars(type(optimizer)):  # a subclass may keep more state
        raise TypeError(f"a checkpoint holds an MLP and an optimiser whose class declares its STATE (as SGD or "
                        f"Adam do), got {type(model).__name__} and {type(optimizer).__name__}")
    if [id(p) for p in optimizer.params] != [id(p) for p in model.parameters()]:  # type: ignore[attr-defined]
        raise ValueError("the optimiser must update exactly model.parameters(), in order, to be checkpointed")


def save_checkpoint(path: PathLike, model: MLP, optimizer: Stateful, extra: dict[str, Any] | None = None) -> None:
    """Write the model, `optimizer.state_dict()` and `extra` (JSON-ready) atomically and exactly."""
    check_checkpointable(model, optimizer, path)
    _save(path, {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, "model": model_to_dict(model),
                 "optimizer": optimizer.state_dict(), "extra": dict(extra or {})})


def load_checkpoint(path: PathLike, model: MLP, optimizer: Stateful) -> dict[str, Any]:
    """Restore `model` and `optimizer` exactly, all or nothing, after every check; returns `extra`."""
    check_checkpointable(model, optimizer, path)
    return _restore(_read(path), path, model, optimizer)[1]
