"""The memsim command, run as a user runs it (a subprocess), plus the JSON spec."""
import json
import subprocess
import sys

import numpy as np
import pytest

from memsim import spec


def memsim_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "memsim", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_netlist_and_simulate_round_trip(tmp_path):
    out = tmp_path / "x.cir"
    proc = memsim_cli("netlist", "--kind", "1t1r", "--rows", "4", "--cols", "3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().count("\nm") == 12
    csv = tmp_path / "i.csv"
    proc = memsim_cli("simulate", "--kind", "device", "--rows", "4", "--cols", "3", "-o", str(csv))
    assert proc.returncode == 0, proc.stderr
    lines = csv.read_text().splitlines()
    assert lines[0] == "column,i_col_A" and len(lines) == 4
    npz = tmp_path / "r.npz"
    assert memsim_cli("simulate", "--kind", "ohmic", "--rows", "3", "--cols", "3", "--read", "1,1",
                      "--scheme", "v/3", "-o", str(npz)).returncode == 0
    with np.load(npz) as data:
        assert data["v_row"].shape == (3, 3)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_spec_file_and_its_errors(tmp_path):
    good = tmp_path / "a.json"
    good.write_text(json.dumps({"kind": "device", "rows": 3, "cols": 2, "r_row": 0.5, "inputs": [0.1, 0.2, 0.0]}))
    xb, v = spec.load(good)
    assert xb.shape == (3, 2) and xb.r_row == 0.5 and v.tolist() == [0.1, 0.2, 0.0]
    for bad, message in [({"kind": "pcm"}, "kind"), ({"kind": "device", "rows": 2, "cols": 2, "rws": 3}, "unknown spec key"),
                         ({"kind": "device", "rows": 0, "cols": 2}, "rows"),
                         ({"kind": "ohmic", "rows": 2, "cols": 2, "inputs": ["0.1\n.control", 0]}, "inputs")]:
        with pytest.raises(ValueError, match=message):
            spec.build(bad)
    broken = tmp_path / "b.json"
    broken.write_text('{"kind": "device", ')
    proc = memsim_cli("netlist", "--spec", str(broken))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_options_give_one_line_errors(tmp_path):
    proc = memsim_cli("simulate", "--kind", "ohmic", "--r-row", "-1")
    assert proc.returncode == 2 and "r_row must be a finite resistance >= 0 ohm" in proc.stderr
    proc = memsim_cli("simulate", "--kind", "ohmic", "--read", "9,9")
    assert proc.returncode == 2 and "selected row must be an integer" in proc.stderr
    proc = memsim_cli("simulate", "--kind", "ohmic", "-o", str(tmp_path / "x.txt"))
    assert proc.returncode == 2 and ".csv or .npz" in proc.stderr


def test_demo_writes_its_figure_where_asked(tmp_path):
    proc = memsim_cli("demo", "--size", "8", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "demo.png").stat().st_size > 10_000
    assert "read margin" in proc.stdout and "IR drop" in proc.stdout
