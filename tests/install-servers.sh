#!/usr/bin/env bash
# Installs what the test suite's real local servers need on a fresh Debian or Ubuntu machine:
# Node.js and npm (Azurite), PostgreSQL (production instance), Chromium (what a person sees
# in the UI), ShellCheck (the CI pipelines' scripts), each only when missing, and Azurite
# itself (npm, into tests/azurite).
# System packages come without recommended extras and installed packages are not upgraded
# (--no-upgrade), except a dependency whose installed version is too old for a new package: apt
# must upgrade that one, and it is named before the install.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v npm >/dev/null || missing+=(nodejs npm)
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v shellcheck >/dev/null || missing+=(shellcheck)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-servers: missing ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  apt_install=(apt-get install -y -qq --no-install-recommends --no-upgrade)
  apt-get update -qq
  upgrades="$("${apt_install[@]}" --simulate "${missing[@]}" | awk '/^Inst [^ ]+ \[/ {print $2}')"
  if [ -n "$upgrades" ]; then
    echo "install-servers: ${missing[*]} need newer versions of:" $upgrades >&2
  fi
  DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" "${missing[@]}"
fi

if [ ! -x azurite/node_modules/.bin/azurite-blob ]; then
  npm ci --prefix azurite --no-audit --no-fund --loglevel=error
fi
