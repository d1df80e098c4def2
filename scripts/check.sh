#!/usr/bin/env bash
# Every test: host checks, the module built clean under clippy with no warning, then every
# VM selftest. Exits non-zero if anything fails.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

start=$(date +%s)
failed=()

step() {
	local name=$1
	shift
	orion_log "== $name"
	if ! "$@"; then
		failed+=("$name")
		orion_log "== $name: FAILED"
	fi
}

# Builds the module with CLIPPY=1 from clean; any compiler or clippy warning fails it.
module_clippy() {
	local log
	log=$(mktemp)
	make -C "$ORION_ROOT" -s clippy >"$log" 2>&1
	local rc=$?
	cat "$log"
	if [ $rc -ne 0 ] || grep -q 'warning' "$log"; then
		rm -f "$log"
		return 1
	fi
	rm -f "$log"
}

step "kernel build" bash "$ORION_ROOT/scripts/build-kernel.sh" >/dev/null
step "host checks" bash "$ORION_ROOT/scripts/host-check.sh"
step "module build (CLIPPY=1, no warnings)" module_clippy
# Every selftest in one boot: about 45 minutes on this 2-core machine kind (README), past
# vm-run.sh's default watchdog.
step "VM selftests" env ORION_VM_TIMEOUT="${ORION_VM_TIMEOUT:-4200}" \
	bash "$ORION_ROOT/scripts/vm-test.sh"
# The debug kernel (KASAN, lockdep, DEBUG_ATOMIC_SLEEP, kmemleak, UBSAN, fault injection):
# the allocation-failure test, which needs fault injection (15 minutes there). The rest
# stays on the release kernel here, to fit CI's 90 minutes on these machines (README: how
# the others are run on the debug kernel).
debug_tests=${ORION_DEBUG_TESTS:-fault_inject}
# shellcheck disable=SC2086 # the list is words
step "VM selftests on the debug kernel ($debug_tests)" env ORION_KERNEL_VARIANT=debug \
	ORION_OUT="$ORION_ROOT/build/vm-debug" bash "$ORION_ROOT/scripts/vm-test.sh" $debug_tests

elapsed=$(($(date +%s) - start))
if [ ${#failed[@]} -gt 0 ]; then
	orion_log "check FAILED in ${elapsed}s: ${failed[*]}"
	exit 1
fi
orion_log "check passed in ${elapsed}s"
