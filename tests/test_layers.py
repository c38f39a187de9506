"""The import graph runs one way: every module of memsim sits in one layer of the table in
docs/design.md ("Layers and imports"), and no module imports one of a higher layer."""
import ast
import re
from pathlib import Path

import pytest

import memsim

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "memsim"


def layers() -> list[tuple[str, list[str]]]:
    """(layer name, module paths relative to memsim/) in table order, lowest first."""
    text = (ROOT / "docs" / "design.md").read_text()
    section = text[text.index("## Layers and imports"):]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("layer", "---"):
            named = re.sub(r"\([^)]*\)", "", cells[1])  # what stands in parentheses describes, not places
            rows.append((cells[0], re.findall(r"`([\w/]+(?:\.py|/))`", named)))
        elif rows and not line.startswith("|"):
            break
    return rows


def layer_of(module_path: str, table) -> int:
    """The most specific entry wins: a file named in a row, else its folder's row."""
    best, depth = None, -1
    for index, (_, entries) in enumerate(table):
        for entry in entries:
            if module_path == entry or (entry.endswith("/") and module_path.startswith(entry)):
                if len(entry) > depth:
                    best, depth = index, len(entry)
    if best is None:
        raise AssertionError(f"memsim/{module_path} is in no layer of docs/design.md's table; add it")
    return best


def module_file(dotted: str, package_dir: Path = PACKAGE) -> str | None:
    """Path (relative to the package folder) of a dotted module name, or None if not a module."""
    base = package_dir.joinpath(*dotted.split(".")[1:])
    if base.with_suffix(".py").is_file():
        return str(base.with_suffix(".py").relative_to(package_dir))
    if (base / "__init__.py").is_file():
        return str((base / "__init__.py").relative_to(package_dir))
    return None


def package_of(path: Path, package_dir: Path = PACKAGE) -> str:
    """The dotted package a module file's relative imports start from."""
    dotted = "memsim." + ".".join(path.relative_to(package_dir).with_suffix("").parts)
    return (dotted if path.name == "__init__.py" else dotted.rsplit(".", 1)[0]).removesuffix(".__init__")


def import_target(node: ast.ImportFrom, package: str) -> str:
    """The dotted module a ``from ... import`` statement in ``package`` reads from."""
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, package_dir: Path = PACKAGE, old_names: dict[str, str] = memsim._OLD_NAMES):
    """(dotted target, line) of every memsim import in ``path``, deferred ones included; a module
    imported by its old name (``old_names``: old dotted name -> new) counts as that module."""
    package = package_of(path, package_dir)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = import_target(node, package)
            if not target.startswith("memsim"):
                continue
            for alias in node.names:  # `from . import units` imports the module memsim.units
                sub = f"{target}.{alias.name}"
                yield (sub if module_file(sub, package_dir) or sub in old_names else target), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("memsim"):
                    yield alias.name, node.lineno


def test_the_table_names_real_modules():
    table = layers()
    assert [name for name, _ in table][:3] == ["units, files, errors", "devices", "circuit"]
    for _, entries in table:
        for entry in entries:
            assert (PACKAGE / entry).exists(), f"docs/design.md names memsim/{entry}, which does not exist"


def violations(package_dir: Path = PACKAGE, old_names: dict[str, str] = memsim._OLD_NAMES) -> list[str]:
    """Upward imports, the solver importing ngspice, imports of memsim.cli, and imports of a
    moved module by its old name (``old_names``: old dotted name -> new)."""
    table = layers()
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        source = str(path.relative_to(package_dir))
        here = layer_of(source, table)
        for target, line in imports(path, package_dir, old_names):
            if target in old_names:
                found.append(f"memsim/{source}:{line} imports {target}, the old name of {old_names[target]}; "
                             "import that")
            target_file = module_file(target, package_dir)
            if target_file is None:
                continue
            there = layer_of(target_file, table)
            if there > here:
                found.append(f"memsim/{source}:{line} ({table[here][0]}) imports {target} ({table[there][0]})")
            if source.startswith("solver/") and target_file in ("circuit/netlist.py", "circuit/spice.py"):
                found.append(f"memsim/{source}:{line}: the solver imports {target} (it must run without ngspice)")
            if target_file == "cli.py" and source != "__main__.py":
                found.append(f"memsim/{source}:{line} imports memsim.cli (nothing does but __main__)")
    return found


def test_imports_run_one_way():
    upward = violations()
    assert not upward, "\n".join(upward)


def fake_package(tmp_path: Path, files: dict) -> Path:
    """A package folder ``memsim`` under ``tmp_path`` holding ``files`` (path -> source)."""
    fake = tmp_path / "memsim"
    for name, text in files.items():
        (fake / name).parent.mkdir(parents=True, exist_ok=True)
        (fake / name).write_text(text)
    return fake


def test_the_check_catches_upward_and_forbidden_imports(tmp_path):
    fake = fake_package(tmp_path, {"__init__.py": "", "units.py": "", "circuit/__init__.py": "",
                       "circuit/bias.py": "", "circuit/spice.py": "from ..bias import Bias\nfrom .. import bias\n",
                       "devices/__init__.py": "",
                       "devices/rram.py": "from .. import units\n\ndef f():\n    from ..solver import core\n",
                       "solver/__init__.py": "",
                       "solver/core.py": "from ..circuit.spice import run\nimport memsim.bias\n"})
    found = violations(fake, {"memsim.bias": "memsim.circuit.bias"})
    assert len(found) == 5, found
    assert found[0] == ("memsim/circuit/spice.py:1 imports memsim.bias, the old name of memsim.circuit.bias; "
                        "import that")
    assert found[1].startswith("memsim/circuit/spice.py:2 imports memsim.bias, the old name")
    assert found[2].startswith("memsim/devices/rram.py:4 (devices) imports memsim.solver.core (solver)")
    assert "the solver imports memsim.circuit.spice" in found[3]
    assert found[4].startswith("memsim/solver/core.py:2 imports memsim.bias, the old name")
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("nowhere.py", layers())


def private_reaches(package_dir: Path = PACKAGE) -> list[str]:
    """Imports of a private name (``_x``) or a private module from another of memsim's packages
    (a folder, or a module at the top): what one package needs of another is public and
    documented there."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        source = path.relative_to(package_dir)
        home = source.parts[0] if len(source.parts) > 1 else source.stem
        package = package_of(path, package_dir)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            parts = import_target(node, package).split(".")
            if parts[0] != "memsim" or len(parts) < 2 or parts[1] == home:
                continue
            names = [alias.name for alias in node.names]
            if any(part.startswith("_") for part in parts[2:]) or any(n.startswith("_") for n in names):
                found.append(f"memsim/{source}:{node.lineno} imports {', '.join(names)} from {'.'.join(parts)}")
    return found


def test_no_package_reaches_into_another_s_private_names():
    found = private_reaches()
    assert not found, "\n".join(found)


def test_the_private_name_check_catches_both_forms(tmp_path):
    fake = fake_package(tmp_path, {"__init__.py": "", "io.py": "", "nn/__init__.py": "",
                       "nn/tile.py": "from ..solver._batched import kernel\nfrom .mapping import _own\n",
                       "compensate/__init__.py": "",
                       "compensate/network.py": "def f():\n    from ..nn.analog import _generator, convert\n",
                       "solver/__init__.py": "from ._batched import kernel\n"})
    assert private_reaches(fake) == [
        "memsim/compensate/network.py:2 imports _generator, convert from memsim.nn.analog",
        "memsim/nn/tile.py:1 imports kernel from memsim.solver._batched"]


def import_graph(package_dir: Path = PACKAGE) -> dict[str, set[str]]:
    """Module file -> the module files it imports (paths relative to the package folder),
    deferred imports included.  Importing ``memsim.a.b`` runs ``memsim/a/__init__.py`` first,
    so a module outside the package ``memsim.a`` that imports ``memsim.a.b`` imports both."""
    graph = {}
    for path in sorted(package_dir.rglob("*.py")):
        source = str(path.relative_to(package_dir))
        here = package_of(path, package_dir) if path.name == "__init__.py" else \
            "memsim." + ".".join(path.relative_to(package_dir).with_suffix("").parts)
        targets = graph.setdefault(source, set())
        for target, _ in imports(path, package_dir, {}):
            parts = target.split(".")
            while len(parts) > 1 and module_file(".".join(parts), package_dir) is None:
                parts.pop()  # `from memsim.x import name` of a module that is not there: its package
            for depth in range(2, len(parts) + 1):
                dotted = ".".join(parts[:depth])
                inside = here == dotted or here.startswith(dotted + ".")
                if depth == len(parts) or not inside:
                    target_file = module_file(dotted, package_dir)
                    if target_file is not None and target_file != source:
                        targets.add(target_file)
    return graph


def import_cycles(package_dir: Path = PACKAGE) -> list[list[str]]:
    """The import circles among memsim's modules: each a sorted list of module files that
    import one another round (strongly connected components of the import graph)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = import_graph(package_dir)
    names = sorted(graph)
    index = {name: i for i, name in enumerate(names)}
    edges = [(index[a], index[b]) for a, targets in graph.items() for b in targets if b in index]
    rows, cols = zip(*edges) if edges else ((), ())
    matrix = coo_matrix(([1] * len(edges), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    groups = {}
    for name, label in zip(names, labels):
        groups.setdefault(label, []).append(name)
    return sorted(sorted(group) for group in groups.values() if len(group) > 1)


def test_no_import_circles():
    """Deferred imports count: a circle hidden in a function still ties the modules together."""
    cycles = import_cycles()
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(f"memsim/{m}" for m in c) for c in cycles)


def test_the_circle_check_sees_deferred_and_package_imports(tmp_path):
    fake = fake_package(tmp_path, {
        "__init__.py": "", "io.py": "",
        # a circle closed by a deferred import
        "study/__init__.py": "from .config import load\n", "study/config.py": "from .. import io\n",
        "study/runner.py": "from .worker import run\n",
        "study/worker.py": "def f():\n    from .tasks import call\n",
        "study/tasks.py": "from memsim.study import runner\n",
        # plots imports a module of the study package (which runs study/__init__.py), and that imports plots
        "plots.py": "from .study.config import load\n",
        "report/__init__.py": "def f():\n    from ..plots import figure\n",
        # a package importing its own modules, which import one another one way: no circle
        "cost/__init__.py": "from .network import total\n", "cost/network.py": "from .array import energy\n",
        "cost/array.py": "from . import config\n", "cost/config.py": ""})
    assert import_cycles(fake) == [["study/runner.py", "study/tasks.py", "study/worker.py"]]
    with (fake / "study" / "__init__.py").open("a") as handle:
        handle.write("def g():\n    from ..plots import figure\n")
    assert import_cycles(fake) == [["plots.py", "study/__init__.py"],
                                   ["study/runner.py", "study/tasks.py", "study/worker.py"]]
