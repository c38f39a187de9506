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
