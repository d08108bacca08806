#!/usr/bin/env bash
# Installs what training needs on Debian: the fonts the synthetic plates are
# drawn in, and a Python virtual environment with pinned packages.
# Usage: training/setup.sh [VENV_DIR]   (default: training/.venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.venv}"
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -q
  apt-get install -y -q python3-venv fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 \
    fonts-freefont-ttf fonts-croscore fonts-crosextra-carlito fonts-roboto-unhinted \
    fonts-open-sans fonts-cantarell fonts-noto-mono fonts-urw-base35 \
    fonts-opendin fonts-league-spartan fonts-inter fonts-b612
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
echo "ready: $venv/bin/python"
