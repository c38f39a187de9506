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
from memsim.study.points import point_key
from memsim.study.results import read_rows
from memsim.study.store import StoreError

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
    assert (tmp_path / "exec.sqlite").exists() and not (tmp_path / "exec.lock").exists()  # removed at the end
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
    # nothing repeated: what the store kept is not computed again.  SIGTERM exports the CSV from
    # the store before exiting; SIGKILL can land between storing a point and exporting it, so
    # there the store may hold one point more than the CSV showed.
    lag = 1 if sig == signal.SIGKILL else 0
    assert total == N_POINTS and already + computed == N_POINTS
    assert len(kept) <= already <= len(kept) + lag, (already, len(kept))
    final = results.read_bytes()
    assert final == reference.read_bytes()  # nothing lost, nothing twice, the same numbers
    assert kept_lines <= set(final.decode().splitlines())  # finished rows kept as they were
    assert not list(tmp_path.glob(".*.tmp"))
    logged = (tmp_path / "exec.timings.csv").read_text().splitlines()[1:]
    logged_keys = [line.rsplit(",", 2)[0].strip('"') for line in logged]
    # no point computed twice (the log is written just after the row: a kill in between may skip one)
    assert len(logged_keys) == len(set(logged_keys)) and N_POINTS - 1 <= len(logged_keys) <= N_POINTS


def test_damaged_csv_export_is_rebuilt_from_the_store(config_file, reference, tmp_path):
    study.run(config_file, out=tmp_path, progress=False)
    text = (tmp_path / "exec.csv").read_text()
    (tmp_path / "exec.csv").write_text(text[: len(text) // 2])  # the CSV is an export: never read back
    run = study.run(config_file, out=tmp_path, progress=False)
    assert (run.already_done, run.computed) == (N_POINTS, 0)
    assert run.path.read_bytes() == reference.read_bytes()


CHEAP = {"name": "cheap", "metrics": ["mvm"], "grid": {"size": [4, 6], "seed": [0]},
         "options": {"spice_max_size": 0, "inputs": 1}}


def test_a_csv_without_its_store_is_never_taken_over(tmp_path):
    foreign = "metric,size,r_wire_ohm,cell,preset,levels,seed,error\nmvm,4,1.0,device,rram8,8,0,\n"
    (tmp_path / "cheap.csv").write_text(foreign)
    with pytest.raises(StoreError, match="exists but its store cheap.sqlite does not"):
        study.run(CHEAP, out=tmp_path, progress=False)
    assert (tmp_path / "cheap.csv").read_text() == foreign


def test_damaged_or_foreign_stores_are_refused_in_one_line(tmp_path):
    run = study.run(CHEAP, out=tmp_path, progress=False)
    store = tmp_path / "cheap.sqlite"
    data = store.read_bytes()
    store.write_bytes(data[:100])  # truncated
    with pytest.raises(StoreError, match="not a memsim study store"):
        study.run(CHEAP, out=tmp_path, progress=False)
    store.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)  # the magic, nothing else
    with pytest.raises(StoreError, match="not a memsim study store"):
        study.run(CHEAP, out=tmp_path, progress=False)
    store.write_bytes(data)
    assert study.run(CHEAP, out=tmp_path, progress=False).already_done == run.points == 2
    proc = subprocess.run([sys.executable, "-m", "memsim", "study", str(_config_file(tmp_path, {**CHEAP, "name": "x"})),
                           "--out", str(tmp_path), "--no-plot", "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    os.replace(tmp_path / "x.sqlite", store)  # another study's store under this name
    with pytest.raises(StoreError, match="holds study 'x', not 'cheap'"):
        study.run(CHEAP, out=tmp_path, progress=False)


def _config_file(folder, config):
    import json

    path = folder / f"{config['name']}.json"
    path.write_text(json.dumps(config))
    return path


def _put(folder, key, point, result, error):
    """Store a row as memsim does (with its digest), e.g. a genuine point of another grid."""
    import json

    from memsim.study.store import Store

    with Store(folder, "cheap", study.load(CHEAP).options) as store:
        store.put(key, json.loads(point) if isinstance(point, str) else point, result, error, 0.1, "local pool")


def test_rows_edited_by_hand_are_refused_and_other_grids_stay_out_of_the_csv(tmp_path):
    import json
    import sqlite3

    study.run(CHEAP, out=tmp_path, progress=False)
    csv_before = (tmp_path / "cheap.csv").read_text()
    db = sqlite3.connect(tmp_path / "cheap.sqlite")
    # a genuine point of another grid (size 8): stored, valid, but not this grid's, so not exported
    (key, metric, point, result, *rest), = db.execute("SELECT * FROM points WHERE point LIKE '%\"size\": 4%'")
    _put(tmp_path, key.replace("size=4", "size=8"), point.replace('"size": 4', '"size": 8'), json.loads(result), None)
    run = study.run(CHEAP, out=tmp_path, progress=False)
    assert (run.already_done, run.computed) == (2, 0)
    assert (tmp_path / "cheap.csv").read_text() == csv_before
    # a row whose key does not match its point (a duplicate made to replace the genuine one)
    db.execute("UPDATE points SET key = ? WHERE key = ?", (key.replace("size=4", "size=9"), key.replace("size=4", "size=8")))
    db.commit()
    with pytest.raises(StoreError, match="does not match its point"):
        study.run(CHEAP, out=tmp_path, progress=False)
    db.execute("UPDATE points SET point = ?, key = ? WHERE key = ?", ('{"metric": "mvm", "size": "4"', key + "x",
                                                                    key.replace("size=4", "size=9")))
    db.commit()
    with pytest.raises(StoreError, match="does not match its point"):  # unparsable values
        study.run(CHEAP, out=tmp_path, progress=False)
    db.close()


def test_failed_points_are_computed_again_on_resume(tmp_path, capsys):
    import sqlite3

    first = study.run(CHEAP, out=tmp_path, progress=False)
    good = (tmp_path / "cheap.csv").read_text()
    db = sqlite3.connect(tmp_path / "cheap.sqlite")
    (key, point), = db.execute("SELECT key, point FROM points WHERE key LIKE '%size=6%'")
    db.close()
    _put(tmp_path, key, point, {}, "RuntimeError: boom")
    capsys.readouterr()
    again = study.run(CHEAP, out=tmp_path, progress=False)
    assert (first.computed, again.already_done, again.computed, again.retried, again.failed) == (2, 1, 1, 1, 0)
    assert "1 point(s) that failed in an earlier run are computed again" in capsys.readouterr().err
    assert (tmp_path / "cheap.csv").read_text() == good


def test_a_second_study_on_the_same_output_stops_at_once(tmp_path):
    from memsim.study.store import Store

    config = study.load(CHEAP)
    with Store(tmp_path, "cheap", config.options):
        with pytest.raises(StoreError, match=r"another study is writing .*cheap now \(process \d+\)"):
            study.run(CHEAP, out=tmp_path, progress=False)
        proc = subprocess.run([sys.executable, "-m", "memsim", "study", str(_config_file(tmp_path, CHEAP)), "--out",
                               str(tmp_path), "--no-plot"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "another study is writing" in proc.stderr
    assert study.run(CHEAP, out=tmp_path, progress=False).computed == 2  # the lock went with its holder


def test_a_plain_script_without_a_main_guard_runs_its_study(tmp_path):
    script = tmp_path / "plain_study.py"
    script.write_text(f"""import memsim
config = {CHEAP!r}
run = memsim.study.run(config, out={str(tmp_path / "out")!r}, workers=2, progress=False)
print("DONE", run.computed, run.failed)
""")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout's memsim, not another
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n") == ["DONE 2 0", ""]  # the workers did not run the script again
    _, rows, dropped = read_rows(tmp_path / "out" / "cheap.csv")
    assert [row["size"] for row in rows] == ["4", "6"] and not any(row["error"] for row in rows) and not dropped


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
    assert err.value.code == 2 and "--workers: must be an integer in [1, 256], got 'two'" in capsys.readouterr().err


def test_a_killed_export_s_temporary_file_goes_on_resume_and_only_its_own(tmp_path):
    """SIGKILL between write_atomic's write and rename leaves .<name>.*.tmp; a study resuming
    (holding its store's lock, so no other writer of its export is alive) removes those only."""
    from memsim.io import remove_stale_temporaries
    target = tmp_path / "a[1].csv"
    (tmp_path / ".a[1].csv.x1y2.tmp").write_text("half")
    (tmp_path / ".a[1].csv.z9.tmp").write_text("half")
    (tmp_path / ".other.csv.x1y2.tmp").write_text("keep")
    (tmp_path / ".a[1].csv.dir.tmp").mkdir()
    assert remove_stale_temporaries(target) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a[1].csv.dir.tmp", ".other.csv.x1y2.tmp"]
