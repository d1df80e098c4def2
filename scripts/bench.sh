#!/usr/bin/env bash
# Benchmarks (not tests): host-side thin metadata tools (orion-thin beside
# thin-provisioning-tools), then the VM in bench mode (fio, ours beside C). The markdown
# report is kept in build/bench/results.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out="$ORION_ROOT/build/bench"
mkdir -p "$out"
# ORION_BENCH=basic,snap,mirror runs only those sections of the guest benchmarks (profile:
# perf profiles of ours and C, only when named, folded into build/bench/profile.txt) (and
# skips the host-side tools).
sections=${ORION_BENCH:-}
: >"$out/thin-tools.md"
if [ -z "$sections" ]; then
	orion_log "thin metadata tools: restore/check/dump of ~1M mappings"
	cargo build --quiet --release --manifest-path "$ORION_ROOT/tools/Cargo.toml" -p orion-thin
	"$ORION_ROOT/tools/target/release/orion-thin-bench" | tee "$out/thin-tools.md"
fi
# The profile section needs perf in the guest.
case ",$sections," in *,profile,*) export ORION_PERF=1 ;; esac
# Every section in one boot takes longer than a test run's watchdog allows.
ORION_VM_TIMEOUT=${ORION_VM_TIMEOUT:-7200} bash "$ORION_ROOT/scripts/vm-run.sh" bench ${sections//,/ }
{
	cat "$out/thin-tools.md"
	# Without the raw profile samples (folded into profile.txt below).
	awk '/^#### PROFILE /{skip=1} !skip && !/^ORION-DONE/ {print} /^#### END/{skip=0}' \
		"${ORION_OUT:-$ORION_ROOT/build/vm}/tap.log"
} >"$out/results.md"
if [ "${ORION_PERF:-0}" = 1 ]; then
	python3 "$ORION_ROOT/scripts/perf-fold.py" "${ORION_OUT:-$ORION_ROOT/build/vm}/tap.log" >"$out/profile.txt"
	orion_log "profiles: build/bench/profile.txt"
fi
if grep -q ' (.*-.*) |' "$out/results.md"; then
	# The plot of every ratio row (matplotlib from PyPI, installed for the user if missing).
	python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet --user matplotlib
	python3 "$ORION_ROOT/scripts/bench-plot.py" "$out/results.md" "$out/ratios.png"
	orion_log "report: build/bench/results.md, plot: build/bench/ratios.png"
fi
