"""The reference documentation builds: ``mkdocs build --strict`` (mkdocs.yml: the guides in
docs/ and the API pages in docs/api/, rendered from the numpydoc docstrings by mkdocstrings)
finishes without a warning, its navigation lists every guide, and the API pages name every
public module of the packages they document."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: API page (docs/api/<page>.md) -> the package it documents.
API_PAGES = {"memsim": "memsim", "circuit": "memsim.circuit", "devices": "memsim.devices",
             "solver": "memsim.solver", "nn": "memsim.nn", "cost": "memsim.cost",
             "calibrate": "memsim.calibrate", "study": "memsim.study", "compensate": "memsim.compensate",
             "learn": "memsim.learn"}


def nav_pages(nav) -> list[str]:
    """Every page path named in an mkdocs ``nav`` (nested lists and titled entries)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return [page for item in nav for page in nav_pages(item)]


def config() -> dict:
    yaml = pytest.importorskip("yaml", reason="mkdocs brings PyYAML: pip install -e '.[test]'")
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def public_modules(package: str) -> list[str]:
    """The dotted names of ``package``'s modules that the API pages document: every module
    file not named ``_x`` (kernels, internals) or ``cli`` (the command line, docs/cli.md);
    for ``memsim`` itself only the modules at the top."""
    folder = ROOT.joinpath(*package.split("."))
    return sorted(f"{package}.{path.stem}" for path in folder.glob("*.py")
                  if not path.stem.startswith("_") and path.stem != "cli")


def test_the_navigation_lists_every_guide_and_api_page():
    listed = nav_pages(config()["nav"])
    pages = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.glob("**/*.md"))
    assert sorted(set(pages) - set(listed)) == [], "docs pages missing from mkdocs.yml's nav"
    assert sorted(set(listed) - set(pages)) == [], "mkdocs.yml's nav names pages that do not exist"
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("page", sorted(API_PAGES))
def test_an_api_page_documents_its_package_and_each_public_module(page):
    text = (DOCS / "api" / f"{page}.md").read_text(encoding="utf-8")
    documented = re.findall(r"^::: ([\w.]+)$", text, re.MULTILINE)
    package = API_PAGES[page]
    assert documented[0] == package
    missing = [name for name in public_modules(package) if name not in documented]
    assert missing == [], f"docs/api/{page}.md does not document {missing}"


def test_the_module_listing_sees_real_modules():
    assert public_modules("memsim.study") == [
        "memsim.study.config", "memsim.study.executors", "memsim.study.metrics", "memsim.study.points",
        "memsim.study.results", "memsim.study.runner", "memsim.study.store", "memsim.study.tasks",
        "memsim.study.worker"]
    assert "memsim.solver.core" in public_modules("memsim.solver")
    assert not any(name.startswith("memsim.solver._") for name in public_modules("memsim.solver"))
    assert nav_pages([{"A": "a.md"}, "b.md", {"C": ["c.md", {"D": "d.md"}]}]) == ["a.md", "b.md", "c.md", "d.md"]


@pytest.mark.slow
def test_mkdocs_builds_strict_without_warnings(tmp_path):
    pytest.importorskip("mkdocstrings_handlers.python", reason="pip install -e '.[test]' (mkdocs, mkdocstrings)")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    problems = [line for line in proc.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert proc.returncode == 0 and not problems, "\n".join(problems) or proc.stderr[-3000:]
    # the API pages hold the objects, rendered from their docstrings
    for page, anchor, words in [("circuit", "memsim.circuit.array.Crossbar", "validated"),
                                ("solver", "memsim.solver.core.solve", "Numba"),
                                ("study", "memsim.study.runner.run", "resuming from its store"),
                                ("study", "memsim.study.tasks.run_tasks", "for every point not yet in the store")]:
        html = (site / "api" / page / "index.html").read_text(encoding="utf-8")
        assert f'id="{anchor}"' in html, f"{anchor} is not on the {page} page"
        assert words in html, f"the {page} page lacks the docstring text {words!r}"
    for guide in ("studies", "testing", "design"):
        assert (site / guide / "index.html").is_file()
