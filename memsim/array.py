"""Moved to :mod:`memsim.circuit.array`; this name stays importable for users' scripts.

``import memsim.array`` gives the module memsim.circuit.array itself (one module object under both
names, so patching either patches both).  Nothing inside memsim imports this name.
"""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("memsim.circuit.array")
