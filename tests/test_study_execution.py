"""Executing a study: local pool and Dask give identical files; a killed study resumes with
no point lost and none repeated."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import memsim.study as study
from memsim.study.runner import point_key, read_rows

# 24 points: ngspice spot checks at N = 32 make each large point take about 0.5 s, so a study
# is still running when it is killed.
CONFIG = """\
name = "exec"
metrics = ["read_margin"]
[grid]
size = [16, 32]
r_wire = [0.0, 1.0, 2.5]
cell = ["device"]
scheme = ["floating", "v/2", "v/3", "grounded"]
[options]
spice_max_size = 32
"""
N_POINTS = 24


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "exec.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory):
    """The uninterrupted study on the default local process pool (2 workers)."""
    run = study.run(config_file, out=tmp_path_factory.mktemp("pool"), progress=False)
    assert (run.points, run.computed, run.failed) == (N_POINTS, N_POINTS, 0)
    return run.path


def keys_of(path):
    header, rows, dropped = read_rows(path)
    keys = [f"{r['metric']}|size={r['size']}|r_wire={r['r_wire_ohm']}|cell={r['cell']}|scheme={r['scheme']}|"
            f"preset={r['preset']}" for r in rows]
    return keys, dropped


def test_local_pool_and_dask_local_cluster_write_identical_files(config_file, reference, tmp_path):
    run = study.run(config_file, out=tmp_path, dask="local", workers=2, progress=False)
    assert run.computed == N_POINTS and run.executor == "dask local"
    assert run.path.read_bytes() == reference.read_bytes()
    assert (tmp_path / "exec.study.json").read_bytes() == (reference.parent / "exec.study.json").read_bytes()
    keys, _ = keys_of(reference)
    points, _ = study.expand(study.load(config_file))
    assert keys == [point_key(p) for p in points]  # grid order, each point once


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_study_resumes_losing_nothing_and_repeating_nothing(sig, config_file, reference, tmp_path):
    results = tmp_path / "exec.csv"
    command = [sys.executable, "-m", "memsim", "study", str(config_file), "--out", str(tmp_path), "--no-plot",
               "--quiet"]
    scratch = tmp_path / "tmp"  # ngspice's private folders go here: none may be left behind
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if results.exists() and results.read_text().count("\n") >= 4:  # header + 3 points
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(sig)  # the study process only: its workers must follow on their own
        _, stderr = proc.communicate(timeout=60)
        if sig == signal.SIGTERM:
            assert proc.returncode == 130 and "interrupted:" in stderr and "run the same command again" in stderr
        else:
            assert proc.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 15
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "worker processes outlived the killed study"
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert not list(scratch.iterdir()), "an interrupted ngspice run left its folder behind"
    kept, dropped = keys_of(results)
    assert 3 <= len(kept) < N_POINTS, "the study was not interrupted half-way"
    assert len(set(kept)) == len(kept)
    kept_lines = set(results.read_text().splitlines()[1:len(kept) + 1])

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr
    match = re.search(r"\((\d+) points: (\d+) already there, (\d+) computed", resumed.stdout)
    assert match, resumed.stdout
    total, already, computed = map(int, match.groups())
    assert (total, already, computed) == (N_POINTS, len(kept), N_POINTS - len(kept))  # nothing repeated
    final = results.read_bytes()
    assert final == reference.read_bytes()  # nothing lost, nothing twice, the same numbers
    assert kept_lines <= set(final.decode().splitlines())  # finished rows kept as they were
    assert not list(tmp_path.glob(".*.tmp"))
    logged = (tmp_path / "exec.timings.csv").read_text().splitlines()[1:]
    logged_keys = [line.rsplit(",", 2)[0].strip('"') for line in logged]
    # no point computed twice (the log is written just after the row: a kill in between may skip one)
    assert len(logged_keys) == len(set(logged_keys)) and N_POINTS - 1 <= len(logged_keys) <= N_POINTS


def test_truncated_last_line_is_dropped_and_recomputed(config_file, reference, tmp_path):
    text = reference.read_text()
    lines = text.splitlines(keepends=True)
    damaged = "".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2]  # killed mid-write, two rows missing
    (tmp_path / "exec.csv").write_text(damaged)
    (tmp_path / "exec.study.json").write_bytes((reference.parent / "exec.study.json").read_bytes())
    run = study.run(config_file, out=tmp_path, progress=False)
    assert (run.already_done, run.computed) == (N_POINTS - 3, 3)
    assert run.path.read_bytes() == reference.read_bytes()


def test_study_script_command_line_runs_its_config_where_told(tmp_path, capsys):
    """scripts/study_*.py share memsim.study.run_script: --out, --workers reach the runner;
    a bad option is argparse's one-line error."""
    config = {"name": "script", "metrics": ["mvm"],
              "grid": {"size": [4], "r_wire": [1.0], "cell": ["device"], "preset": ["rram8"], "levels": [8],
                       "seed": [0]}}
    result = study.run_script(config, "a study script", ["--out", str(tmp_path), "--workers", "1"])
    assert result.path == tmp_path / "script.csv" and result.points == 1 and not result.failed
    _, rows, dropped = read_rows(result.path)
    assert len(rows) == 1 and rows[0]["size"] == "4" and not rows[0]["error"] and dropped == 0
    with pytest.raises(SystemExit) as err:
        study.run_script(config, "a study script", ["--workers", "two"])
    assert err.value.code == 2 and "invalid int value" in capsys.readouterr().err
