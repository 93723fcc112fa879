"""Model files and checkpoints: exact round trips, atomic writes (a full disk and Ctrl-C at any line
included), every damaged or mismatched file a ModelFileError that changes nothing, and memory."""

from __future__ import annotations

import copy
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from faults import interrupt_everywhere, run_interrupted
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from state import bits

from micrograd_batch import MLP, SGD, Adam, Value, persist
from micrograd_batch.nn import ACTIVATIONS
from micrograd_batch.persist import (
    FORMAT_VERSION,
    ModelFileError,
    load_checkpoint,
    load_model,
    load_parameters_into,
    model_from_dict,
    model_to_dict,
    save_checkpoint,
    save_model,
)

ACTS = sorted(ACTIVATIONS)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "checkpoints.md"
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open descriptors in /proc")


def param_bits(model):
    return [bits(p.data) for p in model.parameters()]


def predictions(model, inputs):
    """Every output's bits, or the error the forward pass raised (extreme weights overflow)."""
    out = []
    for x in inputs:
        try:
            y = model(x)
        except (OverflowError, FloatingPointError, ValueError) as error:
            out.append(type(error).__name__)
            continue
        out.extend([bits(y.data)] if isinstance(y, Value) else [bits(v.data) for v in y])
    return out


def listing(directory):
    return sorted(os.listdir(directory))


def open_fds():
    return sorted(os.listdir("/proc/self/fd"))


@pytest.fixture
def model():
    return MLP(3, [4, 2], activation="tanh", output_activation="sigmoid", seed=7)


def batch_norm_model(seed=3):
    m = MLP(2, [3, 1], seed=seed, norm="batch")
    m.forward_batch([[0.1, 0.2], [0.5, -1.0], [2.0, 0.3]])  # running statistics no longer 0 and 1
    for n in m.norms:
        n.eps, n.momentum = 1e-3, 0.25
    return m


def two_norms():
    m = MLP(2, [3, 2, 1], norm="batch", seed=5)
    m.norms[1].eps, m.norms[0].momentum = 1e-3, 0.5  # each norm keeps its own settings
    return m


# ---- exact round trips ------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)  # ±0.0, subnormals, ±1.8e308 included


@st.composite
def models(draw):
    nouts = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    model = MLP(draw(st.integers(1, 4)), nouts, activation=draw(st.sampled_from(ACTS)),
                output_activation=draw(st.sampled_from(ACTS)), seed=draw(st.integers(0, 99)),
                norm=draw(st.sampled_from([None, "batch", "layer"])))
    params = model.parameters()
    for p, v in zip(params, draw(st.lists(finite, min_size=len(params), max_size=len(params))), strict=True):
        p.data = v
    for n in model.norms:  # each norm with its own settings
        n.eps = draw(st.floats(1e-12, 1.0))
        if hasattr(n, "running_var"):
            n.momentum = draw(st.floats(0.0, 1.0))
            n.running_mean = draw(st.lists(finite, min_size=n.num_features, max_size=n.num_features))
            n.running_var = draw(st.lists(st.floats(0, 1e300), min_size=n.num_features, max_size=n.num_features))
    return model


def norm_state(model):
    return [(n.eps, getattr(n, "momentum", None), getattr(n, "running_mean", None), getattr(n, "running_var", None))
            for n in model.norms]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.lists(st.lists(st.floats(-3, 3), min_size=4, max_size=4), min_size=1, max_size=3))
def test_round_trip_is_bit_exact(model, inputs):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.json"
        save_model(model, path)
        loaded = load_model(path)
        assert listing(d) == ["model.json"]
    assert loaded.sizes == model.sizes and loaded.norm == model.norm and len(loaded.norms) == len(model.norms)
    assert (loaded.activation, loaded.output_activation) == (model.activation, model.output_activation)
    assert param_bits(loaded) == param_bits(model)
    assert norm_state(loaded) == norm_state(model)
    xs = [x[: model.nin] for x in inputs]
    with model.evaluating(), loaded.evaluating():  # batch norm: uses the running statistics
        assert predictions(loaded, xs) == predictions(model, xs)
    assert param_bits(model_from_dict(model_to_dict(model))) == param_bits(model)


def test_the_file_is_the_documented_flat_format(tmp_path):
    m = batch_norm_model()
    save_model(m, str(tmp_path / "m.json"))  # str paths work as well as Path objects
    data = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert list(data) == ["format", "format_version", "config", "parameters", "norms"]
    assert (data["format"], data["format_version"]) == ("micrograd_batch.MLP", FORMAT_VERSION) == (data["format"], 2)
    assert data["config"] == {"sizes": [2, 3, 1], "activation": "relu", "output_activation": "linear",
                              "norm": "batch"}
    assert data["parameters"] == [p.data for p in m.parameters()]
    assert data["norms"] == [{"eps": 1e-3, "momentum": 0.25, "running_mean": m.norms[0].running_mean,
                              "running_var": m.norms[0].running_var}]


def test_each_norm_keeps_its_own_settings(tmp_path):
    m = two_norms()
    save_model(m, tmp_path / "m.json")
    assert norm_state(load_model(tmp_path / "m.json")) == norm_state(m)
    assert [(n.eps, n.momentum) for n in load_model(tmp_path / "m.json").norms] == [(1e-5, 0.5), (1e-3, 0.1)]


def test_loading_does_not_touch_the_global_random_state(model, tmp_path):
    save_model(model, tmp_path / "m.json")
    random.seed(123)
    state = random.getstate()
    load_model(tmp_path / "m.json")
    assert random.getstate() == state


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_and_the_disk_untouched(model, tmp_path, bad):
    save_model(model, tmp_path / "m.json")
    before = (tmp_path / "m.json").read_bytes()
    model.parameters()[5].data = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_model(model, tmp_path / "m.json")
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_checkpoint(tmp_path / "m.json", model, SGD(model.parameters()), {"loss": 1.0})
    assert (tmp_path / "m.json").read_bytes() == before and listing(tmp_path) == ["m.json"]


@pytest.mark.parametrize("thing", [None, 3, "model", MLP(2, [1]).layers[0], [MLP(2, [1])]])
def test_only_an_mlp_can_be_saved(thing, tmp_path):
    with pytest.raises(TypeError, match="MLP"):
        save_model(thing, tmp_path / "m.json")
    assert listing(tmp_path) == []


# ---- atomic writes ------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_a_failure_before_the_rename_keeps_the_old_file(model, tmp_path, monkeypatch, where):
    path = tmp_path / "m.json"
    save_model(MLP(3, [4, 2], seed=99), path)
    before = path.read_bytes()
    monkeypatch.setattr(persist.os, where, lambda *a: (_ for _ in ()).throw(OSError(f"simulated {where}")))
    with pytest.raises(OSError, match="simulated"):
        save_model(model, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and listing(tmp_path) == ["m.json"]


def test_data_is_fsynced_before_the_rename(model, tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(persist.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(persist.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    save_model(model, tmp_path / "m.json")
    assert events == ["fsync", "replace"]


class FullDiskFile:
    """A real temporary file whose close fails like a full disk's: ENOSPC when the buffered text
    is flushed at close (the bug: the except branch closed again, so unlink never ran)."""

    def __init__(self, file):
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
        raise OSError(28, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_a_full_disk_at_close_leaves_no_temporary_file(model, tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    save_model(MLP(3, [4, 2], seed=99), path)
    before = path.read_bytes()
    monkeypatch.setattr(persist, "open", lambda *a, **k: FullDiskFile(open(*a, **k)), raising=False)
    for save in (lambda: save_model(model, path),
                 lambda: save_checkpoint(path, model, SGD(model.parameters()), {})):
        with pytest.raises(OSError, match="No space left"):
            save()
        assert listing(tmp_path) == ["m.json"] and path.read_bytes() == before


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_real_write_failure_at_close_leaves_no_temporary_file(tmp_path):
    """The kernel refuses the write when the text is flushed at close (RLIMIT_FSIZE: EFBIG, the
    same path as ENOSPC); the old file stays and no temporary file is left."""
    code = """if 1:
        import resource, signal, sys
        from micrograd_batch import MLP
        from micrograd_batch.persist import save_model
        path = sys.argv[1]
        save_model(MLP(1, [1], seed=0), path)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))  # less than the next file's 2 KB
        try:
            save_model(MLP(9, [9, 9], seed=1), path)
        except OSError as error:
            print(error.errno)
    """
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.json")], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "27"  # EFBIG
    assert listing(tmp_path) == ["m.json"]
    assert load_model(tmp_path / "m.json").sizes == [1, 1]


def save_as(kind):
    """save_model, or save_checkpoint with a fresh SGD, as a function (model, path)."""
    return save_model if kind == "model" else lambda m, path: save_checkpoint(path, m, SGD(m.parameters()), {})


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_a_missing_folder_is_named_not_the_temporary_file(model, tmp_path, kind):
    folder = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError) as info:
        save_as(kind)(model, folder / "m.json")
    assert info.value.filename == str(folder) and ".tmp" not in str(info.value)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_a_directory_is_refused_as_a_file_path_and_nothing_is_written(model, tmp_path, kind):
    with pytest.raises(IsADirectoryError, match="give a file path"):
        save_as(kind)(model, tmp_path)
    assert listing(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_symbolic_link_stays_a_link_to_the_new_file(model, tmp_path):
    save_model(MLP(3, [4, 2], seed=99), tmp_path / "target.json")
    (tmp_path / "link.json").symlink_to(tmp_path / "target.json")
    save_model(model, tmp_path / "link.json")
    assert (tmp_path / "link.json").is_symlink() and listing(tmp_path) == ["link.json", "target.json"]
    assert param_bits(load_model(tmp_path / "target.json")) == param_bits(model)


@pytest.mark.parametrize("length", [200, 250, 255])
def test_file_names_up_to_the_system_limit_work(model, tmp_path, length):
    path = tmp_path / ("m" * (length - 5) + ".json")
    save_model(model, path)
    assert param_bits(load_model(path)) == param_bits(model) and listing(tmp_path) == [path.name]


@needs_proc
@pytest.mark.parametrize("not_a_path", [3, 0, 1, True, None, 3.0, [b"m.json"]])
def test_a_number_is_never_taken_as_a_file_descriptor(model, not_a_path):
    fds = open_fds()
    for call in (lambda: save_model(model, not_a_path), lambda: load_model(not_a_path),
                 lambda: load_parameters_into(model, not_a_path)):
        with pytest.raises(TypeError, match="str, bytes or os.PathLike"):
            call()
    assert open_fds() == fds


def test_bytes_and_pathlike_paths_work(model, tmp_path):
    save_model(model, os.fsencode(tmp_path / "m.json"))
    assert param_bits(load_model(tmp_path / "m.json")) == param_bits(model)


# ---- Ctrl-C at every line ---------------------------------------------------------------------

def write_checkpoint(model, path):
    save_checkpoint(path, model, SGD(model.parameters(), lr=0.1, momentum=0.5), {"epochs_done": 1})


@needs_proc
@pytest.mark.parametrize("existing", [True, False])
@pytest.mark.parametrize("write", [save_model, write_checkpoint])
def test_ctrl_c_at_every_line_of_a_save_leaves_old_or_new_and_no_debris(model, tmp_path, existing, write):
    path = tmp_path / "m.json"
    old_model = MLP(3, [4, 2], seed=99)
    write(model, path)
    new = path.read_bytes()
    if existing:
        write(old_model, path)
    old = path.read_bytes() if existing else path.unlink()
    fds = open_fds()
    n, interrupted = 0, True
    while interrupted:
        n += 1
        interrupted = run_interrupted(lambda: write(model, path), n)
        now = path.read_bytes() if path.exists() else None
        assert now in (old, new), f"interrupt at line {n} tore the file"
        assert listing(tmp_path) == (["m.json"] if now is not None else []), f"debris at line {n}"
        assert open_fds() == fds, f"a descriptor leaked at line {n}"
        if interrupted and existing:
            write(old_model, path)
        elif interrupted and now is not None:
            path.unlink()
    assert n > 20 and path.read_bytes() == new


def trained_pair(kind, seed):
    m = batch_norm_model(seed)
    opt = SGD(m.parameters(), lr=0.1, momentum=0.9) if kind == "SGD" else Adam(m.parameters(), lr=0.01)
    for step in range(2):
        for i, p in enumerate(m.parameters()):
            p.grad = 0.1 * (i - 3) + step
        opt.step()
    return m, opt


def full_state(m, opt):
    return param_bits(m), norm_state(m), opt.state_dict()


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_ctrl_c_at_every_line_of_a_load_leaves_all_old_or_all_new(tmp_path, kind):
    saved = trained_pair(kind, seed=1)
    save_checkpoint(tmp_path / "c.json", *saved, {"epochs_done": 2})
    new, old = full_state(*saved), full_state(*trained_pair(kind, seed=2))

    def check(pair, interrupted):
        assert full_state(*pair) in ((old, new) if interrupted else (new,)), "a Ctrl-C left the load half done"

    runs = interrupt_everywhere(lambda: trained_pair(kind, seed=2),
                                lambda pair: load_checkpoint(tmp_path / "c.json", *pair), check, step=7)
    assert runs > 10


# ---- checkpoints ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_a_checkpoint_restores_model_and_optimiser_exactly_and_returns_extra(tmp_path, kind):
    m, opt = trained_pair(kind, seed=1)
    save_checkpoint(tmp_path / "c.json", m, opt, {"epochs_done": 2, "history": [0.5, 0.25]})
    saved = json.loads((tmp_path / "c.json").read_text())
    assert list(saved) == ["format", "format_version", "model", "optimizer", "extra"]
    assert saved["optimizer"] == opt.state_dict() and saved["model"] == model_to_dict(m)
    m2, opt2 = trained_pair(kind, seed=2)
    assert load_checkpoint(tmp_path / "c.json", m2, opt2) == {"epochs_done": 2, "history": [0.5, 0.25]}
    assert full_state(m2, opt2) == full_state(m, opt)
    for pair in ((m, opt), (m2, opt2)):  # and the next step is the same, bit for bit
        for i, p in enumerate(pair[0].parameters()):
            p.grad = 0.01 * i
        pair[1].step()
    assert full_state(m2, opt2) == full_state(m, opt)


def damage(text, edit):
    data = json.loads(text)
    edit(data)
    return json.dumps(data)


CHECKPOINT_DAMAGE = {
    "a huge integer in velocity": (lambda d: d["optimizer"]["velocity"].__setitem__(0, 10**400), "velocity\\[0\\]"),
    "an int a float rounds": (lambda d: d["optimizer"]["velocity"].__setitem__(1, 2**53 + 1), "velocity\\[1\\]"),
    "velocity too short": (lambda d: d["optimizer"]["velocity"].pop(), "velocity must be a list of 19"),
    "another lr": (lambda d: d["optimizer"].update(lr=0.05), "lr = 0.05, this one 0.1"),
    "another optimiser": (lambda d: d["optimizer"].update(kind="Adam"), "'Adam' optimiser, this one is 'SGD'"),
    "a model file": (lambda d: d.update(d.pop("model")), "'format' is 'micrograd_batch.MLP'"),
    "version 1": (lambda d: d.update(format_version=1), "earlier version"),
    "newer version": (lambda d: d.update(format_version=3), "format_version 3 is not supported"),
    "extra not an object": (lambda d: d.update(extra=[1]), "'extra' must be an object"),
    "missing extra": (lambda d: d.pop("extra"), "exactly the keys"),
    "another architecture": (lambda d: d["model"]["config"].update(activation="tanh"), "not changed"),
    "a negative running variance": (lambda d: d["model"]["norms"][0]["running_var"].__setitem__(-1, -1.0),
                                    "running_var >= 0"),
}


@pytest.mark.parametrize("name", sorted(CHECKPOINT_DAMAGE))
def test_a_damaged_checkpoint_is_refused_and_nothing_changes(tmp_path, name):
    save_checkpoint(tmp_path / "c.json", *trained_pair("SGD", 1), {"epochs_done": 2})
    edit, problem = CHECKPOINT_DAMAGE[name]
    (tmp_path / "c.json").write_text(damage((tmp_path / "c.json").read_text(), edit))
    pair = trained_pair("SGD", 2)
    before = full_state(*pair)
    with pytest.raises(ModelFileError, match=problem) as info:
        load_checkpoint(tmp_path / "c.json", *pair)
    assert str(tmp_path / "c.json") in str(info.value) and full_state(*pair) == before


@pytest.mark.parametrize("edit, problem", [
    (lambda o: o.update(t=10**400), "Adam t is 1000"),
    (lambda o: o.update(t=-1), "Adam t is -1"),
    (lambda o: o.update(t=2.0), "Adam t is 2.0"),
    (lambda o: o["v"].__setitem__(3, -1e-9), "Adam v holds a negative number"),
    (lambda o: o["m"].__setitem__(0, "0.5"), "Adam m\\[0\\]"),
])
def test_damaged_adam_state_is_a_model_file_error_not_a_later_math_error(tmp_path, edit, problem):
    save_checkpoint(tmp_path / "c.json", *trained_pair("Adam", 1), {})
    (tmp_path / "c.json").write_text(damage((tmp_path / "c.json").read_text(), lambda d: edit(d["optimizer"])))
    pair = trained_pair("Adam", 2)
    before = full_state(*pair)
    with pytest.raises(ModelFileError, match=problem):
        load_checkpoint(tmp_path / "c.json", *pair)
    assert full_state(*pair) == before


def test_a_checkpoint_needs_the_optimiser_of_exactly_the_models_parameters(tmp_path):
    m = MLP(2, [2, 1], seed=0)
    with pytest.raises(ValueError, match="exactly model.parameters"):
        save_checkpoint(tmp_path / "c.json", m, SGD(m.parameters()[::-1]), {})
    with pytest.raises(TypeError, match="SGD or Adam"):
        save_checkpoint(tmp_path / "c.json", m, type("MySGD", (SGD,), {})(m.parameters()), {})
    with pytest.raises(TypeError, match="JSON serializable"):
        save_checkpoint(tmp_path / "c.json", m, SGD(m.parameters()), {"seen": {1, 2}})
    assert listing(tmp_path) == []


# ---- bad model files ----------------------------------------------------------------------------

def good_dict():
    return model_to_dict(batch_norm_model())


def write(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.json")


def test_every_truncation_is_a_model_file_error(tmp_path):
    path, cut = tmp_path / "m.json", tmp_path / "cut.json"
    save_model(MLP(2, [2, 1], seed=3), path)
    text = path.read_bytes()
    for n in range(len(text.rstrip())):  # every proper prefix, the empty file included
        cut.write_bytes(text[:n])
        with pytest.raises(ModelFileError) as info:
            load_model(cut)
        assert str(cut) in str(info.value)


@pytest.mark.parametrize("raw, problem", [
    (b"", "JSON"), (b"\xff\xfe\x00garbage", "UnicodeDecodeError"), (b"[1, 2, 3]", "'format' is 'list'"),
    (b"null", "'format' is 'NoneType'"), (b"not json", "JSON"), (b"[" * 100_000, "RecursionError"),
    (b'{"format": "micrograd_batch.MLP", "format_version": 2, "x": NaN}', "exactly the keys"),
])
def test_garbage_files(tmp_path, raw, problem):
    path = tmp_path / "m.json"
    path.write_bytes(raw)
    with pytest.raises(ModelFileError, match=problem) as info:
        load_model(path)
    assert info.value.path == path


BAD_DICTS = {
    "wrong format name": (lambda d: d.update(format="pytorch"), "'format' is 'pytorch'"),
    "version 1": (lambda d: d.update(format_version=1), "written by an earlier version"),
    "version as string": (lambda d: d.update(format_version="2"), "format_version '2'"),
    "version as bool": (lambda d: d.update(format_version=True), "format_version True"),
    "version as float": (lambda d: d.update(format_version=2.0), "format_version 2.0"),
    "missing norms": (lambda d: d.pop("norms"), "exactly the keys"),
    "unknown key": (lambda d: d.update(optimizer="adam"), "exactly the keys"),
    "config missing a key": (lambda d: d["config"].pop("norm"), "config must have exactly"),
    "sizes too short": (lambda d: d["config"].update(sizes=[2]), "config.sizes"),
    "size zero": (lambda d: d["config"].update(sizes=[0, 3, 1]), "config.sizes"),
    "size bool": (lambda d: d["config"].update(sizes=[True, 3, 1]), "config.sizes"),
    "size float": (lambda d: d["config"].update(sizes=[2.0, 3, 1]), "config.sizes"),
    "activation unknown": (lambda d: d["config"].update(activation="gelu"), "activations must be one of"),
    "activation list": (lambda d: d["config"].update(activation=["relu"]), "activations must be one of"),
    "norm unknown": (lambda d: d["config"].update(norm="group"), "config.norm is 'group'"),
    "norm as list": (lambda d: d["config"].update(norm=["batch"]), "config.norm is \\['batch'\\]"),
    "norm without momentum": (lambda d: d["norms"][0].pop("momentum"), "norms\\[0\\] must have exactly the keys"),
    "norm eps zero": (lambda d: d["norms"][0].update(eps=0.0), "eps > 0"),
    "norm eps a list": (lambda d: d["norms"][0].update(eps=[1e-5]), "norms\\[0\\].eps\\[0\\]"),
    "norm eps string": (lambda d: d["norms"][0].update(eps="1e-5"), "norms\\[0\\].eps"),
    "norm momentum above 1": (lambda d: d["norms"][0].update(momentum=1.5), "momentum in"),
    "norms too long": (lambda d: d["norms"].append(d["norms"][0]), "norms must be a list of 1"),
    "norms not a list": (lambda d: d.update(norms={}), "norms must be a list of 1"),
    "a parameter missing": (lambda d: d["parameters"].pop(), "parameters must be a list of 19"),
    "a parameter too many": (lambda d: d["parameters"].append(0.5), "parameters must be a list of 19"),
    "parameter string": (lambda d: d["parameters"].__setitem__(2, "0.5"), "parameters\\[2\\]"),
    "parameter bool": (lambda d: d["parameters"].__setitem__(1, True), "parameters\\[1\\]"),
    "parameter null": (lambda d: d["parameters"].__setitem__(1, None), "parameters\\[1\\]"),
    "parameter nested": (lambda d: d["parameters"].__setitem__(1, [0.5]), "parameters\\[1\\]"),
    "parameter huge int": (lambda d: d["parameters"].__setitem__(0, 10**400), "parameters\\[0\\]"),
    "parameter 2**53 + 1": (lambda d: d["parameters"].__setitem__(0, 2**53 + 1), "up to 2\\*\\*53"),
    "a running mean missing": (lambda d: d["norms"][0]["running_mean"].pop(), "running_mean must be a list of 3"),
    "negative running variance": (lambda d: d["norms"][0]["running_var"].__setitem__(2, -0.5), "running_var >= 0"),
    "claims a huge layer": (lambda d: d["config"].update(sizes=[2, 10**9, 1]), "parameters must be a list of"),
}


@pytest.mark.parametrize("name", sorted(BAD_DICTS))
def test_a_damaged_model_file_names_the_problem(tmp_path, name):
    edit, problem = BAD_DICTS[name]
    data = good_dict()
    edit(data)
    path = write(tmp_path / "m.json", data)
    with pytest.raises(ModelFileError, match=problem) as info:
        load_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_a_file_are_refused(tmp_path, literal):
    text = re.sub(r'("parameters": \[)[^,]+', lambda m: m.group(1) + literal, json.dumps(good_dict()), count=1)
    assert f'"parameters": [{literal},' in text
    (tmp_path / "m.json").write_text(text, encoding="utf-8")
    with pytest.raises(ModelFileError, match="parameters\\[0\\]"):
        load_model(tmp_path / "m.json")


@settings(max_examples=80, deadline=None)
@given(number=st.integers())
@example(number=9007199254740993)  # 2**53 + 1: it would load as 9007199254740992.0
@example(number=2**1023 * 3)
def test_an_integer_parameter_loads_exactly_or_is_refused(number, tmp_path_factory):
    data = good_dict()
    data["parameters"][-1] = number
    path = write(tmp_path_factory.mktemp("int") / "m.json", data)
    try:
        loaded = load_model(path)
    except ModelFileError as error:
        assert abs(number) > 2**53 and "up to 2**53" in str(error)
        return
    assert loaded.parameters()[-1].data == number and type(loaded.parameters()[-1].data) is float


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)


def all_paths(obj, prefix=()):
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in items:
        yield prefix + (k,)
        yield from all_paths(v, prefix + (k,))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_files_load_exactly_or_raise_model_file_error(data):
    """Random edits of a valid file (a value replaced, a key dropped, bytes flipped or cut): it
    loads as exactly what the file says, or raises ModelFileError, nothing else."""
    doc = good_dict()
    kind = data.draw(st.sampled_from(["replace", "drop", "bytes", "whole"]))
    if kind == "whole":
        raw = json.dumps(data.draw(json_values)).encode()
    elif kind == "bytes":
        raw = bytearray(json.dumps(doc).encode())
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(raw[: data.draw(st.integers(0, len(raw)))])
    else:
        where = data.draw(st.sampled_from(list(all_paths(doc))))
        parent = doc
        for k in where[:-1]:
            parent = parent[k]
        if kind == "drop":
            del parent[where[-1]]
        else:
            parent[where[-1]] = data.draw(json_values)
        raw = json.dumps(doc).encode()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.json"
        path.write_bytes(raw)
        try:
            loaded = load_model(path)
        except ModelFileError as error:
            assert str(path) in str(error)
            return
    assert model_to_dict(loaded) == json.loads(raw)


def test_a_fifo_and_a_device_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    for name in ("fifo", "zero"):
        result: list = []

        def load(path=tmp_path / name, result=result):
            with pytest.raises(ModelFileError) as info:
                load_model(path)
            result.append(info)

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        worker.join(5)
        assert result and "not a regular file" in str(result[0].value), f"{name} blocked or was read"


def test_a_file_over_the_size_limit_is_refused_unread(model, tmp_path, monkeypatch):
    save_model(model, tmp_path / "m.json")
    monkeypatch.setattr(persist, "MAX_FILE_BYTES", (tmp_path / "m.json").stat().st_size - 1)
    with pytest.raises(ModelFileError, match="at most"):
        load_model(tmp_path / "m.json")
    monkeypatch.setattr(persist, "MAX_FILE_BYTES", (tmp_path / "m.json").stat().st_size)
    assert param_bits(load_model(tmp_path / "m.json")) == param_bits(model)


def test_a_version_1_file_is_refused_and_the_documented_recipe_converts_it(tmp_path):
    """Version 1 (nested weights) is refused with a pointer to docs/checkpoints.md, whose recipe
    turns it into a version 2 file that loads bit for bit (the old file was written by the
    previous release from MLP(2, [2, 1], seed=4, norm='batch', activation='tanh'))."""
    old = {"format": "micrograd_batch.MLP", "format_version": 1, "nin": 2, "nouts": [2, 1], "activation": "tanh",
           "output_activation": "linear", "fused": True, "layers": [
               {"weights": [[-0.527903820525131, -0.7936679315385684], [-0.20788351477863798, -0.6900554583951795]],
                "biases": [0.0, 0.0]}, {"weights": [[-0.8669698086408202, -0.19681797102985032]], "biases": [0.0]}],
           "norm": "batch", "norms": [{"gamma": [1.0, 1.0], "beta": [0.0, 0.0], "eps": 1e-05, "momentum": 0.1,
                                       "running_mean": [0.25, -0.5], "running_var": [1.5, 0.75]}]}
    path = write(tmp_path / "model.json", old)
    with pytest.raises(ModelFileError, match="earlier version: docs/checkpoints.md"):
        load_model(path)
    recipe = re.search(r"```python\n(# convert a format_version 1 model file.*?)```", DOCS.read_text(), re.S)
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        exec(recipe.group(1), {})
    finally:
        os.chdir(cwd)
    loaded = load_model(path)
    expected = MLP(2, [2, 1], seed=4, norm="batch", activation="tanh")
    assert param_bits(loaded) == param_bits(expected)
    assert norm_state(loaded) == [(1e-05, 0.1, [0.25, -0.5], [1.5, 0.75])]


# ---- loading into an existing model ----------------------------------------------------------------

def test_load_parameters_into_copies_parameters_and_statistics_exactly(tmp_path):
    m = batch_norm_model(seed=1)
    save_model(m, tmp_path / "m.json")
    other = MLP(2, [3, 1], seed=8, norm="batch", fused=False)  # fused changes no number
    for n in other.norms:
        n.eps, n.momentum = 1e-3, 0.25
    load_parameters_into(other, tmp_path / "m.json")
    assert param_bits(other) == param_bits(m) and norm_state(other) == norm_state(m)


@pytest.mark.parametrize("other", [
    dict(nin=3, nouts=[4, 3]), dict(nin=2, nouts=[4, 2]), dict(nin=3, nouts=[4, 2], activation="relu"),
    dict(nin=3, nouts=[4, 2], output_activation="linear"), dict(nin=3, nouts=[8]),
    dict(nin=3, nouts=[4, 2], norm="layer"),
])
def test_load_parameters_into_refuses_other_architectures(model, tmp_path, other):
    save_model(model, tmp_path / "m.json")
    kwargs = {"activation": "tanh", "output_activation": "sigmoid", "seed": 3, **other}
    target = MLP(kwargs.pop("nin"), kwargs.pop("nouts"), **kwargs)
    before = param_bits(target)
    with pytest.raises(ModelFileError, match="not changed"):
        load_parameters_into(target, tmp_path / "m.json")
    assert param_bits(target) == before


def test_load_parameters_into_leaves_the_model_alone_on_a_bad_file(model, tmp_path):
    data = model_to_dict(model)
    data["parameters"][-1] = "oops"  # the very last parameter is bad
    before = param_bits(model)
    with pytest.raises(ModelFileError, match="parameters\\[25\\]"):
        load_parameters_into(model, write(tmp_path / "m.json", data))
    assert param_bits(model) == before


def test_model_from_dict_does_not_keep_references_to_the_dict():
    data = good_dict()
    frozen = copy.deepcopy(data)
    model_from_dict(data).parameters()[0].data += 1.0
    assert data == frozen


# ---- memory (issue 20, bug 7: a 2 MiB file once peaked at 256 MiB) --------------------------------

@pytest.mark.slow
def test_loading_costs_at_most_20_times_the_files_size_in_memory(tmp_path):
    save_model(MLP(64, [256, 256, 1], seed=0), tmp_path / "m.json")  # 82,689 parameters
    size = (tmp_path / "m.json").stat().st_size
    assert size > 1.5 * 2**20
    started = time.perf_counter()
    tracemalloc.start()
    try:
        loaded = load_model(tmp_path / "m.json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(loaded.parameters()) == 82_689
    assert peak <= 20 * size, f"loading a {size}-byte file peaked at {peak} bytes ({peak / size:.0f}x)"
    assert time.perf_counter() - started < 60
