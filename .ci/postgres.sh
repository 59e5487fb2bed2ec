#!/usr/bin/env bash
# CI: PostgreSQL server binaries for tests/test_tune_workers.py, which starts its own throwaway
# server (initdb + pg_ctl in a temporary folder, on a free local port) and skips with a reason
# where it cannot. Installs Debian's package when the binaries are missing; never fails CI.
set -uo pipefail
# shellcheck source=.ci/apt.sh
. "$(dirname "$0")/apt.sh"

have() {
  command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

have || apt_install postgres.sh "the PostgreSQL tuning test" postgresql
exit 0
