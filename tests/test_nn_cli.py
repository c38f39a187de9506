"""``memsim infer``: runs, prints the table, writes results; bad input is one line, exit 2."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from memsim.cli import main  # noqa: E402
from memsim import experiments  # noqa: E402


def test_infer_digits_with_drift_writes_results(tmp_path, capsys):
    code = main(["infer", "--model", "mlp-digits", "--seeds", "2", "--noise", "rram", "--r-wire", "1",
                 "--drift-time", "0,1h,10y", "--images", "100", "--no-progress", "--out", str(tmp_path),
                 "--cache", str(tmp_path / "models")])
    assert code == 0
    out = capsys.readouterr().out
    assert "mlp-digits" in out and "10 years" in out and "±" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["seeds"] == [0, 1] and len(data["rows"]) == 6
    assert all(0.8 < row["accuracy"] <= 1.0 for row in data["rows"])
    assert (tmp_path / "results.csv").read_text().startswith("seed,t,accuracy")


def test_infer_aihwkit_setting(capsys, tmp_path):
    assert main(["infer", "--aihwkit", "--images", "50", "--drift-time", "1y", "--no-progress",
                 "--compensation", "global", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "tile 512" in out and "pcm" in out and "1 year" in out and "compensation global" in out


def test_infer_takes_a_saved_cnn(tmp_path, capsys, monkeypatch):
    """A model file (architecture name + state dict) for a CNN, on a stand-in Fashion-MNIST."""
    from memsim.nn import models
    from memsim.nn.training import seeded

    _fake_fashion(tmp_path / "fashion", monkeypatch)
    with seeded(0):
        model = models.build("lenet-fashion")
    path = models.save(model, "lenet-fashion", tmp_path / "lenet.pt")
    assert main(["infer", "--model-file", str(path), "--tile", "64", "--r-wire", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "lenet-fashion, 10 test images" in out and "r_wire 1 ohm" in out


def _fake_fashion(folder, monkeypatch):
    import gzip
    import struct

    import numpy as np

    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + rng.integers(0, 256, n * 784, dtype=np.uint8).tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + (np.arange(n) % 10).astype(np.uint8).tobytes())
    monkeypatch.setenv("MEMSIM_FASHION_MNIST", str(folder))


@pytest.mark.parametrize("argv, message", [
    (["--drift-time", "1x"], "a time must be"),
    (["--seeds", "0"], "seeds must be"),
    (["--tile", "7"], "tile must be an even"),
    (["--cells", "device", "--conductances", "pcm"], "no open"),
    (["--dac-bits", "-1"], "--dac-bits must be >= 0"),
    (["--bn-recal"], "needs a model with BatchNorm"),
    (["--model-file", "/nonexistent.pt"], "model file not found"),
])
def test_infer_bad_input_is_one_line_exit_2(argv, message, capsys, tmp_path):
    assert main(["infer", "--images", "5", "--no-progress", "--cache", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_module_import_is_light():
    code = ("import sys, memsim.cli; memsim.cli.build_parser(); "
            "bad = [m for m in ('numpy', 'numba', 'sklearn', 'scipy', 'torch') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # memsim/__init__ imports numpy (the Crossbar); nothing heavier may load
    assert "numba" not in out and "sklearn" not in out and "scipy" not in out and "torch" not in out


def test_durations_and_seeds():
    assert experiments.parse_duration("10y") == pytest.approx(10 * 365.25 * 86400)
    assert experiments.parse_duration("1 mo") == pytest.approx(365.25 * 86400 / 12)
    assert experiments.parse_duration("3600") == 3600.0
    assert experiments.format_time(86400.0) == "1 day"
    assert experiments.parse_seeds("3") == [0, 1, 2]
    assert experiments.parse_seeds("0,4") == [0, 4]
    with pytest.raises(ValueError):
        experiments.parse_duration("-1s")


def test_aihwkit_comparison_without_aihwkit_says_what_it_needs(tmp_path):
    """scripts/compare_aihwkit.py needs aihwkit, which memsim does not depend on: without it
    (import blocked here, whether or not it is installed) it stops at once with a clear line."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "compare_aihwkit.py"
    code = ("import sys, runpy; sys.modules['aihwkit'] = None; sys.argv = ['compare_aihwkit.py', '--out', "
            f"{str(tmp_path / 'out')!r}]; runpy.run_path({str(script)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "needs aihwkit and torch" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_committed_aihwkit_comparison_table_follows_from_its_raw_results():
    """examples/aihwkit/<model> holds aihwkit's and memsim's per-seed accuracies (raw) and the
    table the script rendered from them: re-rendering the raw results gives the committed table."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("compare_aihwkit", root / "scripts" / "compare_aihwkit.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folders = sorted(path.parent for path in (root / "examples/aihwkit").glob("*/results.jsonl"))
    assert [folder.name for folder in folders] == ["lenet-fashion", "lenet-fashion-reram", "lstm-fashion", "mlp-mnist",
                                                   "mlp-mnist-reram"]
    for folder in folders:
        items = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        times = items[0]["times"]
        model, _, noise = folder.name.partition("-reram")
        assert len(items) >= 10 and all(item["model"] == model for item in items)
        assert all(item.get("noise", "pcm") == ("reram" if folder.name.endswith("-reram") else "pcm") for item in items)
        assert (folder / "compare_aihwkit.txt").read_text() == script.render(items, times)


@pytest.mark.parametrize("script, folder, args, table", [
    ("nonlinear_table.py", "examples/nn/nonlinear", [], "table.md"),
    ("nn_results.py", "examples/nn/lenet-fashion", ["--models", "lenet-fashion"], "nn_results.txt"),
    ("vera_results.py", "examples/vera", [], "vera_results.txt"),
])
def test_results_scripts_render_committed_older_logs_unchanged(script, folder, args, table, tmp_path):
    """The committed results were written by the older results log; the scripts, now on the
    study runner, render them (--render-only) to the committed tables and create no store."""
    import os
    import shutil

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    shutil.copytree(root / folder, out)
    (out / table).unlink()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(root / "scripts" / script), "--out", str(out), "--render-only", *args],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (out / table).read_text() == (root / folder / table).read_text()
    assert not (out / "results.sqlite").exists()
