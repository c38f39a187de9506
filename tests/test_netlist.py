"""Netlist text: golden examples, determinism, r = 0 handling, nothing unchecked gets in."""
import importlib.util
import re
import time
from pathlib import Path

import numpy as np
import pytest

import memsim
from memsim import units
from memsim.circuit import netlist

ROOT = Path(__file__).resolve().parent.parent


def _examples():
    spec = importlib.util.spec_from_file_location("make_examples", ROOT / "scripts" / "make_example_netlists.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.examples()


def test_committed_examples_match_regeneration():
    examples = _examples()
    assert len(examples) == 4
    for name, text in examples.items():
        committed = (ROOT / "netlists" / name).read_text()
        assert committed == text, f"netlists/{name} is stale: run python scripts/make_example_netlists.py"


def test_netlist_is_deterministic_and_names_nodes_per_design(rng):
    g = rng.uniform(1e-6, 1e-4, (3, 4))
    xb = memsim.Crossbar.ohmic(g, r_row=2.0, r_col=3.0)
    v = rng.uniform(0, 0.2, 3)
    text = netlist.mvm(xb, v)
    assert text == netlist.mvm(memsim.Crossbar.ohmic(g.copy(), 2.0, 3.0), v.copy())
    lines = text.splitlines()
    assert "rr0_0 in0 r0_0 2.0" in lines      # driver segment
    assert "rr2_3 r2_2 r2_3 2.0" in lines     # row segment
    assert "rc2_1 c1_1 c2_1 3.0" in lines     # column segment
    assert "rcb3 c2_3 s3 3.0" in lines        # bottom segment into the sense node
    assert "vs3 s3 0 0.0" in lines
    assert f"rx1_2 r1_2 c1_2 {units.fmt(1 / g[1, 2])}" in lines
    assert sum(1 for line in lines if line.startswith("rx")) == 12


def test_zero_ohm_wires_become_zero_volt_sources_and_open_cells_vanish():
    g = np.array([[1e-5, 0.0]])
    text = netlist.mvm(memsim.Crossbar.ohmic(g, r_row=0.0, r_col=0.0), [0.1])
    assert "vr0_1 r0_0 r0_1 0" in text.splitlines()
    assert not re.search(r"^r\w+ \S+ \S+ 0\.0$", text, re.M)  # no 0-ohm resistor anywhere
    assert "rx0_1" not in text


def test_1t1r_netlist_has_model_card_and_gates():
    xb = memsim.Crossbar.one_t_one_r(g_read=np.full((2, 2), 1e-5), v_gate=[1.8, 0.0])
    text = netlist.mvm(xb, [0.2, 0.2])
    assert ".model memsim_nmos nmos (level=1" in text
    assert "vg1 gl1 0 0.0" in text.splitlines()
    assert "m1_1 d1_1 gl1 c1_1 c1_1 memsim_nmos w=1e-06 l=5e-07" in text.splitlines()


def test_read_schemes_drive_unselected_lines():
    xb = memsim.Crossbar.device(g_read=np.full((3, 3), 1e-5))
    v2 = netlist.read(xb, 1, 2, 0.3, "v/2").splitlines()
    assert "vin1 in1 0 0.3" in v2 and "vin0 in0 0 0.15" in v2 and "vs0 s0 0 0.15" in v2 and "vs2 s2 0 0.0" in v2
    v3 = netlist.read(xb, 1, 2, 0.3, "v/3").splitlines()
    assert f"vin0 in0 0 {units.fmt(0.3 / 3)}" in v3 and f"vs0 s0 0 {units.fmt(2 * 0.3 / 3)}" in v3
    floating = netlist.read(xb, 1, 2, 0.3, "floating")
    assert "vin0" not in floating and "vs0" not in floating and "rcb0" not in floating
    with pytest.raises(ValueError, match="bias scheme"):
        netlist.read(xb, 0, 0, 0.2, "v/4")
    with pytest.raises(ValueError, match="selected row"):
        netlist.read(xb, 3, 0, 0.2, "v/2")


INJECTIONS = ["0.2\n.control\nshell touch /tmp/memsim_pwned\n.endc", ".include /etc/passwd", "shell rm -rf /",
              "1e-6\r\n.lib x", "nan", "inf", "\u2028.control", "x;.endc"]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_nothing_user_supplied_reaches_a_netlist_unchecked(payload, tmp_path):
    xb = memsim.Crossbar.ohmic(np.full((2, 2), 1e-5))
    with pytest.raises(ValueError):
        netlist.mvm(xb, [payload, 0.1])
    with pytest.raises(ValueError):
        memsim.Crossbar.ohmic([[payload, 1e-5]])
    with pytest.raises(ValueError):
        memsim.Crossbar.ohmic(np.full((2, 2), 1e-5), r_row=payload)
    if payload not in ("nan", "inf"):  # those two are harmless identifiers
        with pytest.raises(ValueError):
            units.check_name(payload)
    with pytest.raises(ValueError):
        netlist.read(xb, 0, 0, payload, "v/2")
    card = tmp_path / "card.lib"
    card.write_text(f".model n nmos (level=1 vto=0.5 kp=1e-4)\n{payload}\n")
    with pytest.raises(ValueError):  # a bare word is not a comment, .model or continuation line
        memsim.devices.MosfetParams(card=card)


def test_numbers_never_use_scale_suffixes():
    assert units.fmt(1e6) == "1000000.0" and "M" not in units.fmt(2e6)
    assert units.fmt(1e-12) == "1e-12"
    assert units.parse("10k") == 1e4 and units.parse("1meg") == 1e6 and units.parse("2.5u") == pytest.approx(2.5e-6, rel=1e-15)
    for bad in (float("nan"), float("inf"), "1", True, None):
        with pytest.raises(ValueError):
            units.fmt(bad)


def test_bad_crossbars_get_clear_errors():
    with pytest.raises(ValueError, match="r_row must be a finite resistance >= 0 ohm, got -1.0"):
        memsim.Crossbar.ohmic(np.ones((2, 2)), r_row=-1.0)
    with pytest.raises(ValueError, match="finite"):
        memsim.Crossbar.ohmic(np.ones((2, 2)), r_col=float("nan"))
    with pytest.raises(ValueError, match="2-D"):
        memsim.Crossbar.ohmic(np.ones(3))
    with pytest.raises(ValueError, match=">= 0"):
        memsim.Crossbar.ohmic(-np.ones((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        netlist.mvm(memsim.Crossbar.ohmic(np.ones((2, 3))), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="gap must lie"):
        memsim.Crossbar.device(np.full((2, 2), 5e-9))
    with pytest.raises(ValueError, match="exactly one"):
        memsim.Crossbar.device()


def test_one_builder_from_a_cell_kind_name(rng):
    g = rng.uniform(5e-6, 40e-6, (3, 4))
    built = {kind: memsim.Crossbar.of_kind(kind, g, r_row=1.5, r_col=2.0, v_gate=1.7)
             for kind in memsim.circuit.array.KINDS}
    direct = {"ohmic": memsim.Crossbar.ohmic(g, 1.5, 2.0),
              "device": memsim.Crossbar.device(g_read=g, r_row=1.5, r_col=2.0),
              "1t1r": memsim.Crossbar.one_t_one_r(g_read=g, v_gate=1.7, r_row=1.5, r_col=2.0)}
    v = rng.uniform(0.0, 0.2, 3)
    for kind in memsim.circuit.array.KINDS:  # same circuit, so the same netlist text
        assert built[kind].kind == kind
        assert netlist.mvm(built[kind], v) == netlist.mvm(direct[kind], v)
    with pytest.raises(ValueError, match="cell kind must be one of"):
        memsim.Crossbar.of_kind("memristor", g)
    with pytest.raises(ValueError, match="ohmic cells take their conductances"):
        memsim.Crossbar.of_kind("ohmic", gap=np.full((2, 2), 1e-9))


def test_256x256_1t1r_netlist_text_is_fast_enough_to_not_matter():
    # Not a timing assertion: the size check guards the structure; the time is printed for the note.
    xb = memsim.Crossbar.one_t_one_r(g_read=np.full((256, 256), 1e-5))
    start = time.perf_counter()
    text = netlist.mvm(xb, np.full(256, 0.2))
    elapsed = time.perf_counter() - start
    assert text.count("\nm") == 256 * 256
    print(f"256x256 1T1R netlist: {elapsed:.2f} s, {len(text) / 1e6:.1f} MB")
