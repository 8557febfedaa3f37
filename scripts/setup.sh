#!/usr/bin/env bash
# Prepare this checkout: system packages (with --system), then .venv with every Misto
# distribution installed editable at the versions pinned in constraints.txt.
# Safe to run again: it only does what is missing.
#   scripts/setup.sh            Python environment only (enough for `make demo`)
#   scripts/setup.sh --system   also the Debian packages the tests need (scripts/system-packages.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${MISTO_VENV:-$ROOT/.venv}

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31msetup:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $* (run as root or install sudo)"; fi
}

apt_install() {
  # apt_install PACKAGE... : install on Debian/Ubuntu, or say exactly what to install elsewhere.
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing: $*. This is not a Debian/Ubuntu machine: install these with your package manager, then run this again."
  fi
  say "installing Debian packages: $*"
  if [ -z "${MISTO_APT_UPDATED:-}" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    MISTO_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

system_packages() {
  local missing=() pkg cmd
  while read -r pkg cmd; do
    case "$pkg" in ''|'#'*) continue ;; esac
    # cmd: a command on PATH (or in /usr/sbin), or an absolute path pattern of a file the package installs
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || compgen -G "$cmd" >/dev/null || missing+=("$pkg")
  done < scripts/system-packages.txt
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

find_python() {
  local candidate
  for candidate in "${MISTO_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

python_env() {
  local py stamp
  py=$(find_python) || die "Python 3.11 or newer is needed (Debian/Ubuntu: apt-get install python3 python3-venv)."
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv
      "$py" -m venv "$VENV"
    fi
  fi
  stamp="$VENV/.misto-installed"
  if [ -f "$stamp" ] && [ -z "$(find constraints.txt requirements-dev.txt */pyproject.toml -newer "$stamp" 2>/dev/null)" ]; then
    return 0
  fi
  say "installing Python packages into $VENV (pinned by constraints.txt)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
    -e ./protocol -e "./edge[camera]" -e ./firmware-sim -e ./cloud -r requirements-dev.txt
  touch "$stamp"
}

case "${1:-}" in
  --system) system_packages; python_env ;;
  "") python_env ;;
  *) die "usage: scripts/setup.sh [--system]" ;;
esac
