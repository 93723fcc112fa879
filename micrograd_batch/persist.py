"""Models and checkpoints as exact, human-readable JSON files, written atomically.

A model file: {"format": "micrograd_batch.MLP", "format_version": 2, "config": {"sizes",
"activation", "output_activation", "norm"}, "parameters": [model.parameters(), in order],
"buffers": [BatchNorm running means and variances]}. A checkpoint: {"format":
"micrograd_batch.checkpoint", "format_version": 2, "model": {a model file}, "optimizer":
optimizer.state_dict(), "extra": {the training loop's progress}}. Floats are written as the
shortest decimal that reads back as the same float: everything loads bit for bit. A damaged or
mismatched file raises ModelFileError and changes nothing. See docs/checkpoints.md.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Union

from .engine import Value
from .nn import ACTIVATIONS, MLP

if TYPE_CHECKING:
    from .optim import Optimizer

MODEL_FORMAT, CHECKPOINT_FORMAT, FORMAT_VERSION = "micrograd_batch.MLP", "micrograd_batch.checkpoint", 2
MAX_FILE_BYTES = 256 * 2**20  # far above any model this engine trains: a larger file is refused unread
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Updates = Sequence[tuple[object, dict[str, Any]]]  # (object, {attribute: new value}) pairs
_MODEL_KEYS = ("format", "format_version", "config", "parameters", "buffers")
_CHECKPOINT_KEYS = ("format", "format_version", "model", "optimizer", "extra")
_CONFIG_KEYS = ("sizes", "activation", "output_activation", "norm")
_NORM_KEYS = {"batch": {"kind", "eps", "momentum"}, "layer": {"kind", "eps"}}


class ModelFileError(ValueError):
    """A model or checkpoint file (or dict) that cannot be loaded: `path` names it, `problem`
    says why."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"cannot load {path}: {problem}")
        self.path, self.problem = path, problem


def exact_floats(values: object, count: int, what: str) -> list[float]:
    """`values` (read from a file) as `count` finite floats, or a ValueError naming `what`: a bool,
    a string, NaN, ±inf or an int beyond ±2**53 (which a float may not hold exactly) is refused."""
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
    """`path` as a str; a TypeError for anything but str, bytes or os.PathLike (an int would be
    taken as a file descriptor), before anything is opened."""
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(f"a path must be a str, bytes or os.PathLike, got {type(path).__name__} {path!r:.40}")
    return os.fsdecode(path)


def _destination(path: object) -> str:
    """`path` once a file can be written there: IsADirectoryError for a folder, FileNotFoundError
    naming a missing folder (not the temporary file). Nothing is created."""
    name = _name(path)
    if os.path.isdir(name):
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file path", name)
    if not os.path.isdir(os.path.dirname(os.path.abspath(name))):
        raise FileNotFoundError(errno.ENOENT, "no such folder to write the file in", os.path.dirname(name))
    return name


def write_atomically(path: PathLike, text: str) -> None:
    """Replace the file `path` by `text` (UTF-8): all of the new text or all of the old file.

    The text goes to a new temporary file beside it, is fsync'ed, and is renamed over it
    (`os.replace`); on any failure (an error, a full disk when the file is closed, Ctrl-C) the
    temporary file is closed and removed. A symbolic link is followed; the file gets the
    permissions a new file gets (0666 less the umask).
    """
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
    """The JSON value in the file `path`: ModelFileError unless it is a regular file of at most
    MAX_FILE_BYTES (a FIFO or a device is refused unopened) holding UTF-8 JSON."""
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
    version = data.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        hint = " (written by an earlier version: docs/checkpoints.md says what to do)" if version == 1 else ""
        raise ValueError(f"format_version {version!r:.20} is not supported{hint}; this version reads {FORMAT_VERSION}")
    if set(data) != set(keys):
        raise ValueError(f"expected exactly the keys {list(keys)}, got {sorted(map(str, data))}")
    return data


def _dumps(data: dict[str, Any]) -> str:
    """`data` as JSON text; a ValueError, before the disk is touched, for a NaN or infinite number."""
    try:
        return json.dumps(data, allow_nan=False, indent=1) + "\n"
    except ValueError:
        raise ValueError("a NaN or infinite number cannot be saved exactly (did training diverge?)") from None


def _config(model: MLP) -> dict[str, Any]:
    """The architecture of `model`, as a model file's "config" holds it."""
    norm = None
    if model.norms:  # each setting as a list, one entry per norm
        keys = sorted(_NORM_KEYS[model.norm] - {"kind"})  # type: ignore[index]
        norm = {"kind": model.norm, **{k: [getattr(n, k) for n in model.norms] for k in keys}}
    return {"sizes": model.sizes, "activation": model.activation,
            "output_activation": model.output_activation, "norm": norm}


def model_to_dict(model: MLP) -> dict[str, Any]:
    """What a model file holds for `model` (see the module doc); TypeError for a non-MLP."""
    if not isinstance(model, MLP):
        raise TypeError(f"can only save an MLP, got {type(model).__name__}")
    buffers = [x for n in model.norms for x in getattr(n, "running_mean", []) + getattr(n, "running_var", [])]
    return {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "config": _config(model),
            "parameters": [p.data for p in model.parameters()], "buffers": buffers}


def _shape(config: dict[str, Any]) -> list[Any]:
    """What a model must share with a file to be loaded into: sizes, activations, norm kind."""
    return [config["sizes"], config["activation"], config["output_activation"], (config["norm"] or {}).get("kind")]


def _checked_config(config: object) -> tuple[list[int], str | None, list[dict[str, float]]]:
    """A file's config, checked: the sizes, the norm kind and each norm's settings."""
    if not isinstance(config, dict) or set(config) != set(_CONFIG_KEYS):
        raise ValueError(f"config must have exactly the keys {list(_CONFIG_KEYS)}")
    sizes, norm = config["sizes"], config["norm"]
    if not (isinstance(sizes, list) and len(sizes) > 1 and all(type(n) is int and n > 0 for n in sizes)):
        raise ValueError(f"config.sizes is {sizes!r:.60}, expected a list of two or more whole numbers >= 1")
    if not all(isinstance(a, str) and a in ACTIVATIONS for a in (config["activation"], config["output_activation"])):
        raise ValueError(f"config's activations must be one of {sorted(ACTIVATIONS)}")
    if norm is None:
        return sizes, None, []
    kind = norm.get("kind") if isinstance(norm, dict) else None
    if not (isinstance(kind, str) and kind in _NORM_KEYS and set(norm) == _NORM_KEYS[kind]):
        raise ValueError(f"config.norm is {norm!r:.60}, expected null, {{kind: 'layer', eps}} or "
                         "{kind: 'batch', eps, momentum}")
    keys = sorted(norm.keys() - {"kind"})
    columns = [exact_floats(norm[k], len(sizes) - 2, f"config.norm.{k}") for k in keys]
    settings = [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
    if not all(s["eps"] > 0.0 and 0.0 <= s.get("momentum", 0.0) <= 1.0 for s in settings):
        raise ValueError(f"config.norm needs eps > 0 and momentum in [0, 1], got {norm!r:.60}")
    return sizes, kind, settings


def _checked_model(data: object, model: MLP | None = None) -> tuple[MLP, list[float], Updates]:
    """Check a model dict; return (the model, its parameter values, the norms' settings and
    statistics to assign): a new model, or `model` if its config is the file's. Changes nothing."""
    data = _header(data, MODEL_FORMAT, _MODEL_KEYS)
    sizes, kind, settings = _checked_config(data["config"])
    hidden = sizes[1:-1] if kind else []
    count = sum((a + 1) * b for a, b in zip(sizes, sizes[1:], strict=False)) + 2 * sum(hidden)  # before building
    values = exact_floats(data["parameters"], count, "parameters")
    buffers = exact_floats(data["buffers"], 2 * sum(hidden) if kind == "batch" else 0, "buffers")
    if model is None:
        model = MLP(sizes[0], sizes[1:], data["config"]["activation"], data["config"]["output_activation"],
                    seed=0, norm=kind)
    elif _shape(data["config"]) != _shape(_config(model)):  # each norm's settings come from the file
        raise ValueError(f"the file's model (sizes, activations, norm) is {_shape(data['config'])}, this one "
                         f"{_shape(_config(model))}; the model was not changed")
    updates = []
    for n, width, setting in zip(model.norms, hidden, settings, strict=True):
        running, buffers = (buffers[:2 * width], buffers[2 * width:]) if kind == "batch" else ([], [])
        if running and min(running[width:]) < 0.0:
            raise ValueError("a BatchNorm running variance is negative")
        updates.append((n, {**setting, **({"running_mean": running[:width], "running_var": running[width:]}
                                           if running else {})}))
    return model, values, updates


def _restore(data: object, source: object, model: MLP | None = None, optimizer: Optimizer | None = None,
             check: Callable[[dict[str, Any]], None] | None = None) -> tuple[MLP, dict[str, Any]]:
    """Check a model dict (or, with an `optimizer`, a checkpoint dict) read from `source`
    completely, then restore it into `model` (a new one if None) and `optimizer`: all of it and
    (model, extra), or ModelFileError and nothing changed."""
    try:
        data = _header(data, *((CHECKPOINT_FORMAT, _CHECKPOINT_KEYS) if optimizer else (MODEL_FORMAT, _MODEL_KEYS)))
        extra = data["extra"] if optimizer else {}
        model, values, updates = _checked_model(data["model"] if optimizer else data, model)
        if optimizer is not None:
            updates = [*updates, (optimizer, optimizer._checked_state(data["optimizer"]))]
        if not isinstance(extra, dict):
            raise ValueError("'extra' must be an object")
        if check is not None:
            check(extra)
    except ModelFileError:
        raise
    except (TypeError, ValueError, OverflowError) as error:
        raise ModelFileError(source, str(error)) from None
    assign(model.parameters(), values, updates)
    return model, extra


def model_from_dict(data: object, source: object = "<dict>") -> MLP:
    """The MLP a dict from `model_to_dict` describes; ModelFileError naming `source` if damaged."""
    return _restore(data, source)[0]


def save_model(model: MLP, path: PathLike) -> None:
    """Write `model` to `path` as JSON, atomically (`write_atomically`), every number exact:
    TypeError for a non-MLP or a non-path, ValueError for a NaN or infinite number."""
    write_atomically(path, _dumps(model_to_dict(model)))


def load_model(path: PathLike) -> MLP:
    """The MLP saved in `path`, bit for bit; ModelFileError naming the file and the problem if it
    is damaged or not a model file (an OSError if it cannot be opened)."""
    return model_from_dict(_read(path), path)


def load_parameters_into(model: MLP, path: PathLike) -> None:
    """Copy the parameters (and BatchNorm statistics) saved in `path` into `model`, which must have
    the file's config; ModelFileError, with `model` unchanged, otherwise."""
    if not isinstance(model, MLP):
        raise TypeError(f"can only load parameters into an MLP, got {type(model).__name__}")
    _restore(_read(path), path, model)


def check_checkpointable(model: object, optimizer: object, path: object = None) -> None:
    """TypeError/ValueError unless `optimizer` (an SGD or Adam) updates exactly `model.parameters()`
    of an MLP, in order; an OSError unless a file can be written at `path` (if given)."""
    from .optim import SGD, Adam  # here: optim imports this module

    if path is not None:
        _destination(path)
    if not isinstance(model, MLP) or type(optimizer) not in (SGD, Adam):
        raise TypeError(f"a checkpoint holds an MLP and an SGD or Adam (a subclass may keep more state), "
                        f"got {type(model).__name__} and {type(optimizer).__name__}")
    if [id(p) for p in optimizer.params] != [id(p) for p in model.parameters()]:  # type: ignore[attr-defined]
        raise ValueError("the optimiser must update exactly model.parameters(), in that order, for a "
                         "checkpoint to restore it")


def save_checkpoint(path: PathLike, model: MLP, optimizer: Optimizer, extra: dict[str, Any] | None = None) -> None:
    """Write the model, `optimizer.state_dict()` and `extra` (the loop's JSON-ready progress)
    atomically and exactly; TypeError/ValueError before the disk is touched if they cannot be."""
    check_checkpointable(model, optimizer, path)
    write_atomically(path, _dumps({"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION,
                                   "model": model_to_dict(model), "optimizer": optimizer.state_dict(),
                                   "extra": dict(extra or {})}))


def load_checkpoint(path: PathLike, model: MLP, optimizer: Optimizer,
                    check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Restore `model` and `optimizer` from a checkpoint, exactly, and return its `extra`.

    Every check comes first, `check(extra)` too (it may raise ModelFileError to refuse the run);
    then all of it is restored, or (a damaged or mismatched file: ModelFileError) nothing."""
    check_checkpointable(model, optimizer)
    return _restore(_read(path), path, model, optimizer, check)[1]
