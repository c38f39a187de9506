#!/usr/bin/env bash
# Install what memsim needs on a Debian machine, idempotently:
#   - ngspice (batch binary and shared library) and Fashion-MNIST (dataset-fashion-mnist)
#     from Debian, when missing;
#   - memsim itself, editable, with its test extra (torch pinned to 2.13.0: its CPU wheel;
#     an unpinned torch would pull gigabytes of CUDA packages).
# Run as root (or with sudo available).  Safe to run again: it skips what is present.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

need_apt=""
command -v ngspice >/dev/null 2>&1 || need_apt="yes"
ldconfig -p 2>/dev/null | grep -q 'libngspice.so ' || [ -e /usr/lib/x86_64-linux-gnu/libngspice.so ] || need_apt="yes"
[ -e /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || need_apt="yes"
if [ -n "$need_apt" ]; then
  echo "memsim install: installing ngspice and dataset-fashion-mnist from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq ngspice libngspice0 libngspice0-dev dataset-fashion-mnist >/dev/null
fi

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1 || ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "memsim install: installing python3 and pip from Debian" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-pip python3-dev >/dev/null
fi
PIP_FLAGS="-q --disable-pip-version-check"
# Debian's own python3 is "externally managed" (PEP 668): allow the install there.
if "$PY" -c "import sys, sysconfig, pathlib; sys.exit(0 if pathlib.Path(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED').exists() else 1)"; then
  PIP_FLAGS="$PIP_FLAGS --break-system-packages"
fi
if ! "$PY" -c "import memsim, numba, PySpice, pytest, torch, sklearn, mlxtend, tqdm" >/dev/null 2>&1 \
   || [ "$("$PY" -c 'import memsim, pathlib; print(pathlib.Path(memsim.__file__).resolve().parent.parent)' 2>/dev/null)" != "$(pwd)" ]; then
  echo "memsim install: pip install -e .[test]" >&2
  "$PY" -m pip install $PIP_FLAGS -e ".[test]"
fi
# Compile the fast solver's Numba kernels into their cache now (tens of seconds once), so the
# first solve of a new process only loads machine code; again after an update, quickly if nothing changed.
"$PY" -c "import time; import memsim.solver as s; t = time.perf_counter(); s.warm_up(); print(f'memsim install: solver kernels compiled (or loaded from the Numba cache) in {time.perf_counter() - t:.1f} s')" >&2
echo "memsim install: ready ($(ngspice -v 2>/dev/null | grep -o 'ngspice-[0-9.]*' | head -1), $("$PY" -c 'import memsim; print("memsim", memsim.__version__)'))" >&2
