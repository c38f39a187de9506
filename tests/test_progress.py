"""Progress bars (tqdm) and the lazily loaded public names."""
import io
import subprocess
import sys

import pytest

from memsim.progress import Progress, WeightedProgress, progress


def test_weighted_bar_fills_by_cost_says_so_and_never_prints_nan():
    stream = io.StringIO()
    with WeightedProgress(100.0, 3, "study x", True, "points", file=stream) as bar:
        bar.update(90.0)
        middle = bar.bar.n / bar.total_cost
        bar.update(5.0, failed=True, note="8x8")
        bar.update(5.0)
    text = stream.getvalue()
    assert middle == pytest.approx(0.9)  # one point of three, but 90 % of the estimated work
    assert "% of estimated work" in text and "3/3 points (1 failed)" in text and "? left" in text
    assert "nan" not in text.lower()


def test_the_older_interface_runs_on_tqdm_and_is_quiet_when_disabled():
    stream = io.StringIO()
    with Progress(4, "inference", enabled=True, stream=stream) as bar:
        bar.update(2)
        bar.update(1, "t=1s")
        bar.update(5)  # more than is left: clipped at the total
    assert bar.done == 4 and "inference" in stream.getvalue() and "4/4" in stream.getvalue()
    quiet = io.StringIO()
    bar = Progress(3, "off", enabled=False, stream=quiet).__enter__()
    bar.update(1)
    bar.__exit__(None, None, None)
    assert quiet.getvalue() == "" and bar.done == 1
    plain = progress(2, "p", True, file=io.StringIO())
    assert type(plain).__module__.startswith("tqdm")
    plain.close()


def test_subpackages_are_reachable_from_import_memsim_and_load_lazily():
    code = ("import sys, memsim; heavy = sorted(m for m in ('memsim.calibrate', 'memsim.study.runner', 'memsim.nn', "
            "'memsim.compensate', 'memsim.solver', 'memsim.circuit.spice', 'numba', 'torch', 'tqdm') "
            "if m in sys.modules); "
            "print(heavy); print(memsim.calibrate.Calibration.__name__, memsim.study.run.__name__, "
            "memsim.compensate.__name__, memsim.plots.__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "Calibration run memsim.compensate memsim.plots"]


def test_calibrate_quick_reports_on_small_held_out_arrays(monkeypatch, tmp_path):
    import memsim.calibrate as cal
    from memsim.calibrate import fitting, report
    from memsim.cli import main

    seen = {}
    monkeypatch.setattr(fitting, "calibrate", lambda card, config, out=None: seen.setdefault("fit", config) and
                        cal.Calibration.load())
    monkeypatch.setattr(report, "validate", lambda calibration, sizes: seen.setdefault("sizes", sizes) and
                        {"cases": [], "column_currents": {}})
    monkeypatch.setattr(report, "write_report", lambda *a: {"figure": "f", "summary": "s"})
    assert main(["calibrate", "--quick", "--out", str(tmp_path)]) == 0
    assert seen["fit"] is cal.QUICK and seen["sizes"] == (16,)
    seen.clear()
    assert main(["calibrate", "--out", str(tmp_path)]) == 0
    assert seen["sizes"] == (64, 128, 256)
    seen.clear()
    assert main(["calibrate", "--quick", "--sizes", "--out", str(tmp_path)]) == 0
    assert "sizes" not in seen
