"""Array-size studies: the physics each metric reports, configs and their errors, plots.

Tolerances: the fast solver and ngspice solve the same equations, so on ohmic cells with ideal
wires both match docs/design.md's closed forms to 1e-9 (solver) and 1e-6 (ngspice, which prints
about 10 significant digits); nonlinear cells are compared with ngspice to 1e-6 relative.
"""
import subprocess
import sys

import numpy as np
import pytest

import memsim.study as study
from memsim.study import metrics
from memsim.study.results import read_results

# docs/design.md's analytic case: on/off ratio 10, ideal wires, every unselected cell at LRS.
G_LRS, G_HRS = 40e-6, 4e-6


def run_quiet(config, out, **options):
    return study.run(config, out=out, progress=False, **options)


def by(rows, metric, **axes):
    return [r for r in rows if r["metric"] == metric and all(r[k] == v for k, v in axes.items())]


# ---------------------------------------------------------------------------------------------
# sneak paths: the classic result
# ---------------------------------------------------------------------------------------------
def test_closed_form_crossovers_are_designs_numbers():
    def first_below(scheme, limit=0.1, n_max=4096):
        return next((n for n in range(2, n_max)
                     if metrics.closed_form_margin(scheme, n, G_LRS, G_HRS) < limit * (1 - metrics.TIE)), None)

    assert [first_below(s) for s in ("floating", "v/2", "v/3", "grounded")] == [18, 18, 26, None]
    # exactly at the limit is not below it: V/3 at N = 25 gives 0.9 / 9
    assert metrics.closed_form_margin("v/3", 25, G_LRS, G_HRS) == pytest.approx(0.1, abs=1e-15)


def test_linear_cells_ideal_wires_match_the_closed_form(tmp_path):
    config = {"name": "linear", "metrics": ["read_margin", "margin_crossover"],
              "grid": {"size": [2, 3, 8, 17, 18, 25, 26, 64], "r_wire": [0.0], "cell": ["ohmic"],
                       "scheme": ["floating", "v/2", "v/3", "grounded"]},
              "options": {"g_range": [G_HRS, G_LRS], "spice_max_size": 18, "crossover_max_size": 512}}
    rows = read_results(run_quiet(config, tmp_path).path)
    assert not [r for r in rows if r["error"]]
    for r in by(rows, "read_margin"):
        expected = metrics.closed_form_margin(r["scheme"], r["size"], G_LRS, G_HRS)
        assert r["margin"] == pytest.approx(expected, rel=1e-9), r
        if r["size"] <= 18:
            assert r["margin_spice"] == pytest.approx(expected, rel=1e-6), r
            assert r["spice_rel_diff"] < 1e-6
    crossover = {r["scheme"]: r["crossover_n"] for r in by(rows, "margin_crossover")}
    assert crossover == {"floating": 18, "v/2": 18, "v/3": 26, "grounded": None}
    for r in by(rows, "margin_crossover"):
        if r["crossover_n"] is not None:
            # V/2 and V/3 reach exactly 10 % at N-1, which is not below the limit
            assert r["margin_at_n"] < 0.1 <= r["margin_before_n"] * (1 + 1e-9)
            if r["crossover_n"] <= 18:
                assert r["margin_spice_at_n"] < 0.1 <= r["margin_spice_before_n"] * (1 + 1e-6)


def test_classic_result_on_rram_cells(tmp_path):
    """Selector-less RRAM (rram8: 5-40 uS, on/off 8, sinh I-V): floating and V/2 lose the
    margin first, V/3 later, grounded and 1T1R never; the fast solver agrees with ngspice."""
    config = {"name": "classic", "metrics": ["read_margin", "margin_crossover"],
              "grid": {"size": [4, 8, 16, 32], "r_wire": [0.0, 2.5], "cell": ["device", "1t1r"],
                       "scheme": ["floating", "v/2", "v/3", "grounded"]},
              "options": {"spice_max_size": 8, "crossover_max_size": 64}}
    rows = read_results(run_quiet(config, tmp_path).path)
    assert not [r for r in rows if r["error"]]
    for r_wire in (0.0, 2.5):
        margin = {(r["cell"], r["scheme"], r["size"]): r["margin"] for r in by(rows, "read_margin", r_wire_ohm=r_wire)}
        for n in (8, 16, 32):
            assert margin["device", "floating", n] < margin["device", "v/3", n] < margin["device", "grounded", n]
            assert margin["device", "v/2", n] < margin["device", "v/3", n]
            # floating and V/2 are within a few points: both sneak conductances tend to (N-1) g / 2
            assert abs(margin["device", "floating", n] - margin["device", "v/2", n]) < 0.02
        assert margin["device", "floating", 32] < 0.1 < margin["device", "floating", 8]
        for scheme in ("floating", "v/2", "v/3", "grounded"):
            # 1T1R: the unselected word lines' transistors are off, no sneak path is left
            assert margin["1t1r", scheme, 32] > 0.8
            assert margin["1t1r", scheme, 32] == pytest.approx(margin["1t1r", scheme, 4], abs=0.02)
        assert margin["device", "grounded", 32] > 0.8
    for r in by(rows, "read_margin"):
        if r["size"] <= 8:
            assert r["margin_spice"] == pytest.approx(r["margin"], abs=1e-6 if r["cell"] == "device" else 2e-3)
    crossover = {(r["cell"], r["scheme"], r["r_wire_ohm"]): r["crossover_n"] for r in by(rows, "margin_crossover")}
    # the numbers examples/studies/README.md states (fast solver, bisection on integer N;
    # ngspice agrees at N-1 and N)
    assert crossover["device", "floating", 0.0] == 19
    assert crossover["device", "v/2", 0.0] == 18
    assert crossover["device", "v/3", 0.0] == 27
    assert crossover["device", "grounded", 0.0] is None
    assert all(crossover["1t1r", s, r] is None for s in ("floating", "v/2", "v/3", "grounded") for r in (0.0, 2.5))


def test_crossover_search_matches_a_linear_scan():
    args = dict(r_wire=2.5, g_lrs=40e-6, g_hrs=5e-6)
    n, seen = metrics.margin_crossover("device", "v/3", threshold=0.1, max_size=64, **args)
    scan = next(m for m in range(2, 65) if metrics.read_margin("device", m, "v/3", **args)[0] < 0.1)
    assert n == scan and len(seen) < 15


# ---------------------------------------------------------------------------------------------
# MVM, power, write disturb, tiles
# ---------------------------------------------------------------------------------------------
def test_mvm_error_power_and_energy(tmp_path):
    config = {"name": "mvm", "metrics": ["mvm"],
              "grid": {"size": [8, 32], "r_wire": [0.0, 1.0, 5.0], "cell": ["device", "ohmic"]},
              "options": {"spice_max_size": 8, "inputs": 3, "read_time": 20e-9}}
    rows = read_results(run_quiet(config, tmp_path).path)
    err = {(r["cell"], r["size"], r["r_wire_ohm"]): r["mvm_max_error"] for r in rows}
    for cell in ("device", "ohmic"):
        assert err[cell, 8, 0.0] < 1e-12 and err[cell, 32, 0.0] < 1e-12
        assert err[cell, 8, 1.0] < err[cell, 8, 5.0] and err[cell, 8, 1.0] < err[cell, 32, 1.0]
    for r in rows:
        assert r["energy_J"] == pytest.approx(r["power_W"] * 20e-9, rel=1e-12)
        assert r["mvm_mean_error"] <= r["mvm_max_error"]
        if r["size"] == 8:
            assert r["spice_rel_diff"] < 1e-6
            assert r["mvm_spice_max_error"] <= r["mvm_max_error"] + 1e-6  # SPICE checks the first input only
        else:
            assert r["spice_rel_diff"] is None
    # ideal wires: the drivers deliver sum_i v_i^2 sum_j g_ij (ohmic cells)
    ohmic = [r for r in rows if r["cell"] == "ohmic" and r["r_wire_ohm"] == 0.0 and r["size"] == 8][0]
    levels = metrics.level_conductances("rram8")
    rng = np.random.default_rng([0, metrics._STREAM_MVM, 8, levels.size])
    g = levels[rng.integers(0, levels.size, (8, 8))]
    v = rng.uniform(0.0, 0.2, (3, 8))
    assert ohmic["power_W"] == pytest.approx(np.mean((v ** 2) @ g.sum(axis=1)), rel=1e-12)


def test_driver_power_ideal_and_resistive_wires_agree():
    import memsim
    from memsim.solver import solve

    g = np.random.default_rng(3).uniform(5e-6, 40e-6, (6, 5))
    v = np.random.default_rng(4).uniform(0, 0.2, (2, 6))
    powers = []
    for r in (0.0, 1e-6):
        xb = memsim.Crossbar.ohmic(g, r_row=r, r_col=r)
        powers.append(metrics.driver_power(xb, v, solve(xb, v, cells=True)))
    np.testing.assert_allclose(powers[0], powers[1], rtol=1e-5)


def test_write_disturb_half_select(tmp_path):
    config = {"name": "disturb", "metrics": ["write_disturb"],
              "grid": {"size": [4], "r_wire": [1.0], "cell": ["device"], "scheme": ["v/2", "v/3", "grounded"]},
              "options": {"disturb_steps": 100}}
    rows = {r["scheme"]: r for r in read_results(run_quiet(config, tmp_path).path)}
    for r in rows.values():
        assert r["disturb_selected"] > 10  # the SET pulse switches the selected HRS cell
    # half-selected cells see V/2 (V/2 scheme), at most V/3 (V/3 scheme), the full V on the
    # selected row (grounded: not a write scheme)
    assert rows["v/3"]["disturb_max"] < rows["v/2"]["disturb_max"] < 1e-2
    assert rows["grounded"]["disturb_max"] > 10


def test_tile_error_grows_with_tile_size(tmp_path):
    config = {"name": "tiles", "metrics": ["tile"],
              "grid": {"tile": [8, 32], "r_wire": [0.0, 2.5], "cell": ["device"]},
              "options": {"tile_matrix": [64, 16], "tile_inputs": 8, "spice_max_size": 8}}
    rows = {(r["tile"], r["r_wire_ohm"]): r for r in read_results(run_quiet(config, tmp_path).path)}
    assert rows[8, 0.0]["tile_max_error"] < 1e-12 and rows[32, 0.0]["argmax_agreement"] == 1.0
    assert rows[8, 2.5]["tile_max_error"] < rows[32, 2.5]["tile_max_error"]
    assert rows[8, 2.5]["spice_rel_diff"] < 1e-6 and rows[32, 2.5]["spice_rel_diff"] is None


def test_network_accuracy_is_skipped_with_a_message_when_unavailable(monkeypatch):
    monkeypatch.setattr(metrics, "network_hook", lambda: (None, "memsim.nn cannot be imported (test)"))
    config = study.load({"name": "nn", "metrics": ["tile", "network_accuracy"], "grid": {"tile": [16]}})
    points, notes = study.expand(config)
    assert {p["metric"] for p in points} == {"tile"}
    assert notes == ["network_accuracy skipped: memsim.nn cannot be imported (test)"]
    with pytest.raises(ValueError, match="no points.*network_accuracy skipped"):
        study.expand(study.load({"name": "nn", "metrics": ["network_accuracy"]}))


# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------
GOOD = {"name": "ok", "metrics": ["read_margin"], "grid": {"size": [8]}}


@pytest.mark.parametrize("change, message", [
    ({"nmae": "x"}, r"unknown key 'nmae' in the study config"),
    ({"name": "../x"}, r"name must be a plain file-name stem"),
    ({"metrics": []}, r"metrics must be a non-empty list"),
    ({"metrics": ["margin"]}, r"metrics\[0\]: unknown metric 'margin'"),
    ({"grid": {"sizes": [8]}}, r"unknown key 'sizes' in \[grid\]"),
    ({"grid": {"size": 8}}, r"grid.size must be a non-empty list"),
    ({"grid": {"size": [8, 2048]}}, r"grid.size\[1\]: array size N must be an integer in \[2, 1024\], got 2048"),
    ({"grid": {"size": [8.0]}}, r"grid.size\[0\]: array size N must be an integer"),
    ({"grid": {"size": [True]}}, r"grid.size\[0\]"),
    ({"grid": {"r_wire": [-1]}}, r"grid.r_wire\[0\]: wire resistance must be a number of ohms in \[0, 1000\]"),
    ({"grid": {"r_wire": ["1"]}}, r"grid.r_wire\[0\]"),
    ({"grid": {"scheme": ["v/4"]}}, r"grid.scheme\[0\]: bias scheme must be one of floating, v/2, v/3, grounded"),
    ({"grid": {"cell": ["0t1r"]}}, r"grid.cell\[0\]: cell kind must be one of"),
    ({"grid": {"preset": ["pcm"]}}, r"grid.preset\[0\]: device preset must be one of"),
    ({"grid": {"seed": [0, 1]}}, r"grid.seed has 2 values but none of the metrics \['read_margin'\] depends on"),
    ({"grid": {"size": [8, 8]}}, r"grid.size lists a value twice"),
    ({"options": {"v_raed": 0.2}}, r"unknown key 'v_raed' in \[options\]"),
    ({"options": {"v_read": 5}}, r"options.v_read must lie in \[0.01, 1\], got 5"),
    ({"options": {"v_read": "0.2"}}, r"options.v_read must be a finite number"),
    ({"options": {"spice_max_size": 256}}, r"options.spice_max_size must lie in \[0, 128\]"),
    ({"options": {"inputs": 2.5}}, r"options.inputs must be an integer"),
    ({"options": {"g_range": [4e-5, 4e-6]}}, r"options.g_range must be \[g_min, g_max\] with g_min < g_max"),
    ({"options": {"transistor": "bsim3"}}, r"options.transistor must be one of bsim4, level1"),
])
def test_bad_configs_name_the_key(change, message):
    config = {**GOOD, **change}
    with pytest.raises(ValueError, match=message):
        study.load(config)


def test_out_of_model_levels_and_odd_tiles_are_refused():
    with pytest.raises(ValueError, match=r"options.g_range .* is outside what the rram8 RRAM model reaches"):
        study.expand(study.load({**GOOD, "options": {"g_range": [1e-9, 40e-6]}}))
    with pytest.raises(ValueError, match=r"grid.tile: tile needs even tile sizes"):
        study.expand(study.load({"name": "t", "metrics": ["tile"], "grid": {"tile": [15]}}))


def memsim_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "memsim", *args], capture_output=True, text=True, timeout=300,
                          **kwargs)


def test_cli_reports_bad_config_files_in_one_line(tmp_path):
    cases = {"broken.toml": ("name = 'x\n", "is not valid TOML"),
             "broken.json": ('{"name": ', "is not valid JSON"),
             "wrong.toml": ('name = "x"\nmetrics = ["read_margin"]\n[grid]\nsize = [4096]\n',
                            "grid.size[0]: array size N must be an integer in [2, 1024], got 4096"),
             "config.yaml": ("name: x\n", "must end in .toml or .json")}
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        proc = memsim_cli("study", str(tmp_path / name), "--out", str(tmp_path / "out"))
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = memsim_cli("study", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "study config not found" in proc.stderr
    proc = memsim_cli("plot", str(tmp_path / "missing.csv"))
    assert proc.returncode == 2 and "results file not found" in proc.stderr


def test_resuming_with_other_options_is_refused(tmp_path):
    config = {"name": "opt", "metrics": ["read_margin"], "grid": {"size": [4]}, "options": {"spice_max_size": 0}}
    run_quiet(config, tmp_path)
    again = run_quiet({**config, "options": {"spice_max_size": 0, "spice_timeout": 30.0}}, tmp_path)
    assert again.computed == 0 and again.already_done == 1  # the timeout changes no result
    with pytest.raises(ValueError, match=r"other options \(v_read 0.2 -> 0.3\)"):
        run_quiet({**config, "options": {"spice_max_size": 0, "v_read": 0.3}}, tmp_path)


def test_import_is_light_and_the_cli_registers_both_subcommands():
    code = ("import sys, memsim.cli; p = memsim.cli.build_parser(); "
            "heavy = [m for m in ('dask', 'distributed', 'matplotlib', 'memsim.solver', 'memsim.circuit.spice', "
            "'numba') if m in sys.modules]; print(heavy); "
            "a = p.parse_args(['study', 'c.toml', '--dask', 'local', '--workers', '3', '--out', 'o']); "
            "b = p.parse_args(['plot', 'r.csv', '--out', 'o']); print(a.dask, a.workers, callable(a.func), callable(b.func))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[]", "local 3 True True"]


# ---------------------------------------------------------------------------------------------
# plots from the results file alone
# ---------------------------------------------------------------------------------------------
def test_plots_from_the_results_file_alone(tmp_path):
    from memsim.plots import plot_results

    config = {"name": "fig", "metrics": ["read_margin", "margin_crossover", "mvm", "write_disturb", "tile"],
              "grid": {"size": [4, 8], "r_wire": [0.0, 1.0], "cell": ["device", "ohmic"], "scheme": ["v/2", "v/3"],
                       "tile": [8, 16]},
              "options": {"spice_max_size": 4, "disturb_max_size": 4, "disturb_steps": 60, "crossover_max_size": 32,
                          "tile_matrix": [32, 8], "tile_inputs": 4, "inputs": 2}}
    produced = run_quiet(config, tmp_path / "run").path
    alone = tmp_path / "elsewhere" / "copied.csv"
    alone.parent.mkdir()
    alone.write_bytes(produced.read_bytes())  # no .study.json beside it
    written = plot_results(alone)
    names = sorted(p.name for p in alone.parent.iterdir())
    assert sorted(p.name for p in written) == sorted(set(names) - {"copied.csv"})
    expected = [f"copied_{kind}.{fmt}" for kind in ("margin_vs_n", "mvm_error", "tile", "write_disturb")
                for fmt in ("png", "svg")]
    assert sorted(set(names) - {"copied.csv"}) == sorted(expected)
    for name in expected:
        data = (alone.parent / name).read_bytes()
        assert data.startswith(b"\x89PNG") if name.endswith(".png") else b"<svg" in data[:2000]
        assert len(data) > 5000
    proc = memsim_cli("plot", str(alone), "--out", str(tmp_path / "cli"))  # the command does the same
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(expected)
    assert "replaced" not in proc.stdout
    again = memsim_cli("plot", str(alone), "--out", str(tmp_path / "cli"))  # a second run says what it replaces
    assert again.stdout.count("(replaced the existing file)") == len(expected), again.stdout
    # a results file with no plottable rows: nothing written, exit 1
    empty = tmp_path / "empty.csv"
    empty.write_text("metric,size,error\n")
    assert memsim_cli("plot", str(empty)).returncode == 1


def test_example_configs_validate_and_match_the_scripts():
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    examples = {p.stem: study.load(p) for p in (root / "examples" / "studies").iterdir()
                if p.suffix in (".toml", ".json")}
    assert {"quick", "sneak_paths", "ir_drop", "tile_size"} <= set(examples)
    for name in ("sneak_paths", "ir_drop", "tile_size"):
        script = runpy.run_path(str(root / "scripts" / f"study_{name}.py"))  # __name__ != "__main__": no run
        assert study.load(script["CONFIG"]) == examples[name], name


def test_network_accuracy_through_memsim_nn(tmp_path):
    hook, reason = metrics.network_hook()
    if hook is None:
        pytest.skip(reason)
    config = {"name": "net", "metrics": ["network_accuracy"],
              "grid": {"tile": [64], "r_wire": [0.0], "cell": ["ohmic"]},
              "options": {"network": "mlp-digits", "network_samples": 100}}
    (row,) = read_results(run_quiet(config, tmp_path).path)
    assert row["error"] is None, row["error"]
    # ohmic cells with ideal wires: only the programmed levels separate the tiles from the float network
    assert 0.8 < row["accuracy_float"] <= 1.0
    assert row["accuracy"] == pytest.approx(row["accuracy_float"], abs=0.03)
