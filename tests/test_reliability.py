"""Reliability: fuzzed inputs, netlist injection through every entry point, ngspice faults.

Every case must end in a correct result or a documented exception with a clear message:
no crash from inside a kernel, no silently wrong number, no temporary file left behind.
The counts (fuzz cases, payloads, fault kinds) are printed at the end of the test run.
"""
import dataclasses
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import memsim
from memsim import units
from memsim.circuit import netlist, spec, spice
from memsim.calibrate import Calibration, CalibrationError

FUZZ = settings(max_examples=int(os.environ.get("MEMSIM_FUZZ_EXAMPLES", 150)), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=64)
SHAPES = st.tuples(st.integers(1, 6), st.integers(1, 6))
EXPECTED = (ValueError, memsim.MemsimError)

# A netlist line memsim may write: an element, a comment, or one of its own dot statements.
SAFE_LINE = (r"^(\*.*|[rvbcmx]\w* [\w ().,={}*+\-/<>?:]*|\.options [\w =.+\-]*|\.subckt \w+( \w+)* gap=1e-09|"
             r"\.ends \w+|\.model \w+ nmos \([\w =.+\-]*\)?|\+[\w =.+\-)]*|\.op|\.end|\.tran [\w .+\-]*|\.print op all|\.print tran [\w ()]*|)$")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A private temporary folder for ngspice runs (other processes may share /tmp)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _assert_safe_netlist(text):
    import re

    for line in text.splitlines():
        assert re.match(SAFE_LINE, line), f"unexpected netlist line: {line!r}"
        assert "\r" not in line and not line.lower().startswith((".control", ".include", ".lib", "shell"))
        assert not re.match(r"\s*\*\s*#|\s*\*ng_script", line, re.IGNORECASE), f"ngspice command comment: {line!r}"


# -- fuzzing the public API -----------------------------------------------------------------------
@FUZZ
@given(g=SHAPES.flatmap(lambda s: arrays(np.float64, s, elements=ANY_FLOAT)), r=ANY_FLOAT,
       v=st.lists(ANY_FLOAT, min_size=1, max_size=7))
def test_fuzz_ohmic_crossbar_netlist_and_solver(g, r, v, reliability):
    reliability["fuzz cases"] += 1
    try:
        xb = memsim.Crossbar.ohmic(g, r_row=r, r_col=r)
        text = netlist.mvm(xb, v)
    except EXPECTED as err:
        assert str(err)  # a message, not an empty exception
        return
    _assert_safe_netlist(text)
    assert np.all(np.isfinite(g)) and np.all(g >= 0) and np.isfinite(r) and r >= 0
    try:
        res = memsim.solve(xb, v)
    except EXPECTED as err:
        assert str(err)
        return
    assert np.all(np.isfinite(res.i_col))
    if np.any(g > 0) and r > 0 and np.all(np.abs(v) < 1e100):
        i_in = (np.asarray(v) - res.v_row[:, 0]) / r
        scale = max(np.abs(i_in).sum(), np.abs(res.i_col).sum(), 1e-300)
        # Kirchhoff holds, to 1e-6 or to the rounding floor of g (vr - vc) for node voltages
        # that agree to the last digits (a cell of 1e9 S) and of (v - vr) / r, the driver current
        # read through a wire of nano-ohms: double precision, not the solver.
        eps_v = np.finfo(float).eps * np.max(np.abs(v))
        rounding = 1e3 * eps_v * g.sum() + 4 * len(v) * eps_v / r
        assert abs(i_in.sum() - res.i_col.sum()) <= 1e-6 * scale + rounding


@FUZZ
@given(shape=SHAPES, g_read=ANY_FLOAT, v_gate=ANY_FLOAT, r=st.floats(0, 1e3), v=ANY_FLOAT,
       kind=st.sampled_from(["device", "1t1r"]))
def test_fuzz_rram_crossbars(shape, g_read, v_gate, r, v, kind, reliability):
    reliability["fuzz cases"] += 1
    try:
        if kind == "device":
            xb = memsim.Crossbar.device(g_read=np.full(shape, g_read), r_row=r, r_col=r)
        else:
            xb = memsim.Crossbar.one_t_one_r(g_read=np.full(shape, g_read), v_gate=v_gate, r_row=r, r_col=r)
        text = netlist.mvm(xb, np.full(shape[0], v))
        res = memsim.solve(xb, np.full(shape[0], v))
    except EXPECTED as err:
        assert str(err)
        return
    _assert_safe_netlist(text)
    assert np.all(np.isfinite(res.i_col))
    assert 5e-6 * 0.99 <= g_read <= 3e-3  # only in-range conductances were accepted


@FUZZ
@given(row=st.integers(-3, 8), col=st.integers(-3, 8), v=ANY_FLOAT,
       scheme=st.one_of(st.sampled_from(memsim.SCHEMES), st.text(max_size=8)))
def test_fuzz_read_schemes(row, col, v, scheme, reliability):
    reliability["fuzz cases"] += 1
    xb = memsim.Crossbar.device(g_read=np.full((4, 5), 2e-5))
    try:
        text = netlist.read(xb, row, col, v, scheme)
        res = memsim.solve_read(xb, row, col, v, scheme)
    except EXPECTED as err:
        assert str(err)
        return
    _assert_safe_netlist(text)
    assert 0 <= row < 4 and 0 <= col < 5 and scheme in memsim.SCHEMES and np.isfinite(v)
    assert np.all(np.isfinite(res.i_col))


@FUZZ
@given(name=st.text(max_size=20))
def test_fuzz_names(name, reliability):
    reliability["fuzz cases"] += 1
    try:
        assert units.check_name(name) == name
    except ValueError:
        return
    assert name.isascii() and name.replace("_", "a").isalnum() and not name[0].isdigit()


@FUZZ
@given(data=st.dictionaries(st.sampled_from(sorted(spec.KEYS) + ["x", ".control"]),
                            st.one_of(st.none(), st.booleans(), st.integers(-5, 40), ANY_FLOAT,
                                      st.text(max_size=12), st.lists(ANY_FLOAT, max_size=4)), max_size=6))
def test_fuzz_json_specs(data, reliability):
    reliability["fuzz cases"] += 1
    try:
        xb, v = spec.build(data)
    except EXPECTED as err:
        assert str(err)
        return
    _assert_safe_netlist(netlist.mvm(xb, v))


# -- injection through every entry point ----------------------------------------------------------
PAYLOADS = [
    "0.2\n.control\nshell touch {marker}\n.endc", ".include /etc/passwd", "shell touch {marker}",
    "1e-6\r\n.lib /etc/passwd x", "\u2028.control", "x\n.endc\n.control\nshell touch {marker}",
    "1k\n.op", "rrr; .end", "{marker}", ".param x={{shell}}", "\x00.control", "1e-6 .include x",
]


@pytest.mark.parametrize("template", PAYLOADS)
def test_injection_payloads_never_reach_ngspice(template, tmp_path, reliability):
    reliability["injection payloads"] += 1
    marker = tmp_path / "pwned"
    payload = template.format(marker=marker)
    xb = memsim.Crossbar.ohmic(np.full((2, 2), 1e-5))
    attempts = [
        lambda: memsim.simulate(xb, [payload, 0.1]),
        lambda: memsim.simulate(memsim.Crossbar.ohmic([[payload, 1e-5]]), [0.1]),
        lambda: memsim.simulate_read(xb, 0, 0, payload, "v/2"),
        lambda: memsim.simulate_read(xb, 0, 0, 0.2, payload),
        lambda: memsim.Crossbar.ohmic(np.ones((2, 2)), r_row=payload),
        lambda: memsim.Crossbar.one_t_one_r(g_read=np.full((2, 2), 1e-5), v_gate=payload),
        lambda: units.check_name(payload),
        lambda: spec.build({"kind": "device", "rows": 2, "cols": 2, "inputs": [payload, 0.1]}),
        lambda: spec.build({"kind": payload, "rows": 2, "cols": 2}),
        lambda: spec.build({"kind": "device", "rows": 2, "cols": 2, "preset": payload}),
        lambda: spec.build({"kind": "device", "rows": 2, "cols": 2, payload: 1}),
    ]
    for attempt in attempts:
        with pytest.raises(EXPECTED):
            attempt()
    # Model card: a payload line is refused.
    card = tmp_path / "card.lib"
    card.write_text(f".model n nmos (level=1 vto=0.5 kp=1e-4)\n{payload}\n")
    with pytest.raises(ValueError):
        memsim.devices.MosfetParams(card=card)
    # Calibration file: a payload as the card name or a parameter is refused.
    data = json.loads(Path(memsim.calibrate.DEFAULT_CALIBRATION).read_text())
    for field, value in (("card_file", payload), ("model_name", payload)):
        bad = dict(data, **{field: value})
        path = tmp_path / "cal.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(EXPECTED):
            cal = Calibration.load(path, card_dir=memsim.calibrate.BSIM4_CARD.parent)
            # model_name is informational; what reaches a netlist is the card's own checked name
            _assert_safe_netlist(netlist.mvm(cal.apply(memsim.Crossbar.one_t_one_r(g_read=np.full((1, 1), 1e-5))), [0.1]))
            raise CalibrationError("loaded, but its netlist was checked safe")
    # CLI: the spec file and options route.
    spec_file = tmp_path / "s.json"
    spec_file.write_text(json.dumps({"kind": "device", "rows": 2, "cols": 2, "inputs": [payload, 0.1]}))
    for argv in (["simulate", "--spec", str(spec_file)], ["simulate", "--kind", "ohmic", "--r-row", payload],
                 ["netlist", "--kind", "ohmic", "--read", payload]):
        if any("\x00" in arg for arg in argv):
            continue  # an operating system argument cannot carry a NUL byte at all
        proc = subprocess.run([sys.executable, "-m", "memsim", *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not marker.exists()


# -- ngspice line forms in model cards ----------------------------------------------------------
# Every line form ngspice treats as a command or an include (its manual: comment-commands "*#",
# "*ng_script" scripts, .control/.endc blocks, .include/.inc/.lib, .exec, shell, source,
# .param/.func expressions, .if blocks, .csparam, element lines, XSPICE file models): each is
# refused in a model card, also indented, in upper case, or hidden in a continuation line.
CARD_LINES = [
    "*# shell touch {marker}", "   *# shell touch {marker}", "\t*#shell touch {marker}", "*#echo hi",
    "*ng_script", "* ng_script", "*NG_SCRIPT_WITH_PARAMS",
    ".control", "  .control", ".CONTROL", ".endc", "shell touch {marker}", "source /etc/passwd",
    ".include /etc/passwd", ".INCLUDE /etc/passwd", ".inc /etc/passwd", ".lib /etc/passwd x", ".exec shell ls",
    ".param p={{shell}}", ".func f(x)={{x}}", ".if (1)", ".endif", ".csparam x=1", ".options interactive",
    ".model f1 filesource (file=\"/etc/passwd\")", ".model n2 nmos (level=1 vto={{0.5}})",
    ".model n2 nmos (level=1 vto='0.5')", "+ vto=0.5 $ .control", "+ vto=0.5 ; .include x",
    "+ vto=0.5\n.control", "r1 a b 1k", "v1 a 0 1", "b1 a 0 v=1", "xsub a b sub", ".end", ".op",
    "* caf\u00e9 (non-ASCII comment)", "* bell \x07",
]


@pytest.mark.parametrize("line", CARD_LINES)
def test_ngspice_command_forms_are_refused_in_model_cards(line, tmp_path, reliability):
    reliability["card line forms"] += 1
    marker = tmp_path / "pwned"
    card = tmp_path / "card.lib"
    if line.startswith("+"):  # inside the statement, before its closing parenthesis
        text = ".model n nmos (level=1 vto=0.5 kp=1e-4\n" + line.format(marker=marker) + ")\n"
    else:
        text = ".model n nmos (level=1 vto=0.5 kp=1e-4)\n" + line.format(marker=marker) + "\n"
    card.write_bytes(text.encode("utf-8"))
    with pytest.raises(ValueError, match="model card"):
        memsim.devices.MosfetParams(card=card)
    assert not marker.exists()


def test_a_plain_card_still_loads_with_its_comments(tmp_path):
    card = tmp_path / "ok.lib"
    card.write_text("* a comment # with a hash later\n  * indented comment\n\n.MODEL ok NMOS (LEVEL=1 VTO=0.45\n"
                    "+ KP=120u LAMBDA=0.02)\n.model p1 pmos (level=1 vto=-0.5)\n")
    m = memsim.devices.MosfetParams(card=card)
    assert (m.model_name, m.vto, m.lambda_) == ("ok", 0.45, 0.02)
    assert m.beta == pytest.approx(120e-6 * 1e-6 / 0.5e-6, rel=1e-12)


@pytest.mark.parametrize("name", ["n.lib\n*# shell touch x", "n\r.lib", "n .lib", "*#.lib", "caf\u00e9.lib",
                                  ".hidden.lib"])
def test_card_file_names_that_would_reach_the_netlist_are_refused(name, tmp_path, reliability):
    reliability["card line forms"] += 1
    path = tmp_path / name
    try:
        path.write_text(".model n nmos (level=1 vto=0.5 kp=1e-4)\n")
    except (OSError, ValueError):
        pytest.skip("the file system refuses this name itself")
    with pytest.raises(ValueError, match="model card file name"):
        memsim.devices.MosfetParams(card=path)


# -- values that choose their own text -----------------------------------------------------------
class _Float(float):
    def __repr__(self):
        return "0.1\n.control\nshell touch PWN\n.endc"

    __str__ = __repr__

    def __format__(self, spec):
        return repr(self)


class _Int(int):
    def __repr__(self):
        return "0\n.control\nshell touch PWN\n.endc"

    __str__ = __repr__

    def __format__(self, spec):
        return repr(self)


class _Str(str):
    def __eq__(self, other):  # passes every "in" check
        return True

    __hash__ = str.__hash__

    def __format__(self, spec):
        return "v/2\n.control\nshell touch PWN\n.endc"

    def __str__(self):
        return self.__format__("")

    __repr__ = __str__


def _subclass_attempts():
    xb = memsim.Crossbar.device(g_read=np.full((2, 2), 2e-5))
    one = memsim.Crossbar.one_t_one_r(g_read=np.full((2, 2), 2e-5))
    return {
        "read scheme": lambda: netlist.read(xb, 0, 0, 0.2, _Str("v/2")),
        "read row": lambda: netlist.read(xb, _Int(0), 0, 0.2, "v/2"),
        "read col": lambda: netlist.read(xb, 0, _Int(1), 0.2, "v/2"),
        "read voltage": lambda: netlist.read(xb, 0, 0, _Float(0.2), "v/2"),
        "program pulse": lambda: netlist.program(xb, 0, 0, _Float(1.8)),
        "program width": lambda: netlist.program(xb, 0, 0, 1.8, _Float(5e-8)),
        "program row": lambda: netlist.program(xb, _Int(1), 0, 1.8),
        "mvm inputs": lambda: netlist.mvm(xb, [_Float(0.1), _Float(0.2)]),
        "crossbar kind": lambda: netlist.mvm(memsim.Crossbar(_Str("ohmic"), 1.0, 1.0, g=np.full((2, 2), 1e-5)),
                                             [0.1, 0.1]),
        "wire resistance": lambda: netlist.mvm(memsim.Crossbar.ohmic(np.full((2, 2), 1e-5), _Float(1.0), _Float(2.0)),
                                               [0.1, 0.1]),
        "device parameter": lambda: netlist.mvm(memsim.Crossbar.device(
            g_read=np.full((2, 2), 2e-5), params=memsim.devices.RRAMParams(i0=_Float(1e-3))), [0.1, 0.1]),
        "transistor size": lambda: netlist.mvm(memsim.Crossbar.one_t_one_r(
            g_read=np.full((2, 2), 2e-5), transistor=memsim.devices.MosfetParams(w=_Float(1e-6), l=_Float(5e-7))),
            [0.1, 0.1]),
        "gate voltage": lambda: netlist.mvm(memsim.Crossbar.one_t_one_r(g_read=np.full((2, 2), 2e-5),
                                                                        v_gate=[_Float(1.8), _Float(1.5)]), [0.1, 0.1]),
        "1t1r read": lambda: netlist.read(one, _Int(1), _Int(1), _Float(0.2), _Str("grounded")),
    }


@pytest.mark.parametrize("entry", list(_subclass_attempts()))
def test_number_and_string_subclasses_never_choose_netlist_text(entry, reliability):
    reliability["subclass payloads"] += 1
    try:
        text = _subclass_attempts()[entry]()
    except EXPECTED as err:  # refused is fine ...
        assert "\n" not in str(err)
        return
    _assert_safe_netlist(text)  # ... accepted means written through the builtin value
    assert "PWN" not in text and ".control" not in text


# -- paths that are not regular files --------------------------------------------------------------
def _unreadable(kind, tmp_path, name):
    path = tmp_path / name
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")  # the name each reader expects, the content endless
    elif kind == "huge":
        with open(path, "wb") as handle:  # sparse: no disk used
            handle.truncate(3 << 30)
    elif kind == "deep" and name.endswith(".toml"):
        path.write_text('name = "x"\nmetrics = ' + "[" * 5000 + "]" * 5000 + "\n")
    elif kind == "deep":
        path.write_text('{"kind": "ohmic", "rows": 2, "cols": 2, "inputs": ' + "[" * 5000 + "]" * 5000 + "}")
    return path


READERS = {
    "spec": (lambda p: spec.load(p), "spec.json"),
    "study config": (lambda p: memsim.study.load(p), "study.json"),
    "study config (TOML)": (lambda p: memsim.study.load(p), "study.toml"),
    "model card": (lambda p: memsim.devices.MosfetParams(card=p), "card.lib"),
    "calibration": (lambda p: Calibration.load(p), "cal.json"),
    "results": (lambda p: memsim.study.read_results(p), "results.csv"),
}


@pytest.mark.parametrize("reader, kind", [(reader, kind) for reader in READERS
                                          for kind in ("folder", "fifo", "device", "huge", "deep", "missing")
                                          if not (kind == "deep" and reader in ("model card", "results"))])
def test_unreadable_paths_are_refused_in_one_line(reader, kind, tmp_path, reliability):
    reliability["unreadable inputs"] += 1
    function, name = READERS[reader]
    path = _unreadable(kind, tmp_path, name)
    with pytest.raises(EXPECTED) as info:
        function(path)
    message = str(info.value)
    assert "\n" not in message and message
    expected = {"folder": "a folder", "fifo": "FIFO", "device": "character device", "huge": "MiB",
                "deep": "too deeply" if reader.endswith("(TOML)") else "levels deep", "missing": "not found"}[kind]
    assert expected in message


def test_a_calibration_pointing_at_dev_is_refused(tmp_path, reliability):
    reliability["unreadable inputs"] += 1
    data = json.loads(Path(memsim.calibrate.DEFAULT_CALIBRATION).read_text())
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(dict(data, card_file="zero")))
    with pytest.raises(CalibrationError, match="character device, not a regular file"):
        Calibration.load(path, card_dir="/dev")


# -- writes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["folder", "fifo", "device"])
def test_writes_never_replace_anything_but_a_regular_file(kind, tmp_path, reliability):
    reliability["write targets"] += 1
    from memsim.io import write_atomic

    path = tmp_path / "target"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        try:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # a private copy of /dev/null
        except PermissionError:
            pytest.skip("creating a device node needs root")
    before = os.lstat(path)
    with pytest.raises(memsim.FileError, match="memsim only replaces regular files"):
        write_atomic(path, "x")
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert not list(tmp_path.glob(".*.tmp"))


# -- circuits at the edge of what validation accepts ------------------------------------------------
def test_cells_too_strong_for_their_wires_are_refused_and_the_edge_still_agrees(reliability):
    reliability["accuracy edges"] += 1
    v = np.full(4, 0.1)
    # beyond the limit the solver (5.6e-14 A) and ngspice (4.2e-14 A) disagreed by 30 %, both "converged"
    with pytest.raises(ValueError, match="cell conductance x wire resistance x array size"):
        memsim.Crossbar.ohmic(np.full((4, 4), 1e3), 1e12, 1e12)
    edge = memsim.Crossbar.ohmic(np.full((4, 4), 1e3), 2.5e5, 2.5e5)  # g r N = 1e9, the largest accepted
    np.testing.assert_allclose(memsim.solve(edge, v).i_col, memsim.simulate(edge, v).i_col, rtol=1e-6)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(memsim.devices.RRAMParams)])
def test_device_parameters_at_both_ends_of_their_range_agree_with_ngspice(name, reliability):
    reliability["accuracy edges"] += 1
    from memsim.devices.rram import PARAM_RANGES, RRAMParams

    default = getattr(RRAMParams(), name)
    low, high = PARAM_RANGES.get(name, (default / 10, default * 10))
    for outside in (low * 0.999, high * 1.001):
        with pytest.raises(ValueError, match=f"RRAMParams.{name} must lie in"):
            RRAMParams(**{name: outside})
    for value in (low, high):
        if name in ("gap_min", "gap_max"):
            kwargs = {"gap_min": value, "gap_max": 1e-8} if name == "gap_min" else {"gap_min": 1e-11, "gap_max": value}
            if kwargs["gap_min"] >= kwargs["gap_max"]:
                continue
        else:
            kwargs = {name: value}
        p = RRAMParams(**kwargs)
        xb = memsim.Crossbar.device(np.array([[p.gap_min, p.gap_max], [p.gap_max, p.gap_min]]), params=p)
        v = np.array([0.2, 0.15])
        ref = memsim.simulate(xb, v).i_col
        np.testing.assert_allclose(memsim.solve(xb, v).i_col, ref, rtol=1e-9, atol=1e-30)


# -- ngspice faults ---------------------------------------------------------------------------
def _wrapper(tmp_path, body):
    script = tmp_path / "ngspice"
    script.write_text("#!/bin/sh\n" + body.replace("NGSPICE", shutil.which("ngspice")) + "\n")
    script.chmod(0o755)
    return script


# Rewrites every value after the rawfile's "Binary:" line as NaN, and exits 0 (as ngspice does).
NAN_RAW = ("python3 -c \"import sys, struct; p = sys.argv[1]; d = open(p, 'rb').read(); i = d.find(b'Binary:') + 8; "
           "open(p, 'wb').write(d[:i] + struct.pack('<d', float('nan')) * ((len(d) - i) // 8))\" \"$raw\"")
RAW_ARG = 'raw=""; prev=""; for a in "$@"; do [ "$prev" = "-r" ] && raw="$a"; prev="$a"; done'
FAULTS = {
    "binary missing": ("", "not found"),
    "process killed": ("kill -9 $$", "killed by signal 9"),
    "timeout": ("sleep 30", "timeout"),
    "non-convergence": (None, "singular|converge"),
    "truncated rawfile": (f'NGSPICE "$@"; {RAW_ARG}; head -c 300 "$raw" > "$raw.t"; mv "$raw.t" "$raw"', "truncated"),
    "corrupt rawfile": (f'NGSPICE "$@"; {RAW_ARG}; printf "garbage" > "$raw"', "truncated|Binary"),
    "NaN in the rawfile": (f'NGSPICE "$@"; {RAW_ARG}; ' + NAN_RAW, "non-finite values"),
    "full disk (ngspice)": (f'{RAW_ARG}; echo "Error: can\'t write rawfile: No space left on device" >&2; exit 1',
                            "No space left"),
}


@pytest.mark.parametrize("fault", list(FAULTS) + ["full disk (netlist write)"])
def test_ngspice_faults_raise_spice_error_and_leave_nothing(fault, tmp_path, monkeypatch, reliability, private_tmp):
    reliability["fault kinds"] += 1
    xb = memsim.Crossbar.ohmic(np.full((3, 3), 1e-5))
    timeout = 600.0
    if fault == "binary missing":
        monkeypatch.setenv("MEMSIM_NGSPICE", str(tmp_path / "no-such-ngspice"))
        message = "not found"
    elif fault == "non-convergence":
        # A floating 1T1R row with every gate off and no leakage has no DC solution.
        xb = memsim.Crossbar.one_t_one_r(g_read=np.full((3, 3), 1e-5), v_gate=0.0, transistor=memsim.devices.MosfetParams(
            g_leak=0.0))
        with pytest.raises(memsim.SpiceError, match="(?i)singular|converge") as info:
            memsim.simulate_read(xb, 1, 1, 0.2, "floating")
        assert "ngspice" in str(info.value)
        assert not list(private_tmp.iterdir())
        return
    elif fault == "full disk (netlist write)":
        real_write = Path.write_text

        def full_disk(self, *args, **kwargs):
            if self.name == "circuit.cir":
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", full_disk)
        message = "free some space"
    else:
        body, message = FAULTS[fault]
        monkeypatch.setenv("MEMSIM_NGSPICE", str(_wrapper(tmp_path, body)))
        if fault == "timeout":
            timeout = 1.0
    with pytest.raises(memsim.SpiceError, match=message):
        memsim.simulate(xb, [0.1, 0.2, 0.3], timeout=timeout)
    assert not list(private_tmp.iterdir())


def test_spice_size_guard_refuses_with_an_estimate(monkeypatch, reliability):
    reliability["fault kinds"] += 1
    xb = memsim.Crossbar.ohmic(np.full((300, 300), 1e-5))
    with pytest.raises(memsim.ResourceLimitError, match="estimated at .* min and .* GB"):
        memsim.simulate(xb, np.full(300, 0.1))
    monkeypatch.setenv("MEMSIM_SPICE_MAX_CELLS", "4")
    with pytest.raises(memsim.ResourceLimitError, match="refuses SPICE runs above 4 cells"):
        memsim.simulate(memsim.Crossbar.ohmic(np.full((3, 3), 1e-5)), [0.1] * 3)
    assert memsim.simulate(memsim.Crossbar.ohmic(np.full((3, 3), 1e-5)), [0.1] * 3, force=True).i_col.shape == (3,)


def test_solver_states_its_memory_estimate_before_allocating(monkeypatch, reliability):
    reliability["fault kinds"] += 1
    xb = memsim.Crossbar.ohmic(np.full((64, 64), 1e-5))
    monkeypatch.setenv("MEMSIM_MAX_RAM_FRACTION", "1e-9")
    with pytest.raises(memsim.ResourceLimitError, match=r"allocate about .* GiB .* voltages=False"):
        memsim.solve(xb, np.full((10, 64), 0.1))
    monkeypatch.setenv("MEMSIM_MAX_RAM_FRACTION", "0.5")
    # 4000 vectors of node voltages on 1024x1024 would be ~64 GiB: refused before any allocation.
    big = memsim.Crossbar.ohmic(np.full((1024, 1024), 1e-5))
    with pytest.raises(memsim.ResourceLimitError, match="GiB"):
        memsim.solve(big, np.zeros((4000, 1024)))
    assert memsim.solve(xb, np.full((10, 64), 0.1)).i_col.shape == (10, 64)


def test_every_versioned_file_is_checked_by_one_rule():
    from memsim.io import check_format

    check_format({"format": "memsim-x", "version": 2}, "f.x", "x file", "memsim-x", 2)  # accepted
    check_format({"schema": "memsim-x", "schema_version": "2"}, "f.x", "x file", "memsim-x", 2,
                 keys=("schema", "schema_version"))  # SQLite meta stores text
    cases = {"foreign": ({"format": "other", "version": 2}, "f.x is not a memsim x file \\(format tag 'other'"),
             "not a mapping": ([1, 2], "format tag None"),
             "older": ({"format": "memsim-x", "version": 1}, "version 1; this memsim reads version 2; ask$"),
             "newer": ({"format": "memsim-x", "version": 3}, "version 3, written by a newer memsim; this memsim reads"),
             "no version": ({"format": "memsim-x"}, "version None;")}
    for header, message in cases.values():
        with pytest.raises(memsim.errors.FileError, match=message):
            check_format(header, "f.x", "x file", "memsim-x", 2, advice="ask")
