"""The scripts' --help: the description is the docstring's whole first paragraph, a complete
sentence, not its first line cut mid-sentence."""
import ast
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "scripts").glob("*.py"))


def _description_expressions(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "ArgumentParser":
            for keyword in node.keywords:
                if keyword.arg == "description":
                    yield ast.unparse(keyword.value)


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_help_describes_the_script_in_whole_sentences(script):
    tree = ast.parse(script.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree, clean=False) or ""
    for expression in _description_expressions(tree):
        if "__doc__" not in expression:
            continue
        assert expression in ("__doc__.split('\\n\\n')[0]", "__doc__"), \
            f"{script.name}: --help shows {expression}, which can cut the docstring mid-sentence"
        first = doc.split("\n\n")[0].strip()
        assert first.endswith("."), f"{script.name}: the docstring's first paragraph ends {first[-30:]!r}"


def test_bench_veriloga_quick_solver_matches_ngspice():
    """scripts/bench_veriloga.py --quick: on 16 x 16 tiles of each Verilog-A model the fast
    solver's column currents match ngspice's (OSDI) to the table's own error, far inside 0.1 %."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_veriloga.py"
    spec = importlib.util.spec_from_file_location("bench_veriloga", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines = []
    loads, rows = bench.run([16], 16, out=lines.append)
    assert {(r["model"], r["kind"]) for r in rows} == {(m, k) for m in bench.STATES for k in bench.KINDS}
    for row in rows:
        assert row["linear_solver"] == "klu" and row["full_scale"] > 0
        # ngspice solves to reltol 1e-9; the solver reads a table of measured error
        assert row["error"] < 10 * loads[row["model"]]["table_error"] + 1e-8, row
        assert row["error"] < 1e-3
    assert any(line.startswith("| vteam | 1t1r | 16 |") for line in lines)
