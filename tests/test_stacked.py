"""3D arrays (memsim.circuit.stacked): closed forms, the 2D solver, ngspice parity, bias schemes, preset.

Closed forms are derived by hand in the comments (node equations of symmetric cases), never
computed by the code under test.  ngspice runs are kept to a few small circuits (the largest:
8 layers of 16 x 16, 2048 cells).
"""
import shutil

import numpy as np
import pytest

import memsim
from memsim.circuit import netlist3d
from memsim.circuit.stacked import (BULK_G_RANGE, BULK_RRAM64, StackBias, StackedCrossbar, VerticalArray, ideal_mvm,
                                    mvm_bias, read_bias)
from memsim.solver.stacked import solve, solve_mvm, solve_read

HAS_NGSPICE = shutil.which("ngspice") is not None
needs_ngspice = pytest.mark.skipif(not HAS_NGSPICE, reason="ngspice is not installed")
RTOL_SPICE = {"ohmic": 1e-6, "device": 1e-5, "1t1r": 1e-5}

V = 0.2
G_S, G_U = 3e-5, 1e-5


def rel_err(got: dict, want: dict) -> float:
    a = np.concatenate([np.ravel(got[k]) for k in sorted(want)])
    b = np.concatenate([np.ravel(want[k]) for k in sorted(want)])
    return float(np.abs(a - b).max() / np.abs(b).max())


def two_by_two(kind="stack", **wires):
    g = np.full((2, 2, 2), G_U)
    g[0, 0, 0] = G_S
    if kind == "stack":
        return StackedCrossbar.ohmic(g, **{"r_row": 0.0, "r_col": 0.0, "r_via": 0.0, **wires})
    return VerticalArray.ohmic(g, **{"r_plane": 0.0, "r_pillar": 0.0, **wires})


# Two cell layers of 2 x 2, ideal wires, cell (0, 0, 0) = g_s read at V, every other cell g_u.
# Stack: word lines W0_0 (V), W0_1 (a), bit lines B1_0 (0 V, sensed), B1_1 (b), top word lines
# W2_0 (c), W2_1 (d).  Floating: a, c, d each join B1_0 and b through g_u, so a = c = d = b/2;
# b joins W0_0 (V) and a, c, d: (V - b) + 3 (b/2 - b) = 0, b = 0.4 V, a = 0.2 V; the sensed
# current is V g_s + g_u (a + c + d) = V (g_s + 0.6 g_u).  V/2: the three other cells on B1_0
# sit at V/2, I = V (g_s + 1.5 g_u); V/3: word lines at V/3, I = V (g_s + g_u); grounded: V g_s.
# Vertical (2 planes, 2 x 2 pillars): plane 1 (p) and the three unselected pillars (q each, by
# symmetry): q = (V + p)/2, and p: 3 (q - p) = p, so p = 0.6 V and I = V g_s + g_u p, the same
# V (g_s + 0.6 g_u); V/2 and V/3 add the one half-selected cell on the pillar: V/2 and V/3 g_u.
CLOSED_STACK = {"floating": G_S + 0.6 * G_U, "v/2": G_S + 1.5 * G_U, "v/3": G_S + G_U, "grounded": G_S}
CLOSED_VERTICAL = {"floating": G_S + 0.6 * G_U, "v/2": G_S + 0.5 * G_U, "v/3": G_S + G_U / 3, "grounded": G_S}


@pytest.mark.parametrize("scheme", list(CLOSED_STACK))
def test_two_layers_closed_form_solver(scheme):
    for array, closed in ((two_by_two("stack"), CLOSED_STACK), (two_by_two("vertical"), CLOSED_VERTICAL)):
        bias = read_bias(array, (0, 0, 0), V, scheme)
        got = solve(array, bias).read_current(array, bias)
        assert got == pytest.approx(V * closed[scheme], rel=1e-12, abs=0)


def closed_via_stack(g, rv, v):
    """Two layers of 2 x 2, every cell g, ideal lines, via stacks of rv per line layer; MVM on layer 0
    with both word lines at v and the top word lines held at 0 V.  By symmetry each line layer is
    one voltage: x (word lines, end r1 = rv), y (bit lines, r2 = 2 rv), z (top, r3 = 3 rv).
    A word line's end and its two cells are in series: k1 (v - y) with k1 = 2g / (1 + 2g r1);
    likewise a top line passes k3 y, k3 = 2g / (1 + 2g r3); the bit line: k1 (v - y) = y / r2 + k3 y."""
    k1 = 2 * g / (1 + 2 * g * rv)
    k3 = 2 * g / (1 + 2 * g * 3 * rv)
    y = k1 * v / (k1 + 1 / (2 * rv) + k3)
    return y / (2 * rv)


def closed_pillar(g0, g1, rp, rq, v0, v1):
    """One pillar through two planes (1 x 1): plane contacts rp, pillar segments rq.  Branch 0:
    v0 -rp- g0 - Q0; branch 1: v1 -rp- g1 - Q1 -rq- Q0; Q0 -rq- foot (0 V).  Q0 balances the two
    series branches a0, a1 against 1/rq; the pillar current is q / rq."""
    a0 = 1 / (rp + 1 / g0)
    a1 = 1 / (rp + 1 / g1 + rq)
    q = (a0 * v0 + a1 * v1) / (a0 + a1 + 1 / rq)
    return q / rq


def wired_cases():
    g = np.full((2, 2, 2), 2e-3)
    stack = StackedCrossbar.ohmic(g, r_row=0.0, r_col=0.0, r_via=7.0)
    v = np.array([0.25, 0.25])
    stack_bias = mvm_bias(stack, v, layer=0, others="grounded")
    vert = VerticalArray.ohmic(np.array([[[3e-3]], [[1e-3]]]), r_plane=5.0, r_pillar=11.0)
    vert_bias = mvm_bias(vert, [0.3, -0.1])
    return [(stack, stack_bias, np.full(2, closed_via_stack(2e-3, 7.0, 0.25))),
            (vert, vert_bias, np.array([[closed_pillar(3e-3, 1e-3, 5.0, 11.0, 0.3, -0.1)]]))]


def test_closed_forms_with_vias_and_pillar_segments():
    for array, bias, want in wired_cases():
        got = solve(array, bias).sensed(array, bias)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@needs_ngspice
def test_two_layers_closed_form_ngspice():
    for array, closed in ((two_by_two("stack"), CLOSED_STACK), (two_by_two("vertical"), CLOSED_VERTICAL)):
        for scheme in ("floating", "v/3"):
            bias = read_bias(array, (0, 0, 0), V, scheme)
            got = netlist3d.simulate(array, bias).read_current(array, bias)
            assert got == pytest.approx(V * closed[scheme], rel=1e-9, abs=0)
    for array, bias, want in wired_cases():
        np.testing.assert_allclose(netlist3d.simulate(array, bias).sensed(array, bias), want, rtol=1e-9, atol=0)


@pytest.mark.parametrize("kind", ["ohmic", "device"])
@pytest.mark.parametrize("scheme", ["floating", "v/2", "v/3", "grounded"])
def test_one_layer_stack_is_the_2d_crossbar(kind, scheme):
    """One cell layer with no vias is memsim's 2D crossbar: the 2D solver is the reference."""
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-5, 1e-4, (1, 6, 5))
    if kind == "ohmic":
        stack, flat = StackedCrossbar.ohmic(g, 2.0, 1.5), memsim.Crossbar.ohmic(g[0], 2.0, 1.5)
    else:
        stack, flat = StackedCrossbar.device(g_read=g, r_row=2.0, r_col=1.5), memsim.Crossbar.device(
            g_read=g[0], r_row=2.0, r_col=1.5)
    got = solve_read(stack, (0, 2, 3), 0.3, scheme)
    want = memsim.solve_read(flat, 2, 3, 0.3, scheme, cells=True)
    np.testing.assert_allclose(got.i_term["line1"], want.i_col, rtol=1e-9, atol=1e-18)
    np.testing.assert_allclose(got.i_cell[0], want.i_cell, rtol=1e-8, atol=1e-15)


def random_arrays(rng, layers, n):
    g = rng.uniform(1e-5, 1e-4, (layers, n, n))
    return {"stack-ohmic": StackedCrossbar.ohmic(g, r_row=2.0, r_col=1.2, r_via=4.0),
            "stack-device": StackedCrossbar.device(g_read=g, r_row=2.0, r_col=1.2, r_via=4.0),
            "vertical-ohmic": VerticalArray.ohmic(g, r_plane=3.0, r_pillar=2.0),
            "vertical-device": VerticalArray.device(g_read=g, r_plane=3.0, r_pillar=2.0),
            "vertical-1t1r": VerticalArray.one_t_one_r(g_read=g, r_plane=3.0, r_pillar=2.0,
                                                       v_gate=rng.uniform(1.0, 1.8, (n, n)))}


@pytest.mark.parametrize("name", ["stack-ohmic", "stack-device", "vertical-ohmic", "vertical-device", "vertical-1t1r"])
def test_kirchhoff_and_cells(name):
    """Every terminal current sums to zero; the sensed current equals the cells on its line."""
    rng = np.random.default_rng(7)
    array = random_arrays(rng, 3, 6)[name]
    for scheme in ("floating", "v/3"):
        bias = read_bias(array, (1, 2, 4), 0.3, scheme)
        res = solve(array, bias)
        total = sum(float(x.sum()) for x in res.i_term.values())
        scale = max(float(np.abs(x).max()) for x in res.i_term.values())
        assert abs(total) < 1e-10 * scale
        if name.startswith("stack"):
            # bit line 4 of line layer 1 collects the cells of layers 0 and 1 at column 4
            want = res.i_cell[0, :, 4].sum() + res.i_cell[1, :, 4].sum()
        else:
            want = res.i_cell[:, 2, 4].sum()
        assert res.read_current(array, bias) == pytest.approx(want, rel=1e-9)


@needs_ngspice
@pytest.mark.parametrize("name,layers,n,what", [
    ("stack-ohmic", 8, 16, "v/2"), ("vertical-ohmic", 8, 16, "mvm"), ("stack-device", 8, 16, "mvm"),
    ("vertical-device", 8, 16, "floating"), ("vertical-1t1r", 8, 16, "v/3"), ("stack-ohmic", 3, 5, "floating")])
def test_ngspice_parity(name, layers, n, what):
    rng = np.random.default_rng(layers * 100 + n)
    array = random_arrays(rng, layers, n)[name]
    if what == "mvm" and name.startswith("stack"):
        bias = mvm_bias(array, rng.uniform(-0.3, 0.3, n), layer=layers // 2, others="floating")
    elif what == "mvm":
        bias = mvm_bias(array, rng.uniform(-0.3, 0.3, layers))
    else:
        bias = read_bias(array, (layers - 1, n // 2, 1), 0.3, what)
    got, want = solve(array, bias), netlist3d.simulate(array, bias)
    assert rel_err(got.i_term, want.i_term) < RTOL_SPICE[array.kind]
    assert np.abs(got.v_node - want.v_node).max() < RTOL_SPICE[array.kind] * 0.3


def test_bias_schemes_across_layers():
    """V/2 and V/3 bound every unselected cell's voltage to V/2 and V/3 (ideal wires), in every layer."""
    rng = np.random.default_rng(11)
    g = rng.uniform(1e-5, 1e-4, (4, 5, 5))
    for array in (StackedCrossbar.ohmic(g, 0.0, 0.0), VerticalArray.ohmic(g, 0.0, 0.0)):
        for scheme, bound in (("v/2", 0.5), ("v/3", 1 / 3)):
            res = solve_read(array, (2, 1, 3), 0.3, scheme)
            v_cell = np.abs(res.v_cell.copy())
            assert v_cell[2, 1, 3] == pytest.approx(0.3, rel=1e-12)
            v_cell[2, 1, 3] = 0
            assert v_cell.max() == pytest.approx(bound * 0.3, rel=1e-12)
        # grounded: only the selected cell's own word line / plane and bit line / pillar carry voltage
        res = solve_read(array, (2, 1, 3), 0.3, "grounded")
        assert res.read_current(array, bias := read_bias(array, (2, 1, 3), 0.3, "grounded")) == \
            pytest.approx(0.3 * g[2, 1, 3], rel=1e-12)


def test_vertical_half_selected_cells_on_the_pillar():
    """V/2 on a vertical array: the L - 1 half-selected cells on the selected pillar are the leak
    (Choi, Sun and Shin, IEEE TED 2019), I = V g_s + (L - 1) g_u V / 2 with ideal wires."""
    for layers in (2, 5, 8):
        g = np.full((layers, 4, 4), 1e-6)
        g[0, 1, 1] = 1e-5
        array = VerticalArray.ohmic(g, 0.0, 0.0)
        bias = read_bias(array, (0, 1, 1), V, "v/2")
        want = V * 1e-5 + (layers - 1) * 1e-6 * V / 2
        assert solve(array, bias).read_current(array, bias) == pytest.approx(want, rel=1e-12)


def test_mvm_one_layer_with_others_floating_or_grounded():
    rng = np.random.default_rng(5)
    g = rng.uniform(1e-5, 1e-4, (4, 8, 6))
    v = rng.uniform(0, 0.2, 8)
    ideal = StackedCrossbar.ohmic(g, 0.0, 0.0)
    np.testing.assert_allclose(ideal_mvm(ideal, v, 2), v @ g[2], rtol=1e-15)
    # Ideal wires: every sensed bit line sits at 0 V, so neither floating nor grounded other
    # layers reach the output; the read layer's bit lines see exactly v @ G[layer].
    for others in ("floating", "grounded"):
        bias = mvm_bias(ideal, v, 2, others)
        np.testing.assert_allclose(solve(ideal, bias).sensed(ideal, bias), v @ g[2], rtol=1e-12)
    # With wires, grounded other layers load the shared word lines through cell layer 1 (word
    # line layer 2 is shared by cell layers 1 and 2): more IR drop, a larger MVM error.
    wired = StackedCrossbar.ohmic(g, 20.0, 20.0, 10.0)
    errors = {}
    for others in ("floating", "grounded"):
        bias = mvm_bias(wired, v, 2, others)
        res = solve(wired, bias)
        errors[others] = np.abs(res.sensed(wired, bias) - v @ g[2]).max()
        if others == "grounded":  # the driven word lines feed both cell layers
            drive = -res.i_term["line2"].sum()
            assert drive == pytest.approx(res.i_cell[1].sum() + res.i_cell[2].sum(), rel=1e-9)
    assert errors["grounded"] > 1.2 * errors["floating"] > 0


def test_one_t_one_r_pillar_select():
    """1T1R read: only the selected pillar's transistor is on; with a 0 V gate elsewhere the
    unselected pillars carry only leakage, far less than through a floating pillar of a 0T1R array."""
    rng = np.random.default_rng(2)
    g = rng.uniform(1e-5, 1e-4, (3, 4, 4))
    one_t = VerticalArray.one_t_one_r(g_read=g, r_plane=1.0, r_pillar=1.0)
    bias = read_bias(one_t, (1, 2, 2), 0.3, "grounded")
    assert bias.v_gate[2, 2] == 1.8 and np.count_nonzero(bias.v_gate) == 1
    res = solve(one_t, bias)
    others = np.abs(res.i_term["pillar"]).copy()
    others[2, 2] = 0
    assert others.max() < 1e-9 * abs(res.i_term["pillar"][2, 2]) + 1e-12


def test_bulk_preset():
    levels = np.asarray(BULK_RRAM64.levels)
    assert levels.size == 64 and levels[0] == BULK_G_RANGE[0] == 1e-7 and levels[-1] == BULK_G_RANGE[1] == 1e-6
    assert 1 / levels[-1] == pytest.approx(1e6) and 1 / levels[0] == pytest.approx(1e7)
    gaps = BULK_RRAM64.program(levels)
    array = StackedCrossbar.device(np.broadcast_to(gaps[:8], (8, 8, 8)), params=BULK_RRAM64.params)
    np.testing.assert_allclose(array.conductance(0.2)[3, 0], levels[:8], rtol=1e-10)


def test_netlist_is_pure_and_names_only_memsim_text():
    array = random_arrays(np.random.default_rng(1), 2, 3)["vertical-1t1r"]
    bias = read_bias(array, (1, 0, 2), 0.3, "v/2")
    text = netlist3d.bias_op(array, bias)
    assert text == netlist3d.bias_op(array, bias)
    assert "rram_dc" in text and "m0_2 f0_2 gl0_2 tq0_2 tq0_2" in text
    odd = StackBias(dict(bias.v), scheme="x\n.control", selected=bias.selected, v_gate=bias.v_gate)
    assert ".control" not in netlist3d.bias_op(array, odd)


@pytest.mark.parametrize("build,message", [
    (lambda: StackedCrossbar.ohmic(np.ones((2, 2))), "3-D"),
    (lambda: StackedCrossbar.ohmic(np.ones((1, 2, 2)) * 1e-5, r_via=-1.0), "r_via"),
    (lambda: VerticalArray.ohmic(np.full((2, 2, 2), -1e-5)), ">= 0"),
    (lambda: VerticalArray.one_t_one_r(g_read=np.full((2, 2, 2), 1e-5), v_gate=np.ones(3)), "v_gate"),
    (lambda: StackedCrossbar("1t1r", 1.0, 1.0, 0.0, g=np.ones((1, 2, 2))), "stacked cell kind"),
    (lambda: read_bias(two_by_two(), (2, 0, 0), V, "v/2"), "layer"),
    (lambda: read_bias(two_by_two(), (0, 0), V, "v/2"), "(layer, row, col)"),
    (lambda: read_bias(two_by_two(), (0, 0, 0), V, "v/4"), "bias scheme"),
    (lambda: mvm_bias(two_by_two(), np.ones(3), 0), "shape (2,)"),
    (lambda: mvm_bias(two_by_two(), np.ones(2), 0, others="held"), "others"),
    (lambda: mvm_bias(two_by_two("vertical"), np.ones(2), 0), "no layer"),
    (lambda: solve(two_by_two(), StackBias({"line0": [0.1, 0.1]})), "groups"),
    (lambda: solve(two_by_two(), read_bias(two_by_two(), (0, 0, 0), V), method="lu"), "method"),
])
def test_bad_input(build, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


@pytest.mark.parametrize("name", ["stack-ohmic", "stack-device", "vertical-ohmic", "vertical-1t1r"])
def test_two_level_cg_matches_the_direct_solve(name):
    """The conjugate gradients used above 20 000 unknowns agree with the sparse LU."""
    rng = np.random.default_rng(9)
    array = random_arrays(rng, 4, 12)[name]
    for scheme in ("floating", "v/2"):
        bias = read_bias(array, (2, 3, 11), 0.3, scheme)
        direct, cg = solve(array, bias, method="splu"), solve(array, bias, method="pcg")
        assert cg.info["method"] == "pcg" and cg.info["cg_iterations"] > 0
        assert rel_err(cg.i_term, direct.i_term) < 1e-9
        assert np.abs(cg.v_node - direct.v_node).max() < 1e-11


@needs_ngspice
def test_two_level_cg_against_ngspice():
    rng = np.random.default_rng(4)
    array = random_arrays(rng, 6, 12)["stack-ohmic"]
    bias = mvm_bias(array, rng.uniform(0, 0.3, 12), layer=3, others="grounded")
    assert rel_err(solve(array, bias, method="pcg").i_term, netlist3d.simulate(array, bias).i_term) < 1e-6


def test_write_exposure_per_layer():
    """Writing at 2 V with V/2: half-selected cells in the selected cell's layer and in the layers
    sharing its lines see 1 V; with V/3 every unselected cell sees 2/3 V at most (ideal wires)."""
    from memsim.solver.stacked import write_exposure
    g = np.full((4, 4, 4), 1e-6)
    stack = StackedCrossbar.ohmic(g, 0.0, 0.0)
    np.testing.assert_allclose(write_exposure(stack, (1, 2, 2), 2.0, "v/2"), [1.0, 1.0, 1.0, 0.0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(write_exposure(stack, (1, 2, 2), 2.0, "v/3"), np.full(4, 2 / 3), rtol=1e-12)
    vertical = VerticalArray.ohmic(g, 0.0, 0.0)
    np.testing.assert_allclose(write_exposure(vertical, (3, 0, 0), 2.0, "v/2"), np.full(4, 1.0), rtol=1e-12)


def test_memory_guard(monkeypatch):
    from memsim.errors import ResourceLimitError
    monkeypatch.setenv("MEMSIM_MAX_RAM_FRACTION", "1e-9")
    with pytest.raises(ResourceLimitError, match="MEMSIM_MAX_RAM_FRACTION"):
        solve_read(two_by_two(), (0, 0, 0), V, "v/2")


def test_golden_vertical_netlist():
    """A 2-plane, one-pillar read (V/3) written out: terminals, 5-ohm plane contacts, a 0-ohm
    pillar (0 V sources) and the two cells, checked by hand."""
    array = VerticalArray.ohmic(np.array([[[1e-5]], [[2e-5]]]), r_plane=5.0, r_pillar=0.0)
    text = netlist3d.bias_op(array, read_bias(array, (1, 0, 0), 0.3, "v/3"))
    body = text[text.index("* held terminals"):]
    assert text.startswith("* memsim netlist: ohmic vertical RRAM 2x1x1 v/3 at (1,0,0)\n")
    assert body == """* held terminals
vtp0 tp0 0 0.09999999999999999
vtp1 tp1 0 0.3
vtq0_0 tq0_0 0 0.0
* wires, vias, planes and pillar segments
vqs1_0_0 q0_0_0 q1_0_0 0
rpc0_0 tp0 p0_0_0 5.0
rpc1_0 tp1 p1_0_0 5.0
vqf0_0 q0_0_0 tq0_0 0
* cells (top electrode first)
rx0_0_0 p0_0_0 q0_0_0 99999.99999999999
rx1_0_0 p1_0_0 q1_0_0 49999.99999999999
.op
.print op all
.end
"""
