#!/usr/bin/env bash
# Benchmarks (not tests): host-side thin metadata tools (orion-thin beside
# thin-provisioning-tools), then the VM in bench mode (fio, ours beside C). The markdown
# report is kept in build/bench/results.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out="$ORION_ROOT/build/bench"
mkdir -p "$out"
orion_log "thin metadata tools: restore/check/dump of ~1M mappings"
cargo build --quiet --release --manifest-path "$ORION_ROOT/tools/Cargo.toml" -p orion-thin
"$ORION_ROOT/tools/target/release/orion-thin-bench" | tee "$out/thin-tools.md"
bash "$ORION_ROOT/scripts/vm-run.sh" bench
{
	cat "$out/thin-tools.md"
	grep -E '^(###|\||IOPS)' "$ORION_ROOT/build/vm/tap.log"
} >"$out/results.md"
orion_log "report: build/bench/results.md"
