#!/usr/bin/env bash
# Benchmarks (not tests): host-side thin metadata tools (orion-thin beside
# thin-provisioning-tools), then the VM in bench mode (fio, ours beside C). The markdown
# report is kept in build/bench/results.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out="$ORION_ROOT/build/bench"
mkdir -p "$out"
# ORION_BENCH=basic,snap,mirror runs only those sections of the guest benchmarks (and
# skips the host-side tools).
sections=${ORION_BENCH:-}
: >"$out/thin-tools.md"
if [ -z "$sections" ]; then
	orion_log "thin metadata tools: restore/check/dump of ~1M mappings"
	cargo build --quiet --release --manifest-path "$ORION_ROOT/tools/Cargo.toml" -p orion-thin
	"$ORION_ROOT/tools/target/release/orion-thin-bench" | tee "$out/thin-tools.md"
fi
bash "$ORION_ROOT/scripts/vm-run.sh" bench ${sections//,/ }
{
	cat "$out/thin-tools.md"
	grep -v '^ORION-DONE' "${ORION_OUT:-$ORION_ROOT/build/vm}/tap.log"
} >"$out/results.md"
# The plot of every ratio row (matplotlib from PyPI, installed for the user if missing).
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet --user matplotlib
python3 "$ORION_ROOT/scripts/bench-plot.py" "$out/results.md" "$out/ratios.png"
orion_log "report: build/bench/results.md, plot: build/bench/ratios.png"
