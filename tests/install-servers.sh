#!/usr/bin/env bash
# Installs what the test suite's real local servers need on a fresh machine:
# Node.js and npm (Azurite), PostgreSQL (production instance), Chromium (what a person sees
# in the UI), ShellCheck (the CI pipelines' scripts), and Azurite itself.
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
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}"
fi

if [ ! -x azurite/node_modules/.bin/azurite-blob ]; then
  npm ci --prefix azurite --no-audit --no-fund --loglevel=error
fi
