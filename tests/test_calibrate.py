"""Calibration: recovery of known parameters, real ngspice fits, the committed default, bad files."""
import json
import shutil

import numpy as np
import pytest

import memsim
from memsim import calibrate as cal
from memsim.calibrate import Calibration, CalibrationError


def test_fit_recovers_known_parameters_from_solver_data():
    truth = {"beta": 5e-4, "vto": 0.42, "lambda_": 0.15}
    data = cal.sweep_solver(truth, config=cal.QUICK)
    fitted = cal.fit(data, config=cal.QUICK)
    for key, value in truth.items():
        assert fitted.params[key] == pytest.approx(value, rel=1e-5), key
    assert fitted.residuals["cells_max_rel"] < 1e-8
    assert fitted.uncalibrated_residuals["cells_rms_rel"] > 0.01  # the start really was off


def test_quick_calibration_with_ngspice_beats_defaults_on_held_out_array(tmp_path):
    out = tmp_path / "cal.json"
    calibration = cal.calibrate(config=cal.QUICK, out=out, progress=False)
    assert out.exists() and not list(tmp_path.glob(".*.tmp"))
    assert calibration.residuals["cells_rms_rel"] < 0.1 * calibration.uncalibrated_residuals["cells_rms_rel"]
    # Held out: 16x16 is larger than the 8x8 arrays of the quick fit.
    report = cal.validate(Calibration.load(out, card_dir=cal.BSIM4_CARD.parent), sizes=(16,), kinds=("1t1r",),
                          patterns=("random", "all_lrs"), progress=False)
    for case in report["cases"]:
        assert case["error_calibrated"] < 0.01
        assert case["error_uncalibrated"] > 3 * case["error_calibrated"]


def test_committed_default_calibration_is_what_calibrate_produces():
    committed = Calibration.load()
    fresh = cal.calibrate(progress=False)
    for key in cal.FITTED:
        assert fresh.params[key] == pytest.approx(committed.params[key], rel=1e-6, abs=1e-12), key
    assert fresh.card_sha256 == committed.card_sha256
    assert committed.residuals["arrays_max_rel"] < 0.01


def test_solver_with_calibration_matches_bsim4_ngspice():
    calibration = Calibration.load()
    rng = np.random.default_rng(5)
    gaps = memsim.devices.preset("rram8").level_gaps[rng.integers(0, 8, (24, 24))]
    # Any reduced parameters on the BSIM4 card: ngspice only reads the card, solve the calibration.
    rough = memsim.devices.MosfetParams(card=cal.BSIM4_CARD, beta=1e-3, vto=0.3, lambda_=0.0)
    xb = memsim.Crossbar.one_t_one_r(gaps, transistor=rough, r_row=1.0, r_col=1.0)
    v = rng.uniform(0, 0.2, 24)
    spice_i = memsim.simulate(xb, v).i_col
    assert cal.column_error(memsim.solve(xb, v, calibration=calibration).i_col, spice_i) < 0.01
    assert cal.column_error(memsim.solve(xb, v, calibration=cal.DEFAULT_CALIBRATION).i_col, spice_i) < 0.01
    assert cal.column_error(memsim.solve(xb, v).i_col, spice_i) > 0.02  # the rough guess is far off
    with pytest.raises(CalibrationError, match="not the card"):
        memsim.solve(memsim.Crossbar.one_t_one_r(gaps), v, calibration=calibration)


def test_column_error_metric():
    assert cal.column_error([1.01, 2.0, 5.0], [1.0, 2.0, 4.0]) == pytest.approx(0.25)
    # Columns below 1% of the largest do not count.
    assert cal.column_error([1.0, 0.0], [1.0, 0.001]) == 0.0


@pytest.fixture
def calibration_copy(tmp_path):
    shutil.copy(cal.BSIM4_CARD, tmp_path / cal.BSIM4_CARD.name)
    shutil.copy(cal.DEFAULT_CALIBRATION, tmp_path / "cal.json")
    return tmp_path


def test_bad_calibration_files_are_refused(calibration_copy):
    path = calibration_copy / "cal.json"
    assert Calibration.load(path).params == Calibration.load().params
    text = path.read_text()
    cases = {
        "truncated": (text[: len(text) // 2], "not valid JSON"),
        "foreign": (json.dumps({"schema": "something-else"}), "not a memsim calibration"),
        "version": (text.replace('"schema_version": 1', '"schema_version": 99'), "version 99, written by a newer memsim"),
        "traversal": (text.replace('"card_file": "nmos_bsim4.lib"', '"card_file": "../../etc/passwd"'), "plain file name"),
        "missing": (json.dumps({k: v for k, v in json.loads(text).items() if k != "params"}), "missing or has a malformed"),
        "nan": (text.replace('"vto": ', '"vto": NaN, "x": '), "out of range"),
    }
    for name, (content, message) in cases.items():
        path.write_text(content)
        with pytest.raises(CalibrationError, match=message):
            Calibration.load(path)
    path.write_text(text)
    card = calibration_copy / cal.BSIM4_CARD.name
    card.write_text(card.read_text().replace("vth0=0.45", "vth0=0.40"))
    with pytest.raises(CalibrationError, match="does not match this calibration"):
        Calibration.load(path)


def test_fit_that_does_not_converge_is_an_error():
    data = cal.sweep_solver({"beta": 5e-4, "vto": 0.42, "lambda_": 0.15}, config=cal.QUICK)
    with pytest.raises(CalibrationError, match="did not converge"):
        cal.fit(data, config=cal.QUICK, max_nfev=1)


def test_ngspice_failure_mid_sweep_leaves_no_file(tmp_path, monkeypatch):
    # A wrapper that runs the real ngspice twice, then fails the way a crash would.
    counter = tmp_path / "count"
    wrapper = tmp_path / "ngspice"
    wrapper.write_text(f"""#!/bin/sh
n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}
if [ $n -gt 2 ]; then echo "fatal: simulated crash" >&2; exit 3; fi
exec {shutil.which('ngspice')} "$@"
""")
    wrapper.chmod(0o755)
    monkeypatch.setenv("MEMSIM_NGSPICE", str(wrapper))
    out = tmp_path / "out" / "cal.json"
    with pytest.raises(memsim.SpiceError, match="status 3"):
        cal.calibrate(config=cal.QUICK, out=out, progress=False)
    assert int(counter.read_text()) == 3
    assert not out.exists() and not (tmp_path / "out").exists()
