"""Reliability: fuzzed inputs, netlist injection through every entry point, ngspice faults.

Every case must end in a correct result or a documented exception with a clear message:
no crash from inside a kernel, no silently wrong number, no temporary file left behind.
The counts (fuzz cases, payloads, fault kinds) are printed at the end of the test run.
"""
import errno
import json
import os
import shutil
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
from memsim import netlist, spec, spice, units
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
        # that agree to the last digits (a cell of 1e9 S): double precision, not the solver.
        rounding = 1e3 * np.finfo(float).eps * g.sum() * np.max(np.abs(v))
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


# -- ngspice faults ---------------------------------------------------------------------------
def _wrapper(tmp_path, body):
    script = tmp_path / "ngspice"
    script.write_text("#!/bin/sh\n" + body.replace("NGSPICE", shutil.which("ngspice")) + "\n")
    script.chmod(0o755)
    return script


RAW_ARG = 'raw=""; prev=""; for a in "$@"; do [ "$prev" = "-r" ] && raw="$a"; prev="$a"; done'
FAULTS = {
    "binary missing": ("", "not found"),
    "process killed": ("kill -9 $$", "killed by signal 9"),
    "timeout": ("sleep 30", "timeout"),
    "non-convergence": (None, "singular|converge"),
    "truncated rawfile": (f'NGSPICE "$@"; {RAW_ARG}; head -c 300 "$raw" > "$raw.t"; mv "$raw.t" "$raw"', "truncated"),
    "corrupt rawfile": (f'NGSPICE "$@"; {RAW_ARG}; printf "garbage" > "$raw"', "truncated|Binary"),
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
    xb = memsim.Crossbar.ohmic(np.full((200, 200), 1e-5))
    with pytest.raises(memsim.ResourceLimitError, match="estimated at .* min and .* GB"):
        memsim.simulate(xb, np.full(200, 0.1))
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
