"""Every ```python block of README.md, docs/*.md and examples/**/README.md runs as written, in a
fresh namespace of its own, from a scratch folder: a reader can paste any one of them into python3
after `import memsim` works.

A block is skipped only when it needs an optional package that is not installed (or ngspice,
where it is absent), and the skip says which.  Every markdown link in those files to a path in
the repository (and to a heading, after `#`) resolves, and the README links every guide and
results page, so none is left where no reader finds it."""
import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The documents whose python blocks run and whose links are checked, README first.
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "examples").glob("**/README.md"))]
#: Optional dependencies a block may need (module name -> what installs it).
OPTIONAL = {"torch": "pip install torch", "sklearn": "the nn extra", "mlxtend": "the nn extra",
            "dask": "the dist extra", "distributed": "the dist extra",
            "aihwkit": "aihwkit (see docs/aihwkit.md)", "PySpice": "PySpice", "badcrossbar": "the bench extra"}


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced ```python block."""
    return [(line, code) for line, code, _ in python_blocks_and_output(text)]


def python_blocks_and_output(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, code, expected output) of every fenced ```python block; the expected output
    is the ```text block that follows it after a line ``Prints:`` (None where there is none)."""
    found = []
    for match in re.finditer(r"^```python\n(.*?)^```\n", text, re.MULTILINE | re.DOTALL):
        output = re.match(r"\n*Prints:\n+```text\n(.*?)^```", text[match.end():], re.MULTILINE | re.DOTALL)
        found.append((text[:match.start()].count("\n") + 2, match.group(1), output.group(1) if output else None))
    return found


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def same_output(printed: str, expected: str) -> bool:
    """Whether ``printed`` reads as ``expected``: the same words, and every number within 1 %
    (plus two units of the last digit shown), so a reader sees what the guide shows."""
    got, want = NUMBER.split(printed.strip()), NUMBER.split(expected.strip())
    if [" ".join(part.split()) for part in got] != [" ".join(part.split()) for part in want]:
        return False
    for a, b in zip(NUMBER.findall(printed), NUMBER.findall(expected)):
        mantissa = b.lower().split("e")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        scale = 10.0 ** int(b.lower().split("e")[1]) if "e" in b.lower() else 1.0
        if abs(float(a) - float(b)) > 0.01 * abs(float(b)) + 2 * 10.0 ** -decimals * scale:
            return False
    return True


def name(path: Path) -> str:
    """A document's path from the repository root, as test ids and messages show it."""
    return path.relative_to(ROOT).as_posix()


BLOCKS = [(f"{name(path)}:{line}", code, output) for path in DOCUMENTS
          for line, code, output in python_blocks_and_output(path.read_text(encoding="utf-8"))]


def test_the_documents_have_python_blocks_and_the_extractor_finds_them():
    assert any(where.startswith("README.md:") for where, *_ in BLOCKS)
    assert any(where.startswith("docs/") for where, *_ in BLOCKS)
    assert len(BLOCKS) >= 8
    assert python_blocks("x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\n```\n") == \
        [(3, "a = 1\n"), (9, "b = 2\n")]


def test_expected_outputs_are_read_and_compared():
    text = "```python\nprint(1)\n```\n\nPrints:\n\n```text\nacc 0.975, n 12\n```\n```python\nx = 1\n```\n"
    assert python_blocks_and_output(text) == [(2, "print(1)\n", "acc 0.975, n 12\n"), (11, "x = 1\n", None)]
    assert same_output("acc 0.9751, n 12", "acc 0.975, n 12")
    assert not same_output("acc 0.95, n 12", "acc 0.975, n 12")
    assert not same_output("acc 0.975, m 12", "acc 0.975, n 12")
    assert same_output("2.003e-05 A", "2.00e-05 A") and not same_output("2.1e-05 A", "2.00e-05 A")


@pytest.mark.parametrize("where, code, output", BLOCKS, ids=[where for where, *_ in BLOCKS])
def test_every_block_that_prints_shows_what_it_prints(where, code, output):
    assert "print(" not in code or output is not None, \
        f"{where} prints: show its output after it (a line 'Prints:' and a ```text block)"


@pytest.mark.slow
@pytest.mark.parametrize("where, code, output", BLOCKS, ids=[where for where, *_ in BLOCKS])
def test_python_block_runs(where, code, output, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands in a scratch folder
    if "simulate" in code and shutil.which(os.environ.get("MEMSIM_NGSPICE", "ngspice")) is None:
        pytest.skip(f"{where} runs ngspice, which is not installed")
    try:
        exec(compile(code, where, "exec"), {"__name__": "__readme__"})
    except ModuleNotFoundError as err:
        root = (err.name or "").split(".")[0]
        if root not in OPTIONAL:
            raise
        pytest.skip(f"{where} needs {root} ({OPTIONAL[root]}), which is not installed")
    printed = capsys.readouterr().out
    if output is not None:
        assert same_output(printed, output), f"{where} printed:\n{printed}\nthe guide shows:\n{output}"


# ------------------------------------------------------------------------------------ links
def prose(text: str) -> str:
    """The text without fenced blocks and inline code, where brackets are code, not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a markdown text's headings: lower case, punctuation dropped, spaces -> '-'."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#{1,6} (.*)$", prose(text), re.MULTILINE)}


def links(text: str) -> list[str]:
    """Targets of the markdown links and images in a text."""
    return re.findall(r"\]\(([^)\s]+)\)", prose(text))


def broken_links(path: Path, text: str) -> list[str]:
    """The links of a document at `path` that name no file (or no heading) in the repository."""
    broken = []
    for target in links(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ... are not repository paths
            continue
        file, _, anchor = target.partition("#")
        if not file:  # a heading of this document
            if anchor not in anchors(text):
                broken.append(target)
            continue
        resolved = (path.parent / file).resolve()
        if not resolved.exists() or ROOT not in (resolved, *resolved.parents):
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and \
                anchor not in anchors(resolved.read_text(encoding="utf-8")):
            broken.append(target)
    return broken


def test_the_link_check_finds_missing_files_and_headings():
    doc = ROOT / "docs" / "page.md"  # never written: only its folder matters
    text = ("# A page\n\n[ok](../README.md) [heading](../README.md#command-line) ![fig](missing.png)\n"
            "[gone](../README.md#no-such-heading) [self](#a-page) [web](https://example.org/x)\n"
            "```python\nx[0](1)\n```\n`y[1](z)`\n")
    assert broken_links(doc, text) == ["missing.png", "../README.md#no-such-heading"]
    assert anchors("# Nonlinear tiles: the batched model\n## On a CUDA GPU\n```\n# not one\n```\n") == \
        {"nonlinear-tiles-the-batched-model", "on-a-cuda-gpu"}


@pytest.mark.parametrize("path", DOCUMENTS, ids=[name(path) for path in DOCUMENTS])
def test_every_link_resolves(path):
    assert broken_links(path, path.read_text(encoding="utf-8")) == []


def test_the_readme_links_every_guide_and_results_page():
    linked = {(ROOT / target.partition("#")[0]).resolve()
              for target in links(README.read_text(encoding="utf-8"))}
    pages = [*(ROOT / "docs").glob("*.md"), *(ROOT / "examples").glob("*/README.md")]
    assert [name(path) for path in sorted(pages) if path.resolve() not in linked] == []
