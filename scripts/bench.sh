#!/usr/bin/env bash
# Benchmarks (not tests): boots the VM in bench mode and keeps the markdown report in
# build/bench/results.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$ORION_ROOT/build/bench"
bash "$ORION_ROOT/scripts/vm-run.sh" bench
grep -E '^(###|\||IOPS)' "$ORION_ROOT/build/vm/tap.log" >"$ORION_ROOT/build/bench/results.md"
orion_log "report: build/bench/results.md"
