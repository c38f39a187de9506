#!/usr/bin/env python3
"""Start-up time of ``import memsim`` and of the ``memsim`` command's help, each in a fresh
interpreter, against a bare interpreter start measured in the same run.

    python scripts/bench_startup.py [--repeat N] [--against OTHER_CHECKOUT]

Each case runs ``--repeat`` times, interleaved with the others (so a change in the machine's
load reaches every case alike); the table shows the best and the median wall time and the best
less the bare interpreter's.  ``--against`` times the same cases on another checkout of memsim
(put first on PYTHONPATH) in the same rounds, with the ratio of the best times, for a
before/after comparison.  The last column lists the heavy libraries a case loaded.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("numba", "scipy", "torch", "matplotlib", "PySpice", "sklearn")
HELP = "from memsim.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
CASES = {
    "python -c pass": "pass\n",
    "import memsim": "import memsim\n",
    "memsim --help": HELP.format(argv=["--help"]),  # what the console script runs
    "memsim infer --help": HELP.format(argv=["infer", "--help"]),
}
LOADED = "import sys\nprint('loaded:', *(m for m in {heavy!r} if m in sys.modules))\n"


def run(code: str, tree: str | None) -> tuple[float, str]:
    """Wall time (s) of a fresh interpreter running ``code`` with ``tree`` first on the path, and
    the heavy libraries it loaded."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code + LOADED.format(heavy=HEAVY)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return time.perf_counter() - start, out.strip().splitlines()[-1].removeprefix("loaded:").strip()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs per case (default 15)")
    parser.add_argument("--against", type=Path, help="another checkout of memsim to time in the same rounds")
    args = parser.parse_args(argv)
    trees = {"this": None} if args.against is None else {"this": None, "other": str(args.against.resolve())}
    times = {(case, tree): [] for case in CASES for tree in trees}
    loaded = {}
    for _ in range(args.repeat):
        for case, code in CASES.items():
            for tree, path in trees.items():
                seconds, libraries = run(code, path)
                times[case, tree].append(seconds)
                loaded[case, tree] = libraries
    bare = min(times["python -c pass", "this"])
    print(f"{os.getloadavg()[0]:.2f} load average at the end; best and median of {args.repeat} runs, ms")
    print(f"{'case':22s} {'tree':6s} {'best':>8s} {'median':>8s} {'- bare':>8s} {'ratio':>7s}  heavy loaded")
    for case in CASES:
        for tree in trees:
            best, median = min(times[case, tree]), statistics.median(times[case, tree])
            ratio = "" if tree == "this" or len(trees) == 1 else f"{best / min(times[case, 'this']):7.2f}"
            print(f"{case:22s} {tree:6s} {1e3 * best:8.1f} {1e3 * median:8.1f} {1e3 * (best - bare):8.1f} "
                  f"{ratio:>7s}  {loaded[case, tree] or '-'}")


if __name__ == "__main__":
    main()
