#!/usr/bin/env bash
# Prints the path of a uv to use, installing one into the project's .tools/ when none is on PATH.
# Works on Debian/Ubuntu Pythons that refuse system-wide pip installs (PEP 668): uv goes into a
# project-local virtual environment, or, where the venv module is missing (stock Debian without
# python3-venv), into a project-local folder with `pip install --target`, which PEP 668 allows.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"

if command -v uv >/dev/null 2>&1; then
  command -v uv
  exit 0
fi
for candidate in "$tools/uv-venv/bin/uv" "$tools/uv-target/bin/uv"; do
  if [ -x "$candidate" ]; then
    echo "$candidate"
    exit 0
  fi
done

python="$(command -v python3 || true)"
if [ -z "$python" ]; then
  echo "uv.sh: python3 is not on PATH; install Python 3.11 or newer." >&2
  exit 1
fi
mkdir -p "$tools"
if "$python" -m venv "$tools/uv-venv" >/dev/null 2>&1 && [ -x "$tools/uv-venv/bin/pip" ]; then
  "$tools/uv-venv/bin/pip" install --quiet --disable-pip-version-check uv >&2
  echo "$tools/uv-venv/bin/uv"
  exit 0
fi
rm -rf "$tools/uv-venv"
if "$python" -m pip --version >/dev/null 2>&1; then
  "$python" -m pip install --quiet --disable-pip-version-check --target "$tools/uv-target" uv >&2
  echo "$tools/uv-target/bin/uv"
  exit 0
fi
echo "uv.sh: this Python has neither the venv module nor pip. Install one of them" \
  "(Debian/Ubuntu: apt-get install python3-venv) and run the command again." >&2
exit 1
