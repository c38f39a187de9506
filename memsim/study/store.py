"""The results store of a study: one SQLite file per study; the results file is its export.

``<out>/<name>.sqlite`` holds the study's settings and one row per computed point, written in
a transaction as each point finishes, so a killed study keeps every finished point and never
half a row.  It is what a resumed study reads; its export (``<out>/<name>.csv`` of a config
study, ``<out>/<name>.jsonl`` of a script's experiment, :mod:`memsim.study.tasks`) is
rewritten from it (atomically) for people, plots and render steps, and never read back.

What a resume refuses, each with one line saying what to do:

- a store written for other options that change results (the options are in the store);
- a store of another study name, another schema version, or not a memsim store at all
  (a truncated or foreign file);
- an export (results CSV or JSON lines) with no store beside it (a foreign file, an old
  results log, or the store was deleted): memsim never takes one over;
- a second study writing the same output at the same time: the first holds an exclusive lock
  (``<out>/<name>.lock``) until it ends, and the second stops at once.

Points that failed (an ``error``) are stored too, so the CSV shows why; a resumed study
computes them again, and so a row with neither an error nor a result (``{}``).  Every stored
row carries the SHA-256 of its key, metric, point, result and error, and is checked on
reading: the digest must match, its key must be the key of its own point and its values must
parse, so a hand-edited store is refused (on resume and on export) rather than mixed in.
Stores of schema version 1 (no digest column) get their digests when first opened.  An
SQLite error while reading or writing (a dropped table, a locked or read-only file) is one
StoreError line naming the store.  The lock file is removed when the study ends.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

from .. import __version__
from ..errors import MemsimError
from ..io import check_format, check_target

SCHEMA = "memsim-study"
SCHEMA_VERSION = 2
#: Columns of a stored row that its digest covers, in this order.
DIGESTED = ("key", "metric", "point", "result", "error")
#: Options that do not change any result (free to change when resuming).
NEUTRAL_OPTIONS = ("spice_timeout",)


class StoreError(MemsimError, ValueError):
    """The results store cannot be used for this study (mismatch, damage, or in use)."""


def row_digest(key: str, metric: str, point: str, result: str, error: str | None) -> str:
    """SHA-256 (hex) of a stored row's key, metric, point JSON, result JSON and error."""
    text = json.dumps([key, metric, point, result, error], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest_or_none(row) -> str | None:
    try:
        return row_digest(*row)
    except TypeError:  # a value of no JSON type (a blob): left without a digest, refused on reading
        return None


@contextlib.contextmanager
def _sqlite_errors(path: Path, doing: str):
    """An SQLite error (a dropped table, a locked, read-only or damaged file) as one StoreError line."""
    try:
        yield
    except sqlite3.Error as err:
        raise StoreError(f"{path}: SQLite failed while {doing} ({' '.join(str(err).split())[:160]}); the store is "
                         "damaged, locked or read-only: move it away or choose another --out folder") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _lock(path: Path):
    """An exclusive lock on ``path`` for this process, or StoreError naming who holds it (its
    process id only while that process runs: a file left by a killed run names no one)."""
    import fcntl

    while True:
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()[:40]
            handle.close()
            who = f"process {holder}" if holder.isdigit() and _alive(int(holder)) else "another process"
            raise StoreError(f"another study is writing {path.with_suffix('')} now ({who}); wait for it "
                             "to end or choose another --out folder") from None
        try:  # the holder before us may have removed the file as it ended: lock the one at the path
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _unlock(handle) -> None:
    """Remove the lock file (still holding the lock, so no one else has it yet), then release it."""
    try:
        os.unlink(handle.name)
    except OSError:
        pass
    handle.close()


class Store:
    """The open store of one study; use as a context manager (it holds the lock)."""

    def __init__(self, out: Path, name: str, options: dict, export: str = ".csv"):
        self.out = Path(out)
        self.name = name
        self.path = self.out / f"{name}.sqlite"
        self.export = self.out / f"{name}{export}"
        self.options = options
        self._lock = None
        self.db = None

    # -- opening -----------------------------------------------------------------------------
    def __enter__(self) -> "Store":
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.out / f"{self.name}.lock")
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._lock is not None:
            _unlock(self._lock)
            self._lock = None

    def _open(self) -> None:
        check_target(self.path)  # a folder or device there: refused, never opened
        new = not self.path.exists()
        if new and self.export.exists():
            raise StoreError(f"{self.export} exists but its store {self.path.name} does not: memsim does not take over a "
                             "results file it cannot check; move it away or choose another --out folder")
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA synchronous = FULL")
            if new:
                self._create()
            else:
                self._check_meta()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a memsim study store ({err}); it is damaged or foreign: move it away "
                             "or choose another --out folder") from None

    def _create(self) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.db.execute("CREATE TABLE points (key TEXT PRIMARY KEY, metric TEXT NOT NULL, point TEXT NOT NULL, "
                            "result TEXT NOT NULL, error TEXT, seconds REAL, executor TEXT, finished REAL, "
                            "sha256 TEXT)")
            meta = {"schema": SCHEMA, "schema_version": str(SCHEMA_VERSION), "name": self.name,
                    "options": json.dumps(self.options, sort_keys=True), "memsim_version": __version__}
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))

    def _check_meta(self) -> None:
        try:
            meta = dict(self.db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError:
            meta = {}
        if meta.get("schema") == SCHEMA and meta.get("schema_version") == "1":
            self._add_digests()
            meta["schema_version"] = str(SCHEMA_VERSION)
        check_format(meta, self.path, "study store", SCHEMA, SCHEMA_VERSION, StoreError, keys=("schema", "schema_version"),
                     advice="move it away or choose another --out folder")
        if meta.get("name") != self.name:
            raise StoreError(f"{self.path} holds study {meta.get('name')!r}, not {self.name!r}")
        try:
            old = json.loads(meta.get("options", ""))
        except ValueError:
            raise StoreError(f"{self.path}: its recorded options are damaged; move it away") from None
        changed = sorted(k for k in self.options if k not in NEUTRAL_OPTIONS and old.get(k, self.options[k]) !=
                         self.options[k])
        changed += sorted(k for k in old if k not in self.options)
        if changed:
            diff = ", ".join(f"{k} {old.get(k)!r} -> {self.options.get(k)!r}" for k in changed)
            raise StoreError(f"the results in {self.out} were computed with other options ({diff}); resuming would mix "
                             "them: choose another --out folder or name, or delete the old results")

    def _add_digests(self) -> None:
        """A store of schema version 1: add the digest column and each row's digest (its rows are
        still checked against their points on reading), in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("ALTER TABLE points ADD COLUMN sha256 TEXT")
            rows = list(self.db.execute(f"SELECT rowid, {', '.join(DIGESTED)} FROM points"))
            self.db.executemany("UPDATE points SET sha256 = ? WHERE rowid = ?",
                                [(_digest_or_none(row[1:]), row[0]) for row in rows])
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    # -- rows --------------------------------------------------------------------------------
    def rows(self, key_of) -> dict[str, dict]:
        """Every stored point as {key: {"point", "result", "error"}}; each row's digest must match
        and ``key_of(point)`` must give back its key (else StoreError: the row was not written by
        memsim for this key).  A row with no error and an empty result is returned as failed."""
        out = {}
        with _sqlite_errors(self.path, "reading the stored points"):
            stored = list(self.db.execute(f"SELECT {', '.join(DIGESTED)}, sha256 FROM points ORDER BY rowid"))
        for key, metric, point, result, error, digest in stored:
            try:
                valid = digest == row_digest(key, metric, point, result, error)
                point, result = json.loads(point), json.loads(result)
                valid = (valid and isinstance(point, dict) and isinstance(result, dict)
                         and point.get("metric", "") == metric and key_of(point) == key
                         and (error is None or isinstance(error, str)))
            except (ValueError, KeyError, TypeError):
                valid = False
            if not valid:
                raise StoreError(f"{self.path}: the stored row {str(key)[:80]!r} does not match its point or its "
                                 "SHA-256 (edited by hand?); move the store away or choose another --out folder")
            if error is None and not result:
                error = "stored with neither a result nor an error"
            out[key] = {"point": point, "result": result, "error": error}
        return out

    def put(self, key: str, point: dict, result: dict, error: str | None, seconds, executor: str) -> None:
        """Store one finished point (replacing an earlier failed attempt), in one transaction.

        The metric column holds the point's metric ('' for a script's point, which has none)."""
        metric, point_text, result_text = point.get("metric", ""), json.dumps(point, sort_keys=True), \
            json.dumps(result, sort_keys=True)
        digest = row_digest(key, metric, point_text, result_text, error)
        with _sqlite_errors(self.path, "storing a finished point"), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(f"INSERT OR REPLACE INTO points ({', '.join(DIGESTED)}, seconds, executor, finished, sha256) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (key, metric, point_text, result_text, error, seconds, executor, time.time(), digest))
