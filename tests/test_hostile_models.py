"""Hostile model files, each built here: loading runs nothing, trusts nothing, and ends in one line.

Every payload would create ``canary`` if it ran; every refusal is exit 2 with one
``horq-codegen: error:`` line on stderr (file descriptor 2 included: torch's C++ messages too).
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

import hostile
from conftest import export_model
from horq_codegen.cli import main
from horq_codegen.model_file import archive as archive_module
from horq_codegen.model_file import limits

COMMANDS = ("inspect", "generate", "verify")


@pytest.fixture(scope="module")
def benign(small_model) -> Path:
    return small_model


@pytest.fixture
def canary(tmp_path) -> Path:
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "a payload from the model file ran"


def refusal(argv: list[str], capfd) -> str:
    capfd.readouterr()
    assert main(argv) == 2
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("horq-codegen: error:") and "Traceback" not in err, err
    return lines[0]


def refused_everywhere(path: Path, tmp_path: Path, capfd) -> str:
    """The same refusal from inspect, generate (which writes nothing) and verify."""
    out = tmp_path / "out"
    messages = {refusal(["inspect", str(path)], capfd),
                refusal(["generate", str(path), "-o", str(out)], capfd),
                refusal(["verify", str(path), "--samples", "2"], capfd)}
    assert not out.exists()
    assert len(messages) == 1, messages
    return messages.pop()


# -- code execution --------------------------------------------------------------------

@pytest.mark.parametrize("member", ["evil.json", "weight_version", "extra_evil"])
def test_pickled_weight_is_scanned_whatever_its_member_is_called(benign, tmp_path, canary, capfd, member):
    def pickled(config):
        config["config"]["0.weight"].update(use_pickle=True, path_name=member)
    path = hostile.edit_json_member(benign, tmp_path / "a.pt2", "data/weights/model_weights_config.json", pickled)
    path = hostile.rewrite(path, tmp_path / "evil.pt2", add=[(f"data/weights/{member}", hostile.torch_saved_payload(canary))])
    assert "could run code" in refused_everywhere(path, tmp_path, capfd)


def test_weight_member_outside_its_folder_is_refused(benign, tmp_path, canary, capfd):
    def pickled(config):
        config["config"]["0.weight"].update(use_pickle=True, path_name="../extra/evil")
    path = hostile.edit_json_member(benign, tmp_path / "a.pt2", "data/weights/model_weights_config.json", pickled)
    path = hostile.rewrite(path, tmp_path / "evil.pt2", add=[("extra/evil", hostile.torch_saved_payload(canary))])
    assert "names no valid member" in refused_everywhere(path, tmp_path, capfd)


def test_duplicate_member_names_are_refused(benign, tmp_path, canary, capfd):
    """A hostile first copy of a name that a benign second copy follows."""
    path = hostile.rewrite(benign, tmp_path / "dup.pt2",
                           before=[("data/sample_inputs/model.pt", hostile.torch_saved_payload(canary))])
    assert "occurs twice" in refused_everywhere(path, tmp_path, capfd)


def test_guards_code_is_refused_by_every_command(benign, tmp_path, canary, capfd):
    def guard(program):
        program["guards_code"] = [f"__import__('os').system('touch {canary}') or True"]
    path = hostile.edit_program(benign, tmp_path / "guards.pt2", guard)
    assert "guards_code" in refused_everywhere(path, tmp_path, capfd)


def test_node_calling_a_function_outside_the_operators_is_refused(benign, tmp_path, canary, capfd):
    """``torch.os.system`` resolves from ``torch`` by attributes: torch's deserializer would accept it."""
    def system(program):
        node = hostile.node(program, "relu")
        node["target"] = "torch.os.system"
        node["inputs"] = [{"name": "command", "arg": {"as_string": f"touch {canary}"}, "kind": 1}]
    path = hostile.edit_program(benign, tmp_path / "system.pt2", system)
    assert "torch.os.system" in refused_everywhere(path, tmp_path, capfd)


def test_node_name_that_would_become_code_is_refused(benign, tmp_path, canary, capfd):
    """torch.fx writes node names unsanitized into the Python source it executes."""
    def inject(program):
        hostile.rename_value(program, "relu", f"relu = __import__('os').system('touch {canary}'); relu")
    path = hostile.edit_program(benign, tmp_path / "names.pt2", inject)
    assert "not a plain identifier" in refused_everywhere(path, tmp_path, capfd)


def test_parameter_path_that_would_become_code_is_refused(benign, tmp_path, canary, capfd):
    """A parameter path becomes ``getattr(self, "...")`` in generated source: a quote would end the string."""
    fqn = f'y" if getattr(__import__("os"),"system")("touch {canary}") else "y'  # ran with torch.export.load
    path = hostile.edit_program(benign, tmp_path / "fqn.pt2", lambda program: hostile.rename_value(program, "0.weight", fqn))
    path = hostile.edit_json_member(path, tmp_path / "fqn2.pt2", "data/weights/model_weights_config.json",
                                    lambda config: config["config"].__setitem__(fqn, config["config"].pop("0.weight")))
    assert "dotted path of plain names" in refused_everywhere(path, tmp_path, capfd)


def test_control_character_in_metadata_is_refused(benign, tmp_path, canary, capfd):
    def inject(program):
        hostile.node(program, "relu")["metadata"]["nn_module_stack"] += f"\r__import__('os').system('touch {canary}')"
    path = hostile.edit_program(benign, tmp_path / "cr.pt2", inject)
    assert "control character" in refused_everywhere(path, tmp_path, capfd)


def test_symbolic_shapes_are_refused(benign, tmp_path, canary, capfd):
    """sympy.sympify evaluates its text: a symbolic size would run it."""
    def symbolic(program):
        hostile.graph(program)["tensor_values"]["relu"]["sizes"][0] = {
            "as_expr": {"expr_str": f"__import__('os').system('touch {canary}')", "hint": None}}
    path = hostile.edit_program(benign, tmp_path / "sym.pt2", symbolic)
    assert "symbolic shape" in refused_everywhere(path, tmp_path, capfd)

    def ranges(program):
        program["range_constraints"] = {"s0": {"min_val": 1, "max_val": 8}}
    assert "dynamic shapes" in refused_everywhere(hostile.edit_program(benign, tmp_path / "r.pt2", ranges), tmp_path, capfd)


def test_custom_object_constant_is_refused(benign, tmp_path, canary, capfd):
    def custom(config):
        config["config"]["obj"] = {"path_name": "custom_obj_0", "is_param": False, "use_pickle": True}
    path = hostile.edit_json_member(benign, tmp_path / "c.pt2", "data/constants/model_constants_config.json", custom)
    path = hostile.rewrite(path, tmp_path / "obj.pt2", add=[("data/constants/custom_obj_0", hostile.payload(canary))])
    assert "pickled Python object" in refused_everywhere(path, tmp_path, capfd)


def test_members_torch_export_does_not_write_are_refused(benign, tmp_path, canary, capfd):
    """AOTInductor code would be loaded as a shared library; an unknown member is never read."""
    path = hostile.rewrite(benign, tmp_path / "aoti.pt2", add=[("data/aotinductor/model/model.so", b"\x7fELF")])
    assert "data/aotinductor/model/model.so" in refused_everywhere(path, tmp_path, capfd)


def test_bare_pickle_and_hostile_torch_save_are_refused(tmp_path, canary, capfd):
    (tmp_path / "bare.pt").write_bytes(hostile.payload(canary))
    assert "could run code" in refusal(["inspect", str(tmp_path / "bare.pt"), "--input-shape", "4"], capfd)
    (tmp_path / "zip.pt").write_bytes(hostile.torch_saved_payload(canary))
    assert "could run code" in refusal(["inspect", str(tmp_path / "zip.pt"), "--input-shape", "4"], capfd)


# -- memory and time ---------------------------------------------------------------------

def test_zip_bomb_is_refused_before_any_decompression(benign, tmp_path, capfd, monkeypatch):
    stream, size, crc = hostile.zip_bomb_member(256)  # 256 MiB of zeros in about 256 KB
    root, entries = hostile.members(benign)
    path = hostile.write_deflated_raw(tmp_path / "bomb.pt2", root, entries, ("extra/bomb", stream, size, crc))
    monkeypatch.setattr(archive_module.zlib, "decompressobj", lambda *a: pytest.fail("decompressed"))
    assert "zip bomb" in refusal(["inspect", str(path)], capfd)


def test_total_size_limit_is_checked_from_the_directory(benign, capfd, monkeypatch):
    monkeypatch.setattr(limits, "MAX_TOTAL_UNCOMPRESSED", 10_000)
    assert "more than the limit of 10,000" in refusal(["inspect", str(benign)], capfd)


def test_file_size_limit(benign, capfd, monkeypatch):
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 1000)
    assert "more than the limit of 1,000" in refusal(["inspect", str(benign)], capfd)


def _saved_pickle(tmp_path: Path, pickle_bytes: bytes) -> Path:
    return hostile.write_archive(tmp_path / "m.pt", "archive", [("data.pkl", pickle_bytes), ("version", b"3\n")])


def test_constructor_call_in_a_pickle_is_refused_before_it_runs(tmp_path, capfd, monkeypatch):
    """``REDUCE nn.Conv2d(1, 10**8, 3)`` would allocate 3.6 GB in the allow-listed constructor."""
    calls = []
    original = nn.Conv2d.__init__
    monkeypatch.setattr(nn.Conv2d, "__init__", lambda self, *a, **k: (calls.append(a), original(self, *a, **k))[1])
    data = b"\x80\x02ctorch.nn.modules.conv\nConv2d\nK\x01J\x00\xe1\xf5\x05K\x03\x87R."
    message = refusal(["inspect", str(_saved_pickle(tmp_path, data)), "--input-shape", "1,8,8"], capfd)
    assert "would run its constructor" in message and not calls


def test_parameter_count_limit_is_checked_before_loading(tmp_path, capfd):
    numel = limits.MAX_PARAMETERS + 1
    storage = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
               b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ" + numel.to_bytes(4, "little") + b"tQK\x00K\x01\x85K\x01\x85"
               b"\x89ccollections\nOrderedDict\n)RtR.")
    message = refusal(["inspect", str(_saved_pickle(tmp_path, storage)), "--input-shape", "1"], capfd)
    assert f"more than {limits.MAX_PARAMETERS:,} elements" in message


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "folder"])
def test_special_files_are_refused_at_once(tmp_path, capfd, kind):
    path = tmp_path / "model.pt2"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero-link":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    signal.signal(signal.SIGALRM, lambda *a: pytest.fail("reading the model hung"))
    signal.alarm(20)
    try:
        message = refusal(["inspect", str(path)], capfd)
    finally:
        signal.alarm(0)
    assert {"fifo": "a FIFO", "dev-zero-link": "a character device", "folder": "a directory"}[kind] in message


# -- shapes --------------------------------------------------------------------------------

def test_forged_channel_count_is_refused_with_both_shapes(benign, tmp_path, capfd):
    path = hostile.edit_program(benign, tmp_path / "c.pt2", lambda p: hostile.set_sizes(p, "conv2d", [1, 16, 8, 8]))
    message = refused_everywhere(path, tmp_path, capfd)
    assert "l0_conv2d" in message and "(16, 8, 8)" in message and "(8, 8, 8)" in message


def test_forged_padding_is_refused(benign, tmp_path, capfd):
    def padding(program):
        next(i for i in hostile.node(program, "conv2d_1")["inputs"] if i["name"] == "padding")["arg"] = {"as_ints": [0, 0]}
    message = refused_everywhere(hostile.edit_program(benign, tmp_path / "p.pt2", padding), tmp_path, capfd)
    assert "(16, 4, 4)" in message and "(16, 2, 2)" in message


def test_forged_feature_count_is_refused(benign, tmp_path, capfd):
    path = hostile.edit_program(benign, tmp_path / "f.pt2", lambda p: hostile.set_sizes(p, "flatten", [1, 300]))
    assert "(300,)" in refused_everywhere(path, tmp_path, capfd)


def _relu_pair(tmp_path: Path, side: int) -> Path:
    path = export_model(nn.Sequential(nn.ReLU(), nn.Hardtanh()).eval(), (1, 4, 4), tmp_path / "relus.pt2")
    def huge(program):
        for name in ("input", "relu", "hardtanh"):
            hostile.set_sizes(program, name, [1, 1, side, side])
    return hostile.edit_program(path, tmp_path / "huge.pt2", huge)


def test_model_no_target_can_hold_is_refused_before_any_file(tmp_path, capfd):
    """Consistent shapes, but a 6.4 GB float activation: more RAM than any board has (as int8 it
    would be 1.6 GB, which the largest Cortex-A board holds)."""
    out = tmp_path / "out"
    message = refusal(["generate", str(_relu_pair(tmp_path, 40_000)), "--activations", "float", "-o", str(out)],
                      capfd)
    assert "more than any target holds" in message and not out.exists()


def test_activation_beyond_32_bit_indices_is_refused(tmp_path, capfd):
    assert "32-bit" in refusal(["inspect", str(_relu_pair(tmp_path, 1_000_000))], capfd)


# -- corruption ----------------------------------------------------------------------------

def test_truncations_and_byte_flips_end_in_one_line(benign, tmp_path, capfd):
    data = benign.read_bytes()
    path = tmp_path / "broken.pt2"
    for cut in range(1, len(data), max(1, len(data) // 23)):
        path.write_bytes(data[:cut])
        message = refusal(["inspect", str(path)], capfd)
        assert "could run code" not in message
    accepted = 0
    for at in range(0, len(data), max(1, len(data) // 61)):
        broken = bytearray(data)
        broken[at] ^= 0x5A
        path.write_bytes(bytes(broken))
        capfd.readouterr()
        rc = main(["inspect", str(path)])
        _, err = capfd.readouterr()
        assert rc in (0, 2) and "Traceback" not in err
        if rc == 2:
            assert len(err.strip().splitlines()) == 1, err
        accepted += rc == 0
    assert accepted < 10  # only bytes no reader depends on (timestamps, alignment padding) may change


def test_torch_messages_are_kept_off_the_terminal_unless_verbose(capfd, caplog):
    """Warnings, log records and C++ writes to file descriptor 2, as torch makes them while loading."""
    import logging
    import warnings
    from horq_codegen import diagnostics

    def noisy():
        with diagnostics.quiet():
            warnings.warn("a torch warning")
            logging.getLogger("torch.export").warning("a torch log line")
            os.write(2, b"a C++ message\n")
    capfd.readouterr()
    noisy()
    assert capfd.readouterr().err == "" and "a torch log line" not in caplog.text
    diagnostics.set_verbose(True)
    try:
        noisy()
    finally:
        diagnostics.set_verbose(False)
    err = capfd.readouterr().err
    assert "a torch warning" in err and "a C++ message" in err and "a torch log line" in caplog.text


def test_unreadable_protocol_is_refused_in_one_line(tmp_path, capfd):
    """torch's weights-only unpickler cannot read framed (protocol 4) pickles: said so, in one line."""
    torch.save(nn.Sequential(nn.Linear(4, 2)), tmp_path / "p4.pt", pickle_protocol=4)
    assert "weights-only loading refuses it" in refusal(["inspect", str(tmp_path / "p4.pt"), "--input-shape", "4"], capfd)
