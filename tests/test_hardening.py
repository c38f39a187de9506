"""Hardening: every number, array and stored file a user gives memsim passes one check at the edge.

Classes of payload, each tested with several payloads: signed zeros and out-of-range or
non-number values (one numeric check, ``memsim.units.real`` and its array counterpart), 2D and
3D arrays under the same guards, files whose arrays or structure are corrupt, work that would
not fit in memory or time, and stored study results that were edited or broken.  Every refusal
is one line naming what was wrong; the counts per class are printed at the end of the run
(``reliability: hardening ...``).
"""
import json

import numpy as np
import pytest

import memsim
from memsim import cli, units
from memsim.circuit import netlist, spec

EXPECTED = (ValueError, memsim.MemsimError)


def _one_line_refusal(call, match):
    with pytest.raises(EXPECTED, match=match) as info:
        call()
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    return info.value


def _cli_refusal(argv, capsys, match):
    """A CLI call that must end with exit status 2 and one line naming what was wrong."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert __import__("re").search(match, err), err
    return err


# -- 1. one numeric check: signs, ranges, types ---------------------------------------------------
SIGNED_ZEROS = [-0.0, np.float64(-0.0), np.float32(-0.0), -0]


@pytest.mark.parametrize("zero", SIGNED_ZEROS)
def test_a_negative_zero_wire_is_the_ideal_wire_in_both_engines(zero, reliability):
    reliability["hardening: signed zeros"] += 1
    g = np.array([[1e-3, 2e-3], [3e-3, 4e-3]])
    v = np.array([0.2, 0.1])
    xb = memsim.Crossbar.ohmic(g, r_row=zero, r_col=zero)
    assert xb.r_row == 0.0 and str(xb.r_row) == "0.0"
    text = netlist.mvm(xb, v)
    assert text == netlist.mvm(memsim.Crossbar.ohmic(g, r_row=0.0, r_col=0.0), v)
    assert "-0.0" not in text and "vr0_1 r0_0 r0_1 0" in text
    # Ideal wires: the column currents are v @ g exactly (closed form).
    np.testing.assert_allclose(memsim.solve(xb, v).i_col, v @ g, rtol=1e-12)


def test_negative_zero_wires_agree_with_ngspice_on_the_closed_form(reliability):
    reliability["hardening: signed zeros"] += 1
    g = np.array([[1e-3, 2e-3], [3e-3, 4e-3]])
    v = np.array([0.2, 0.1])
    result = memsim.simulate(memsim.Crossbar.ohmic(g, r_row=-0.0, r_col=-0.0), v)
    np.testing.assert_allclose(result.i_col, v @ g, rtol=1e-9)


@pytest.mark.parametrize("where", ["cli", "spec"])
def test_negative_zero_through_the_cli_and_a_spec_writes_an_ideal_wire(where, tmp_path, capsys, reliability):
    reliability["hardening: signed zeros"] += 1
    if where == "cli":
        argv = ["netlist", "--kind", "ohmic", "--rows", "2", "--cols", "2", "--r-row", "-0.0", "--r-col", "-0.0"]
    else:
        path = tmp_path / "spec.json"
        path.write_text('{"kind": "ohmic", "rows": 2, "cols": 2, "r_row": -0.0, "r_col": -0.0}')
        argv = ["netlist", "--spec", str(path)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "-0.0" not in text and "vr0_1 r0_0 r0_1 0" in text and "vcb0 c1_0 s0 0" in text


@pytest.mark.parametrize("zero", [-0.0, [[-0.0, 1e-3]], np.array([[-0.0, 1e-3]])])
def test_negative_zero_in_arrays_becomes_zero(zero, reliability):
    reliability["hardening: signed zeros"] += 1
    g = np.broadcast_to(np.asarray(zero, dtype=float), (1, 2))
    xb = memsim.Crossbar.ohmic(g if np.ndim(zero) == 0 else zero)
    assert not np.any(np.signbit(xb.g))


HUGE_OR_ODD_NUMBERS = [10 ** 400, -(10 ** 400), 10 ** 5000, True, False, np.bool_(True), "1.0", None,
                       float("nan"), float("inf"), complex(1, 0), [1.0]]


@pytest.mark.parametrize("value", HUGE_OR_ODD_NUMBERS, ids=lambda value: units.shown(value)[:20])
def test_the_numeric_check_refuses_non_numbers_in_one_line(value, reliability):
    reliability["hardening: numbers"] += 1
    err = _one_line_refusal(lambda: units.real(value, "r_row"), "r_row must be")
    assert "digits" in str(err) or not isinstance(value, int) or isinstance(value, bool)


@pytest.mark.parametrize("key", ["r_row", "r_col", "v_read", "v_gate", "rows", "cols", "seed"])
@pytest.mark.parametrize("value", [10 ** 400, True, "1"], ids=["10**400", "true", "string"])
def test_spec_numbers_are_refused_in_one_line_naming_the_key(key, value, reliability):
    reliability["hardening: numbers"] += 1
    text = json.dumps({"kind": "1t1r", "rows": 2, "cols": 2, key: value})  # JSON keeps 10**400 exact
    _one_line_refusal(lambda: spec.build(json.loads(text)), f"spec '{key}'")


@pytest.mark.parametrize("cells", [
    np.ones((2, 2), dtype=bool), [[True, False], [True, True]], [[True, 1e-3], [1e-3, 1e-3]],
    [[10 ** 400, 1e-3]], [[1e-3, -(10 ** 309)]]], ids=["bool array", "bool lists", "mixed", "huge int", "huge neg"])
def test_arrays_of_booleans_or_huge_integers_are_refused(cells, reliability):
    reliability["hardening: numbers"] += 1
    _one_line_refusal(lambda: memsim.Crossbar.ohmic(cells), r"g \(conductance, S\) must be")
    _one_line_refusal(lambda: memsim.Crossbar.device(g_read=cells), r"g_read \(S\) must be")
    _one_line_refusal(lambda: spec.build({"kind": "ohmic", "g": np.asarray(cells, dtype=object).tolist()}),
                      r"spec 'g'")


@pytest.mark.parametrize("argv", [["--r-row", "nan"], ["--r-row", "-1"], ["--r-col", "inf"], ["--v-read", "1e400"],
                                  ["--rows", "0"]])
def test_cli_numbers_are_refused_in_one_line(argv, capsys, reliability):
    reliability["hardening: numbers"] += 1
    _cli_refusal(["netlist", "--kind", "ohmic", "--rows", "2", "--cols", "2", *argv], capsys, "error: ")
