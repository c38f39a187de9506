"""Scripts' own experiments through the study runner (memsim.study.run_tasks): resume after a
kill with no finished point repeated, settings recorded and checked, the Dask path, failures
stored and computed again, the older results-log format still read."""
import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import memsim.study as study
from memsim.errors import FileError
from memsim.study.store import StoreError

ROOT = Path(__file__).resolve().parents[1]
POINTS = [{"model": m, "seed": s} for m in ("a", "b") for s in range(3)]


def square(point, calls=None, pause=0.0, fail=None):
    """A point's values from its fields; each call leaves a file in ``calls``; a point named in
    the file ``fail`` raises."""
    if fail is not None and os.path.exists(fail) and point["model"] in open(fail).read().split():
        raise RuntimeError(f"no result for model {point['model']}")
    time.sleep(pause)
    value = {"a": 1, "b": 2}[point["model"]] * 10 + point["seed"] ** 2
    if calls is not None:
        Path(calls, f"{point['model']}{point['seed']}.{uuid.uuid4().hex}").touch()
    return {"value": value, "curve": [{"t": 0.0, "y": value / 2}]}


def expected_lines(points=POINTS):
    return [json.dumps({**p, **square(p)}, sort_keys=True) for p in points]


def calls_of(folder):
    counts = {}
    for path in Path(folder).iterdir():
        name = path.name.split(".")[0]
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_points_computed_once_exported_in_grid_order_and_read_back(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    task = functools.partial(square, calls=str(calls))
    run = study.run_tasks("sq", POINTS + POINTS[:1], task, out=tmp_path / "out", workers=2, progress=False)
    assert (run.points, run.computed, run.failed) == (6, 6, 0)  # a repeated point is one point
    assert run.path == tmp_path / "out" / "sq.jsonl"
    assert run.path.read_text().splitlines() == expected_lines()
    assert study.read_records(run.path) == [{**p, **square(p)} for p in POINTS]
    again = study.run_tasks("sq", POINTS, task, out=tmp_path / "out", workers=2, progress=False)
    assert (again.already_done, again.computed) == (6, 0)
    assert calls_of(calls) == {f"{p['model']}{p['seed']}": 1 for p in POINTS}
    # another grid into the same store: its points first, the earlier ones kept after them
    more = [{"model": "a", "seed": 5}]
    study.run_tasks("sq", more, task, out=tmp_path / "out", workers=1, progress=False)
    assert run.path.read_text().splitlines() == expected_lines(more) + expected_lines()  # sorted keys: POINTS' order


SCRIPT = """\
import functools, sys
import memsim.study

def value(point, calls, pause):
    from test_study_tasks import square
    return square(point, calls, pause)

if __name__ == "__main__":
    points = [{{"model": m, "seed": s}} for m in ("a", "b") for s in range(3)]
    pause = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0  # not a setting: it changes no result
    dask = sys.argv[2] if len(sys.argv) > 2 else None
    memsim.study.run_tasks("sq", points, functools.partial(value, calls={calls!r}, pause=pause),
                           out={out!r}, workers=2, dask=dask, progress=False)
    print("DONE")
"""


def _script(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir(exist_ok=True)
    script = tmp_path / "experiment.py"
    script.write_text(SCRIPT.format(calls=str(calls), out=str(tmp_path / "out")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                                        os.environ.get("PYTHONPATH", "")])}
    return script, calls, env


@pytest.mark.parametrize("dask", [[], ["0", "local"]], ids=["pool", "dask"])
def test_a_script_task_runs_in_workers_without_running_the_script_again(dask, tmp_path):
    if dask:
        pytest.importorskip("dask.distributed")
    script, calls, env = _script(tmp_path)
    proc = subprocess.run([sys.executable, str(script), *dask], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["DONE"]
    assert (tmp_path / "out" / "sq.jsonl").read_text().splitlines() == expected_lines()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_script_resumes_repeating_no_finished_point(sig, tmp_path):
    script, calls, env = _script(tmp_path)
    export = tmp_path / "out" / "sq.jsonl"
    proc = subprocess.Popen([sys.executable, str(script), "0.6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=tmp_path)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if export.exists() and len(export.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    time.sleep(1.5)  # orphaned workers notice the study is gone and stop
    finished = {f"{row['model']}{row['seed']}" for row in study.read_records(export)}
    assert 2 <= len(finished) < len(POINTS)
    again = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env,
                           cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert export.read_text().splitlines() == expected_lines()
    counts = calls_of(calls)
    assert all(counts[name] == 1 for name in finished), counts  # stored before the kill: never again
    assert set(counts) == {f"{p['model']}{p['seed']}" for p in POINTS}


def test_a_store_of_other_settings_or_another_task_is_refused(tmp_path):
    study.run_tasks("sq", POINTS[:2], square, settings={"images": 100}, out=tmp_path, progress=False)
    before = (tmp_path / "sq.jsonl").read_bytes()
    with pytest.raises(StoreError, match=r"other options \(settings \{'images': 100\} -> \{'images': 200\}\)"):
        study.run_tasks("sq", POINTS[:2], square, settings={"images": 200}, out=tmp_path, progress=False)
    with pytest.raises(StoreError, match=r"task 'test_study_tasks.square' -> 'test_study_tasks.calls_of'"):
        study.run_tasks("sq", POINTS[:2], calls_of, settings={"images": 100}, out=tmp_path, progress=False)
    assert (tmp_path / "sq.jsonl").read_bytes() == before
    assert study.run_tasks("sq", POINTS[:2], square, settings={"images": 100}, out=tmp_path,
                           progress=False).already_done == 2
    # a config study's store is not a script's, nor the other way round
    with pytest.raises(StoreError, match="other options"):
        study.run({"name": "sq", "metrics": ["mvm"], "grid": {"size": [4]}, "options": {"spice_max_size": 0}},
                  out=tmp_path, progress=False)


def test_an_older_results_log_is_read_but_never_taken_over(tmp_path):
    log = tmp_path / "results.jsonl"
    log.write_text('{"model": "a", "seed": 0, "value": 10}\n')
    assert study.read_records(log) == [{"model": "a", "seed": 0, "value": 10}]
    with pytest.raises(StoreError, match="results.jsonl exists but its store results.sqlite does not"):
        study.run_tasks("results", POINTS, square, out=tmp_path, progress=False)
    log.write_text('{"model": "a", "seed": 0, "value": 10}\n{"model": \n')
    with pytest.raises(FileError, match="line 2, is not valid JSON"):
        study.read_records(log)


def test_dask_local_cluster_writes_the_same_file(tmp_path):
    pytest.importorskip("dask.distributed")
    pool = study.run_tasks("sq", POINTS, square, out=tmp_path / "pool", workers=2, progress=False)
    run = study.run_tasks("sq", POINTS, square, out=tmp_path / "dask", dask="local", workers=2, progress=False)
    assert (run.computed, run.failed, run.executor) == (len(POINTS), 0, "dask local")
    assert run.path.read_bytes() == pool.path.read_bytes()


def test_a_failing_point_is_stored_reported_and_computed_again(tmp_path):
    fail = tmp_path / "fail"
    fail.write_text("b")
    task = functools.partial(square, fail=str(fail))
    run = study.run_tasks("sq", POINTS, task, out=tmp_path / "out", progress=False)
    assert (run.computed, run.failed) == (6, 3)
    assert [(p, e) for p, e in run.failures] == [({"model": "b", "seed": s}, "RuntimeError: no result for model b")
                                                 for s in range(3)]
    assert run.path.read_text().splitlines() == expected_lines(POINTS[:3])  # failures stay out of the export
    fail.write_text("")
    again = study.run_tasks("sq", POINTS, task, out=tmp_path / "out", progress=False)
    assert (again.already_done, again.retried, again.computed, again.failed) == (3, 3, 3, 0)
    assert run.path.read_text().splitlines() == expected_lines()


def not_a_dict(point):
    return [point["seed"]]


def clashing(point):
    return {"seed": 1, "error": 0.5}


def not_json(point):
    return {"value": object()}


@pytest.mark.parametrize("task, message", [
    (not_a_dict, "TypeError: task test_study_tasks.not_a_dict returned list, not a dict of values"),
    (clashing, "ValueError: task test_study_tasks.clashing returned values named like the point's fields: seed"),
    (not_json, "TypeError: task test_study_tasks.not_json returned a value that is not JSON-able"),
])
def test_what_a_task_returns_is_checked(task, message, tmp_path):
    run = study.run_tasks("bad", POINTS[:1], task, out=tmp_path, progress=False)
    assert run.failed == 1 and run.failures[0][1].startswith(message)


def error_is_a_value(point):
    return {"error": 0.25}  # the runner's own failure column is apart from the task's names


def test_bad_arguments_are_refused_in_one_line(tmp_path):
    run = study.run_tasks("ok", POINTS[:1], error_is_a_value, out=tmp_path, progress=False)
    assert run.failed == 0 and study.read_records(run.path) == [{**POINTS[0], "error": 0.25}]
    with pytest.raises(ValueError, match="top-level function"):
        study.run_tasks("x", POINTS, lambda point: {}, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="non-empty list of dicts"):
        study.run_tasks("x", [], square, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="points must be JSON-able"):
        study.run_tasks("x", [{"a": float("nan")}], square, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="name must be a plain file-name stem"):
        study.run_tasks("../x", POINTS, square, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"workers must be an integer in \[1, 256\]"):
        study.run_tasks("x", POINTS, square, out=tmp_path, workers=0, progress=False)
