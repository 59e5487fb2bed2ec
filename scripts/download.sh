#!/usr/bin/env bash
# Download and check a competition's files: scripts/download.sh <competition> [--data-dir DIR] [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m pipeline.download "$@"
