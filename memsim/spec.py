"""Moved to :mod:`memsim.circuit.spec`; this name stays importable for users' scripts.

``import memsim.spec`` gives the module memsim.circuit.spec itself (one module object under both
names, so patching either patches both).  Nothing inside memsim imports this name.
"""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("memsim.circuit.spec")
