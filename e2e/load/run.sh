#!/usr/bin/env bash
# run.sh is the entry point of `make load`: a bounded load run of bin/imdsd
# against a bare net/http baseline on loopback. What it measures, the
# settings (LOAD_* environment variables) and the report are described in
# main.go; this wrapper only checks for wrk and runs it from the repo root.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v wrk >/dev/null; then
	echo "load: wrk not found: install it with 'apt-get install -y wrk'" >&2
	exit 1
fi
export LOAD_ENTRY="${LOAD_ENTRY:-e2e/load/run.sh}"
exec go run ./e2e/load "$@"
