#!/usr/bin/env bash
# CI: PostgreSQL server binaries for tests/test_tune_workers.py, which starts its own throwaway
# server (initdb + pg_ctl in a temporary folder, on a free local port) and skips with a reason
# where it cannot. Installs Debian's package when the binaries are missing; never fails CI.
set -uo pipefail

if command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "postgres.sh: no apt-get here; the PostgreSQL tuning test will be skipped" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! sudo -n true 2>/dev/null; then
    echo "postgres.sh: not root and no sudo; the PostgreSQL tuning test will be skipped" >&2
    exit 0
  fi
  sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
if $sudo apt-get update -qq >/dev/null &&
  $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null; then
  echo "postgres.sh: installed $(compgen -G '/usr/lib/postgresql/*/bin/initdb' | head -n1)"
else
  echo "postgres.sh: could not install postgresql; the PostgreSQL tuning test will be skipped" >&2
fi
exit 0
