#!/usr/bin/env bash
# Installs everything horq-codegen needs on a fresh Debian machine, and nothing twice:
# Debian packages (compilers, QEMU), a virtual environment with torch==2.13.0 (CPU)
# installed before anything that could pull a CUDA build, then the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
DEBIAN_PACKAGES=(
  make gcc g++ libc6-dev python3 python3-venv
  gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
  qemu-user gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
  cmake
  llvm-19  # llvm-mca-19: the estimated cycles (bench --cycles); pinned: its scheduling models are part of the figures
  chromium  # headless: tests/test_report.py renders the report page in it (no console errors, not blank)
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp="$VENV/.horq-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: preparing the virtual environment in $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # First and alone: this exact version is a CPU wheel; any other spec may pull CUDA.
  "$VENV/bin/python" -m pip install -q torch==2.13.0
  "$VENV/bin/python" -m pip install -q -e '.[test]'
  rm -f "$VENV"/.horq-setup-*
  touch "$stamp"
fi
