"""Saving and reloading models: exact round trips, atomic writes, clear errors for bad files."""

from __future__ import annotations

import copy
import json
import os
import random
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from faults import run_interrupted
from state import bits

from micrograd_batch import MLP, SGD, Value
from micrograd_batch import persist
from micrograd_batch.nn import ACTIVATIONS
from micrograd_batch.persist import (
    FORMAT_VERSION,
    ModelFileError,
    load_model,
    load_parameters_into,
    model_from_dict,
    model_to_dict,
    save_model,
)

ACTS = sorted(ACTIVATIONS)


def param_bits(model):
    return [bits(p.data) for p in model.parameters()]


def predictions(model, inputs):
    out = []
    for x in inputs:
        y = model(x)
        out.extend([bits(y.data)] if isinstance(y, Value) else [bits(v.data) for v in y])
    return out


def listing(directory):
    return sorted(os.listdir(directory))


@pytest.fixture
def model():
    return MLP(3, [4, 2], activation="tanh", output_activation="sigmoid", seed=7)


# ---- exact round trips ------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)  # includes ±0.0, subnormals, ±1.8e308


@st.composite
def models(draw):
    nin = draw(st.integers(1, 4))
    nouts = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    model = MLP(nin, nouts, activation=draw(st.sampled_from(ACTS)),
                output_activation=draw(st.sampled_from(ACTS)), seed=draw(st.integers(0, 99)),
                fused=draw(st.booleans()))
    params = model.parameters()
    values = draw(st.lists(finite, min_size=len(params), max_size=len(params)))
    for p, v in zip(params, values):
        p.data = v
    return model


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.lists(st.lists(st.floats(-3, 3), min_size=4, max_size=4), min_size=1, max_size=3))
def test_round_trip_is_bit_exact(model, inputs):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.json"
        save_model(model, path)
        loaded = load_model(path)
        assert listing(d) == ["model.json"]
    assert loaded is not model
    assert loaded.sizes == model.sizes
    assert (loaded.activation, loaded.output_activation) == (model.activation, model.output_activation)
    assert param_bits(loaded) == param_bits(model)
    xs = [x[: model.nin] for x in inputs]
    assert predictions(loaded, xs) == predictions(model, xs)
    # and the dict form round-trips too, without the disk
    assert param_bits(model_from_dict(model_to_dict(model))) == param_bits(model)


def test_file_layout_matches_the_neurons(model, tmp_path):
    """The documented layout, checked against the neurons themselves (not parameters())."""
    path = tmp_path / "m.json"
    save_model(model, str(path))  # str paths work as well as Path objects
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "micrograd_batch.MLP"
    assert data["format_version"] == FORMAT_VERSION == 1
    assert (data["nin"], data["nouts"]) == (3, [4, 2])
    assert (data["activation"], data["output_activation"], data["fused"]) == ("tanh", "sigmoid", True)
    for layer, saved in zip(model.layers, data["layers"]):
        assert saved["weights"] == [[w.data for w in n.w] for n in layer.neurons]
        assert saved["biases"] == [n.b.data for n in layer.neurons]


def test_unfused_model_reloads_unfused(tmp_path):
    m = MLP(2, [3, 1], seed=1, fused=False)
    save_model(m, tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json")
    assert all(not n.fused for layer in loaded.layers for n in layer.neurons)
    assert predictions(loaded, [[0.3, -0.7]]) == predictions(m, [[0.3, -0.7]])


def test_loading_does_not_touch_the_global_random_state(model, tmp_path):
    save_model(model, tmp_path / "m.json")
    random.seed(123)
    state = random.getstate()
    load_model(tmp_path / "m.json")
    assert random.getstate() == state


def test_saving_over_an_existing_file_replaces_it(tmp_path):
    path = tmp_path / "m.json"
    save_model(MLP(2, [1], seed=1), path)
    second = MLP(2, [2, 1], seed=2)
    save_model(second, path)
    assert load_model(path).sizes == [2, 2, 1]
    assert listing(tmp_path) == ["m.json"]


# ---- what cannot be saved -----------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_parameter_is_refused_and_disk_untouched(model, tmp_path, bad):
    path = tmp_path / "m.json"
    save_model(model, path)
    before = path.read_bytes()
    model.parameters()[5].data = bad
    with pytest.raises(ValueError, match="parameter 5"):
        save_model(model, path)
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["m.json"]


@pytest.mark.parametrize("thing", [None, 3, "model", MLP(2, [1]).layers[0], [MLP(2, [1])]])
def test_only_an_mlp_can_be_saved(thing, tmp_path):
    with pytest.raises(TypeError):
        save_model(thing, tmp_path / "m.json")
    assert listing(tmp_path) == []


# ---- atomic writes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_crash_before_rename_keeps_old_file(model, tmp_path, monkeypatch, where):
    path = tmp_path / "m.json"
    save_model(MLP(3, [4, 2], seed=99), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(f"simulated failure in os.{where}")

    monkeypatch.setattr(persist.os, where, boom)
    with pytest.raises(OSError, match="simulated"):
        save_model(model, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["m.json"]
    assert param_bits(load_model(path)) == param_bits(MLP(3, [4, 2], seed=99))


def test_data_is_fsynced_before_the_rename(model, tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(persist.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(persist.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    save_model(model, tmp_path / "m.json")
    assert events[:2] == ["fsync", "replace"]


def save_as(kind):
    """save_model, or save_checkpoint with a fresh SGD, as a function (model, path)."""
    if kind == "model":
        return save_model
    return lambda model, path: persist.save_checkpoint(path, model, SGD(model.parameters()), {})


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_a_missing_folder_is_named_not_the_temporary_file(model, tmp_path, kind):
    save = save_as(kind)
    folder = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError) as info:
        save(model, folder / "m.json")
    assert info.value.filename == os.path.realpath(folder) and ".tmp" not in str(info.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError) as info:
        save(model, tmp_path / "file" / "m.json")
    assert info.value.filename == os.path.realpath(tmp_path / "file")
    assert listing(tmp_path) == ["file"]


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
@pytest.mark.parametrize("link", [False, True])
def test_a_directory_is_refused_as_a_file_path_and_nothing_is_written(model, tmp_path, kind, link):
    save = save_as(kind)
    folder = tmp_path / "models"
    folder.mkdir()
    target = folder
    if link:
        target = tmp_path / "link"
        target.symlink_to(folder)
    before = listing(tmp_path)
    with pytest.raises(IsADirectoryError, match="give a file path") as info:
        save(model, target)
    assert info.value.filename == str(target)
    assert listing(tmp_path) == before and listing(folder) == []  # no temporary file, here or in the parent


# ---- bad files -----------------------------------------------------------------------------------

def good_dict():
    return model_to_dict(MLP(2, [3, 1], seed=5))


def write(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.json")


def test_every_truncation_is_a_model_file_error(tmp_path):
    path = tmp_path / "m.json"
    save_model(MLP(2, [2, 1], seed=3), path)
    text = path.read_bytes()
    cut = tmp_path / "cut.json"
    for n in range(len(text.rstrip())):  # every proper prefix, the empty file included
        cut.write_bytes(text[:n])
        with pytest.raises(ModelFileError) as info:
            load_model(cut)
        assert str(cut) in str(info.value)


@pytest.mark.parametrize("raw, problem", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"\xff\xfe\x00garbage", "UTF-8"),
    (b"[1, 2, 3]", "JSON object"),
    (b"null", "JSON object"),
    (b"not json at all", "JSON"),
    (b"[" * 100_000, "JSON"),
])
def test_garbage_files(tmp_path, raw, problem):
    path = tmp_path / "m.json"
    path.write_bytes(raw)
    with pytest.raises(ModelFileError, match=problem) as info:
        load_model(path)
    assert isinstance(info.value, ValueError)
    assert info.value.path == path


def mutate(edit):
    data = good_dict()
    edit(data)
    return data


BAD_DICTS = {
    "wrong format name": (lambda d: d.update(format="pytorch"), "format"),
    "newer version": (lambda d: d.update(format_version=2), "newer"),
    "version as string": (lambda d: d.update(format_version="1"), "format_version"),
    "version as bool": (lambda d: d.update(format_version=True), "format_version"),
    "version as float": (lambda d: d.update(format_version=1.0), "format_version"),
    "missing layers": (lambda d: d.pop("layers"), "missing"),
    "missing nin": (lambda d: d.pop("nin"), "missing"),
    "missing fused": (lambda d: d.pop("fused"), "missing"),
    "unknown key": (lambda d: d.update(optimizer="adam"), "unknown"),
    "nin zero": (lambda d: d.update(nin=0), "nin"),
    "nin bool": (lambda d: d.update(nin=True), "nin"),
    "nin string": (lambda d: d.update(nin="2"), "nin"),
    "nouts empty": (lambda d: d.update(nouts=[]), "nouts"),
    "nouts int": (lambda d: d.update(nouts=3), "nouts"),
    "nouts float": (lambda d: d.update(nouts=[3.0, 1]), "nouts"),
    "activation unknown": (lambda d: d.update(activation="gelu"), "activation"),
    "activation list": (lambda d: d.update(activation=["relu"]), "activation"),
    "fused string": (lambda d: d.update(fused="yes"), "fused"),
    "layers not list": (lambda d: d.update(layers={}), "layers"),
    "one layer too few": (lambda d: d["layers"].pop(), "layers"),
    "layer extra key": (lambda d: d["layers"][0].update(scale=1), "layers\\[0\\]"),
    "a neuron missing": (lambda d: d["layers"][0]["weights"].pop(), "weights"),
    "a bias missing": (lambda d: d["layers"][1]["biases"].pop(), "biases"),
    "a weight missing": (lambda d: d["layers"][0]["weights"][1].pop(), "weights\\[1\\]"),
    "a weight too many": (lambda d: d["layers"][1]["weights"][0].append(0.5), "weights\\[0\\]"),
    "weight string": (lambda d: d["layers"][0]["weights"][2].__setitem__(0, "0.5"), "weights\\[2\\]\\[0\\]"),
    "weight bool": (lambda d: d["layers"][0]["weights"][0].__setitem__(1, True), "weights\\[0\\]\\[1\\]"),
    "weight null": (lambda d: d["layers"][0]["weights"][0].__setitem__(1, None), "weights\\[0\\]\\[1\\]"),
    "weight nested": (lambda d: d["layers"][0]["weights"][0].__setitem__(1, [0.5]), "weights\\[0\\]\\[1\\]"),
    "bias huge int": (lambda d: d["layers"][1]["biases"].__setitem__(0, 10**400), "too large"),
    "weight int a float rounds": (lambda d: d["layers"][0]["weights"][0].__setitem__(0, 2**53 + 1),
                                  "cannot hold exactly"),
    "sizes disagree with rows": (lambda d: d.update(nin=3), "weights\\[0\\]"),
    "claims a huge layer": (lambda d: d.update(nouts=[10**9, 1]), "weights"),
}


@pytest.mark.parametrize("name", sorted(BAD_DICTS))
def test_mismatched_files_name_the_problem(tmp_path, name):
    edit, problem = BAD_DICTS[name]
    path = write(tmp_path / "m.json", mutate(edit))
    with pytest.raises(ModelFileError, match=problem) as info:
        load_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_file_are_refused(tmp_path, literal):
    text = json.dumps(good_dict()).replace('"biases": [0.0', f'"biases": [{literal}', 1)
    assert literal in text
    path = tmp_path / "m.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelFileError):
        load_model(path)


def test_integer_parameters_are_accepted_as_floats(tmp_path):
    """A hand-edited file may say 0 for 0.0; that is the same number."""
    data = good_dict()
    data["layers"][0]["weights"][0][0] = 2
    loaded = load_model(write(tmp_path / "m.json", data))
    assert loaded.parameters()[0].data == 2.0 and type(loaded.parameters()[0].data) is float


@settings(max_examples=80, deadline=None)
@given(number=st.integers())
@example(number=9007199254740993)  # 2**53 + 1: it would load as 9007199254740992.0
@example(number=-(2**60) - 1)
@example(number=2**1023 * 3)
def test_an_integer_parameter_loads_exactly_or_is_refused(number, tmp_path_factory):
    data = good_dict()
    data["layers"][1]["biases"][0] = number
    path = write(tmp_path_factory.mktemp("int") / "m.json", data)
    try:
        loaded = load_model(path)
    except ModelFileError as error:
        assert float(number) != number if abs(number) < 2**1024 else "too large" in str(error)
        return
    assert loaded.parameters()[-1].data == number  # int == float compares exactly in Python


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)


def all_paths(obj, prefix=()):
    """Every (container, key) position inside a JSON value."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in items:
        yield prefix + (k,)
        yield from all_paths(v, prefix + (k,))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_files_load_or_raise_model_file_error(data):
    """Random edits of a valid file (a value replaced, a key dropped, bytes flipped or cut):
    the result either loads as a consistent MLP or raises ModelFileError, nothing else."""
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
        positions = list(all_paths(doc))
        where = data.draw(st.sampled_from(positions))
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
    # it loaded: then it must be exactly what the file says
    saved = json.loads(raw)
    assert loaded.sizes == [saved["nin"], *saved["nouts"]]
    assert model_to_dict(loaded) == saved


# ---- loading into an existing model --------------------------------------------------------------

def test_load_parameters_into_copies_exactly(model, tmp_path):
    path = tmp_path / "m.json"
    save_model(model, path)
    other = MLP(3, [4, 2], activation="tanh", output_activation="sigmoid", seed=8, fused=False)
    assert param_bits(other) != param_bits(model)
    load_parameters_into(other, path)
    assert param_bits(other) == param_bits(model)
    assert predictions(other, [[0.1, 0.2, 0.3]]) == predictions(model, [[0.1, 0.2, 0.3]])


@pytest.mark.parametrize("other", [
    dict(nin=3, nouts=[4, 3]),
    dict(nin=2, nouts=[4, 2]),
    dict(nin=3, nouts=[4, 2], activation="relu"),
    dict(nin=3, nouts=[4, 2], output_activation="linear"),
    dict(nin=3, nouts=[8]),
])
def test_load_parameters_into_refuses_other_architectures(model, tmp_path, other):
    path = tmp_path / "m.json"
    save_model(model, path)
    kwargs = dict(activation="tanh", output_activation="sigmoid", seed=3)
    kwargs.update(other)
    target = MLP(kwargs.pop("nin"), kwargs.pop("nouts"), **kwargs)
    before = param_bits(target)
    with pytest.raises(ModelFileError, match="not changed"):
        load_parameters_into(target, path)
    assert param_bits(target) == before


def test_load_parameters_into_leaves_model_alone_on_a_bad_file(model, tmp_path):
    data = model_to_dict(model)
    data["layers"][1]["biases"][1] = "oops"  # the very last parameter is bad
    path = write(tmp_path / "m.json", data)
    before = param_bits(model)
    with pytest.raises(ModelFileError, match="biases"):
        load_parameters_into(model, path)
    assert param_bits(model) == before


def test_model_from_dict_does_not_keep_references_to_the_dict():
    data = good_dict()
    frozen = copy.deepcopy(data)
    m = model_from_dict(data)
    m.parameters()[0].data += 1.0
    assert data == frozen


# ---- paths, permissions, links, long names, special files ----------------------------------------

def open_fds():
    return sorted(os.listdir("/proc/self/fd"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")


@needs_proc
@pytest.mark.parametrize("not_a_path", [3, 0, 1, True, False, None, 3.0, [b"m.json"]])
def test_a_number_is_never_taken_as_a_file_descriptor(model, not_a_path):
    fds = open_fds()
    for call in (lambda: load_model(not_a_path), lambda: save_model(model, not_a_path),
                 lambda: load_parameters_into(model, not_a_path),
                 lambda: persist.save_checkpoint(not_a_path, model, SGD(model.parameters())),
                 lambda: persist.load_checkpoint(not_a_path, model, SGD(model.parameters()))):
        with pytest.raises(TypeError, match="str, bytes or os.PathLike"):
            call()
    assert open_fds() == fds
    os.fstat(0), os.fstat(1), os.fstat(2)  # still open


def test_bytes_and_pathlike_paths_work(model, tmp_path):
    save_model(model, os.fsencode(tmp_path / "b.json"))
    assert param_bits(load_model(os.fsencode(tmp_path / "b.json"))) == param_bits(model)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saving_keeps_the_permission_bits_of_an_existing_file(model, tmp_path):
    path = tmp_path / "secret.json"
    save_model(model, path)
    os.chmod(path, 0o600)
    save_model(model, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o640)
    save_model(MLP(2, [1], seed=0), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_saving_writes_through_a_symbolic_link(model, tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.json"
    save_model(MLP(2, [1], seed=0), target)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    save_model(model, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert param_bits(load_model(target)) == param_bits(model)
    assert listing(tmp_path / "real") == ["model.json"] and listing(tmp_path) == ["link.json", "real"]
    dangling = tmp_path / "dangling.json"  # a link to a file that does not exist yet
    dangling.symlink_to(tmp_path / "real" / "new.json")
    save_model(model, dangling)
    assert dangling.is_symlink() and param_bits(load_model(tmp_path / "real" / "new.json")) == param_bits(model)


@pytest.mark.parametrize("length", [200, 238, 250, 255])
def test_saving_works_for_file_names_up_to_the_system_limit(model, tmp_path, length):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if length > limit:
        pytest.skip(f"names on this file system are limited to {limit} bytes")
    path = tmp_path / ("m" * (length - 5) + ".json")
    save_model(model, path)
    save_model(model, path)
    assert param_bits(load_model(path)) == param_bits(model)
    assert listing(tmp_path) == [path.name]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_link_to_an_endless_device_is_refused_at_once(tmp_path):
    link = tmp_path / "m.json"
    link.symlink_to("/dev/zero")
    started = time.perf_counter()
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_model(link)
    assert time.perf_counter() - started < 1.0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "m.json"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(pytest.raises(ModelFileError, load_model, fifo)),
                              daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():  # unblock it: open the FIFO for writing, so the reader gets EOF
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("load_model blocked on a FIFO")
    assert "not a regular file" in str(outcome[0].value)


def test_a_file_over_the_size_limit_is_refused_unread(model, tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    save_model(model, path)
    monkeypatch.setattr(persist, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ModelFileError, match="bytes"):
        load_model(path)
    monkeypatch.setattr(persist, "MAX_FILE_BYTES", path.stat().st_size)
    assert param_bits(load_model(path)) == param_bits(model)


# ---- Ctrl-C at every line of save_model ------------------------------------------------------------

def write_model(model, path):
    save_model(model, path)


def write_checkpoint(model, path):
    persist.save_checkpoint(path, model, SGD(model.parameters(), lr=0.1, momentum=0.5), {"epochs_done": 1})


@needs_proc
@pytest.mark.parametrize("existing", [True, False])
@pytest.mark.parametrize("write", [write_model, write_checkpoint])
def test_ctrl_c_at_every_line_of_a_save_leaves_old_or_new_and_no_debris(model, tmp_path, existing, write):
    path = tmp_path / "m.json"
    old_model = MLP(3, [4, 2], seed=99)
    write(model, path)
    new = path.read_bytes()
    old = None
    if existing:
        write(old_model, path)
        old = path.read_bytes()
    else:
        path.unlink()
    fds = open_fds()
    n, interrupted = 0, True
    while interrupted:
        n += 1
        interrupted = run_interrupted(lambda: write(model, path), n)
        now = path.read_bytes() if path.exists() else None
        assert now in (old, new), f"interrupt at line {n} tore the file"
        assert listing(tmp_path) == (["m.json"] if now is not None else []), f"debris at line {n}"
        assert open_fds() == fds, f"a descriptor leaked at line {n}"
        if interrupted and existing:  # put the old file back for the next run
            write(old_model, path)
        elif interrupted and now is not None:
            path.unlink()
    assert n > 20  # it really walked through the function's lines
    assert path.read_bytes() == new  # the last run, not interrupted, saved the model
