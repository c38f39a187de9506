"""Lazy package attributes: ``import memsim`` (and its subpackages) stays cheap because the
modules behind their public names load on first use."""
from __future__ import annotations

import importlib


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
