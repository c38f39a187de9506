"""Lazy package attributes: ``import memsim`` (and its subpackages) stays cheap because the
modules behind their public names load on first use.  Moved modules keep their old names
importable (``keep_old_names``)."""
from __future__ import annotations

import importlib
import importlib.util
import sys


def lazy_getattr(package: str, namespace: dict, table: dict):
    """A module ``__getattr__`` for ``package``: ``table`` maps a public name to
    ``(module, attribute)``, attribute None for the module itself; the value is cached in
    ``namespace`` (the package's globals) after the first lookup."""

    def __getattr__(name):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, attribute = table[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        namespace[name] = value
        return value

    return __getattr__


class _OldNames:
    """Import finder and loader for module names that moved: importing an old name runs nothing
    and puts the module under its new name in ``sys.modules`` under the old name too (the import
    system then hands that object out), so both names are one module object."""

    def __init__(self, moved: dict[str, str]):
        self.moved = dict(moved)

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in self.moved else None

    def create_module(self, spec):
        return None  # the import system's default module, replaced in exec_module

    def exec_module(self, module):
        sys.modules[module.__name__] = importlib.import_module(self.moved[module.__name__])


def keep_old_names(moved: dict[str, str]) -> None:
    """Make ``import old`` give the module ``new`` for every ``old: new`` in ``moved`` (full
    dotted names), for users' scripts written before a module moved.  Installed once per set of
    names; a later call with the same names (a reload of the package) replaces it."""
    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if not (isinstance(finder, _OldNames) and finder.moved.keys() == moved.keys())]
    sys.meta_path.insert(0, _OldNames(moved))
