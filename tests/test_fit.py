"""Device fitting: the forward model against ngspice and the numpy model, recovery of drawn
parameters from ngspice data (tests/data/fit, made by scripts/fit_data.py), identifiability,
spreads, the device card, the CLI, and bad data."""
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from memsim.cli import main
from memsim.devices.rram import RRAMParams, gap_rate
from memsim.fit import (DeviceCard, FitWarning, UnitWarning, fit, load_card, make_card, measure_spread, read_iv,
                        read_pulses, simulate_sweep, simulate_train)
from memsim.fit import _kernels, generate, model
from memsim.fit.data import PulseTrain, Sweep

DATA = Path(__file__).parent / "data" / "fit"
TRUTH = json.loads((DATA / "truth.json").read_text())
TRUE_PARAMS = RRAMParams(**TRUTH["params"])
#: Tolerances of the recovery (named per quantity).
PARAM_TOL = 0.05  # fitted parameters the fit calls identifiable
IV_TOL = 0.02  # rms relative error of the fitted I-V, fitted and held-out sweeps
PULSE_TOL = 0.05  # rms relative error of the fitted conductance trajectory
SPREAD_TOL = 0.20  # measured spreads against the spreads the draws realise


@pytest.fixture(scope="module")
def joint():
    iv, pulses = read_iv(DATA / "iv.csv"), read_pulses(DATA / "pulses.csv")
    return iv, pulses, fit(iv=iv, pulses=pulses)


def test_kernel_rate_and_compliance_match_the_numpy_model():
    rng = np.random.default_rng(3)
    p = TRUE_PARAMS
    vector = p.as_array()
    for v, gap in zip(rng.uniform(-1.5, 1.5, 200), rng.uniform(p.gap_min, p.gap_max, 200)):
        assert _kernels.bounded_rate(v, gap, vector) == pytest.approx(float(gap_rate(v, gap, p)), rel=1e-9, abs=1e-30)
        u = _kernels.device_voltage(v, gap, 50e-6, vector)
        assert u == pytest.approx(float(model.device_voltage(v, gap, 50e-6, p)), rel=1e-12)
        # At compliance the device passes exactly the compliance.
        if abs(u) < abs(v):
            assert abs(float(model.current(u, gap, p))) == pytest.approx(50e-6, rel=1e-9)


def test_forward_model_matches_a_fresh_ngspice_sweep_and_train():
    p = dataclasses.replace(TRUE_PARAMS, gamma0=15.5)  # not the committed device
    t, v = generate.triangle(1.1, 1.3, 5e-3, 120)
    compliance = np.where(v > 0, 80e-6, np.inf)
    i_spice, _ = generate.run_sweep(p, t, v, compliance, p.gap_max)
    fitted, _ = simulate_sweep(Sweep("x", 0, t, v, i_spice, compliance), p, gap0=p.gap_max)
    keep = np.abs(i_spice) > 1e-7
    assert np.max(np.abs(fitted[keep] / i_spice[keep] - 1)) < 5e-3
    assert np.max(np.abs(i_spice[compliance < 1])) == pytest.approx(80e-6, rel=1e-6)  # the SMU limits
    amplitude = np.r_[0.0, np.full(10, 1.25), np.full(10, -1.3)]
    width = np.r_[0.0, np.full(20, 50e-9)]
    g_spice, _ = generate.run_train(p, amplitude, width, 0.2, 1.5e-9)
    g_model, _ = simulate_train(PulseTrain("x", 0, amplitude, width, g_spice, 0.2), p, gap0=1.5e-9)
    assert g_spice.max() > 1.2 * g_spice[0]  # the train switches
    assert np.max(np.abs(g_model / g_spice - 1)) < 5e-3


def test_joint_fit_recovers_the_drawn_device(joint):
    iv, pulses, result = joint
    assert set(result.fitted) == set(TRUTH["free"]) and not result.held
    for name in result.fitted:
        assert getattr(result.params, name) == pytest.approx(getattr(TRUE_PARAMS, name), rel=PARAM_TOL), name
    assert result.residuals["iv"]["rms_rel"] < IV_TOL
    assert result.residuals["pulses"]["rms_rel"] < PULSE_TOL
    # A sweep the fit never saw: ten times slower, other amplitudes and compliance.
    for sweep in read_iv(DATA / "iv_heldout.csv").groups:
        predicted, _ = simulate_sweep(sweep, result.params)
        keep = np.abs(sweep.i) > 1e-3 * np.abs(sweep.i).max()
        assert np.sqrt(np.mean((predicted[keep] / sweep.i[keep] - 1) ** 2)) < IV_TOL


def test_a_parameter_the_data_cannot_separate_is_held_and_named():
    iv = read_iv(DATA / "iv.csv")
    # gamma0 a0 / tox and beta a0 / tox enter the rate only as products: a0 adds no direction.
    with pytest.warns(FitWarning, match=r"a0: the data fix only a combination of it with"):
        result = fit(iv=iv, free=("v0", "gamma0", "beta", "a0"), start=dataclasses.replace(TRUE_PARAMS, v0=0.25))
    assert "a0" in result.held and result.params.a0 == TRUE_PARAMS.a0
    assert result.params.v0 == pytest.approx(TRUE_PARAMS.v0, rel=0.01)


def test_spreads_recover_the_drawn_variability():
    spread = measure_spread(read_iv(DATA / "spread.csv"), 0.2)
    realised = TRUTH["spread"]["realised"]
    hrs = spread.states["hrs"]
    assert hrs["devices"] == 10 and hrs["cycles"] == 8
    assert hrs["sigma_c2c"] == pytest.approx(realised["sigma_c2c"], rel=SPREAD_TOL)
    assert hrs["sigma_d2d"] == pytest.approx(realised["sigma_d2d"], rel=SPREAD_TOL)
    variability = spread.variability("hrs", sigma_read=0.005)
    assert variability.sigma_c2c == hrs["sigma_c2c"] and variability.sigma_read == 0.005


def test_card_round_trip_feeds_crossbar_preset_and_tiles(joint, tmp_path):
    from memsim.circuit.array import Crossbar
    from memsim.solver import solve

    iv, pulses, result = joint
    spread = measure_spread(read_iv(DATA / "spread.csv"), 0.2)
    card = make_card(result, iv, pulses, spread)
    path = card.save(tmp_path / "card.json")
    loaded = load_card(path)
    assert loaded.params == result.params and loaded.variability == card.variability
    assert [d["kind"] for d in loaded.data] == ["iv", "pulses", "spread"]
    loaded.check_data(DATA / "iv.csv")
    with pytest.raises(ValueError, match="not among the data this card was fitted to"):
        loaded.check_data(DATA / "iv_heldout.csv")
    preset = loaded.preset(8)
    gaps = preset.program(np.array([[preset.levels[0], preset.levels[-1]]]))
    xb = Crossbar.device(gaps, params=loaded.params)
    out = solve(xb, np.array([0.2]))
    expected = 0.2 * np.array([preset.levels[0], preset.levels[-1]])
    assert np.asarray(out.i_col).ravel() == pytest.approx(expected, rel=2e-3)
    config = loaded.hardware_config(8, cells="device")
    assert config.device == loaded.params and config.cond.levels == preset.levels
    assert config.noise_model().variability == loaded.variability
    data = json.loads(path.read_text())
    data["version"] = 2
    (tmp_path / "newer.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="version 2, written by a newer memsim"):
        load_card(tmp_path / "newer.json")
    data["version"] = 1
    data["params"]["g0"] = 1.0
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="RRAMParams.g0 must lie in"):
        load_card(tmp_path / "bad.json")


def test_cli_writes_card_report_and_figure(tmp_path, capsys):
    out = tmp_path / "fit"
    assert main(["fit", str(DATA / "iv.csv"), "--free", "v0,vel0,gamma0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gamma0" in printed and "wrote" in printed
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "fit.png", "report.txt"]
    card = load_card(out / "card.json")
    assert isinstance(card, DeviceCard) and card.fit["fitted"] == ["v0", "vel0", "gamma0"]


def test_cli_checks_its_output_names_before_reading_the_data(tmp_path, capsys, monkeypatch):
    """--out is checked for card.json, report.txt and fit.png (a folder in the way is refused
    before any data is read), and nothing else in it matters."""
    from memsim.fit import data as fit_data

    def never(*args, **kwargs):
        raise AssertionError("the data were read before --out was checked")

    out = tmp_path / "fit"
    (out / "fit.png").mkdir(parents=True)
    monkeypatch.setattr(fit_data, "read_iv", never)
    assert main(["fit", str(DATA / "iv.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fit.png" in err and "it is a folder" in err
    (out / "fit.png").rmdir()
    (out / "-").mkdir()  # a name that is not an output: no reason to refuse
    monkeypatch.undo()
    assert main(["fit", str(DATA / "iv.csv"), "--free", "v0", "--out", str(out)]) == 0


# -- bad data ------------------------------------------------------------------------------
HEADER = "t,v,i,cycle,device\n"


def _rows(lines):
    return HEADER + "".join(lines)


GOOD = [f"{k * 1e-3},{0.1 * k},{1e-6 * k},0,A\n" for k in range(4)]
BAD = {
    "nan": (_rows(GOOD[:2] + ["2e-3,0.2,nan,0,A\n"] + GOOD[3:]), r"line 4: column i is 'nan'; NaN and infinite"),
    "unsorted": (_rows([GOOD[0], GOOD[2], GOOD[1], GOOD[3]]), r"line 4: time is not increasing within device 'A' cycle 0"),
    "mixed": (_rows(GOOD[:2] + [l.replace(",0,A", ",1,A") for l in GOOD] + GOOD[2:]),
              r"rows of device 'A' cycle 0 are interleaved with another's \(lines 2 and 8\)"),
    "missing": ("t,v,cycle,device\n0,0,0,A\n", r"missing column\(s\) i; the header must name t,v,i,cycle,device"),
    "text": (_rows(GOOD[:1] + ["1e-3,0.1,1uA,0,A\n"]), r"line 3: column i must be a number, got '1uA'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_iv_data_is_refused_in_one_line_and_nothing_is_written(case, tmp_path, capsys):
    text, message = BAD[case]
    path = tmp_path / "iv.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_iv(path)
    assert "\n" not in str(info.value)
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "memsim fit: error:" in err
    assert not out.exists() or not any(out.iterdir())


def test_currents_in_microamperes_and_conductances_in_microsiemens_are_named(tmp_path):
    iv = read_iv(DATA / "iv.csv")
    path = tmp_path / "iv_ua.csv"
    from memsim.fit import write_iv

    write_iv(path, [dataclasses.replace(s, i=s.i * 1e6) for s in iv.groups])
    with pytest.warns(UnitWarning, match=r"the currents look like uA, not A"):
        read_iv(path)
    pulses = read_pulses(DATA / "pulses.csv")
    lines = (DATA / "pulses.csv").read_text().splitlines()
    header = lines[0].split(",")
    g = header.index("g_read")
    scaled = [lines[0]] + [",".join(str(float(x) * 1e6) if k == g else x for k, x in enumerate(line.split(",")))
                           for line in lines[1:]]
    (tmp_path / "p_us.csv").write_text("\n".join(scaled) + "\n")
    with pytest.warns(UnitWarning, match=r"the conductances look like uS, not S"):
        read_pulses(tmp_path / "p_us.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_iv(DATA / "iv.csv").groups) == 3 and len(pulses.groups) == 2


def test_pulse_data_needs_a_read_first_and_a_read_voltage(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("amplitude,width,g_read,cycle,device\n1.2,5e-8,2e-5,0,A\n")
    with pytest.raises(ValueError, match="no v_read column; give the read voltage"):
        read_pulses(path)
    with pytest.raises(ValueError, match=r"starts with a pulse; start each train with a read \(amplitude 0\)"):
        read_pulses(path, v_read=0.2)
