"""The memsim command, run as a user runs it (a subprocess), plus the JSON spec."""
import csv
import json
import os
import re
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

import memsim
from memsim.circuit import spec


def memsim_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "memsim", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_netlist_and_simulate_round_trip(tmp_path):
    out = tmp_path / "x.cir"
    proc = memsim_cli("netlist", "--kind", "1t1r", "--rows", "4", "--cols", "3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().count("\nm") == 12
    csv_path = tmp_path / "i.csv"
    proc = memsim_cli("simulate", "--kind", "device", "--rows", "4", "--cols", "3", "-o", str(csv_path))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["column", "i_col_A"] and [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    written = np.array([float(r[1]) for r in rows[1:]])  # every value parses as a number
    xb, v = spec.build({"kind": "device", "rows": 4, "cols": 3})
    expected = memsim.simulate(xb, v).i_col
    assert np.array_equal(written, expected)  # and is the result itself, to the last bit
    proc = memsim_cli("simulate", "--kind", "device", "--rows", "4", "--cols", "3", "--engine", "solver")
    printed = np.array([float(line.split(",")[1]) for line in proc.stdout.splitlines()[1:]])
    np.testing.assert_allclose(printed, expected, rtol=1e-9)
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
    assert "replaced" not in proc.stdout
    again = memsim_cli("demo", "--size", "4", "--out", str(tmp_path / "out"))
    assert again.returncode == 0 and f"figure: {tmp_path / 'out' / 'demo.png'} (replaced the existing file)" in again.stdout


def test_output_files_replace_regular_files_and_say_so_and_refuse_anything_else(tmp_path):
    target = tmp_path / "x.cir"
    proc = memsim_cli("netlist", "--rows", "2", "--cols", "2", "-o", str(target))
    assert proc.returncode == 0 and proc.stderr.strip() == f"wrote {target}"
    target.write_text("an older netlist\n")
    proc = memsim_cli("netlist", "--rows", "2", "--cols", "2", "-o", str(target))
    assert proc.returncode == 0 and proc.stderr.strip() == f"wrote {target} (replaced the existing file)"
    assert target.read_text().startswith("* memsim netlist:")
    link = tmp_path / "link.cir"
    link.symlink_to(target)
    assert memsim_cli("netlist", "--rows", "3", "--cols", "2", "-o", str(link)).returncode == 0
    assert link.is_symlink() and "2x2" not in target.read_text() and "3x2" in target.read_text()
    folder, fifo = tmp_path / "folder.csv", tmp_path / "fifo.csv"
    folder.mkdir()
    os.mkfifo(fifo)
    for path, what in ((folder, "a folder"), (fifo, "a FIFO (named pipe)")):
        for command in (["netlist", "--rows", "2", "--cols", "2"], ["simulate", "--rows", "2", "--cols", "2"]):
            proc = memsim_cli(*command, "-o", str(path))
            assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert f"it is {what}; memsim only replaces regular files" in proc.stderr
    assert folder.is_dir() and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("argv, message", [
    (["simulate", "--rows", "2", "--cols", "2", "--timeout", "1e300"], "timeout must be a number of seconds"),
    (["netlist", "--program", "0,0", "--width", "1e300"], "t_pulse must be a time in"),
    (["netlist", "--program", "0,0", "--width", "nan"], "t_pulse must be a time in"),
    (["simulate", "--rows", "2", "--cols", "2", "-o", "/proc/memsim-x.csv"], "cannot write /proc/memsim-x.csv"),
    (["simulate", "--spec", "/dev/zero"], "is a character device, not a regular file"),
    (["simulate", "--spec", "."], "is a folder, not a regular file"),
    (["calibrate", "--card", "/dev/null", "--quick"], "is a character device"),
    (["calibrate", "--quick", "--sizes", "1000"], "--sizes are held-out array sizes"),
    (["plot", "/dev/zero"], "is a character device"),
    (["study", "/dev/null/x.toml"], "cannot read study config"),
])
def test_user_errors_end_in_one_line(argv, message):
    proc = memsim_cli(*argv)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")
def test_netlist_files_print_their_results_under_plain_ngspice(tmp_path):
    proc = memsim_cli("netlist", "--kind", "device", "--rows", "3", "--cols", "2", "-o", str(tmp_path / "a.cir"))
    assert proc.returncode == 0
    assert "* run: ngspice -b FILE" in (tmp_path / "a.cir").read_text()
    run = subprocess.run(["ngspice", "-b", "a.cir"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    printed = dict(re.findall(r"^\s*(vs\d)#branch\s+(\S+)", run.stdout, re.MULTILINE))
    xb, v = spec.build({"kind": "device", "rows": 3, "cols": 2})
    expected = memsim.simulate(xb, v).i_col
    np.testing.assert_allclose([float(printed["vs0"]), float(printed["vs1"])], expected, rtol=1e-5)
    text = memsim.netlist.program(xb, 1, 1, 1.8)
    (tmp_path / "p.cir").write_text(text)
    run = subprocess.run(["ngspice", "-b", "p.cir"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert re.search(r"Index\s+time\s+v\(x1_1\)\s+vin1#branch", run.stdout), run.stdout[-2000:]
