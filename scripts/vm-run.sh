#!/usr/bin/env bash
# Boots the guest kernel with the initramfs under QEMU (TCG) and runs one mode in it:
#   vm-run.sh test [TEST...]   selftests (default: all), TAP on stdout
#   vm-run.sh demo             the demo script
#   vm-run.sh bench            the benchmarks
#   vm-run.sh shell            an interactive shell on the serial console
# Exits non-zero if a test fails, the guest hangs (watchdog: ORION_VM_TIMEOUT seconds),
# or the guest kernel log shows an oops, BUG, WARN, KASAN, lockdep or a call trace.
# Guest disks are sparse files in $ORION_OUT (kept across boots when ORION_KEEP_DISKS=1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=${1:-test}
shift || true
tests=${*:-all}
out=${ORION_OUT:-$ORION_ROOT/build/vm}
timeout_s=${ORION_VM_TIMEOUT:-2400}
mkdir -p "$out"

kdir=$(bash "$ORION_ROOT/scripts/build-kernel.sh")
# The module must match the kernel variant being booted.
make -s -C "$ORION_ROOT" KDIR="$kdir" modules >&2
# The userspace tools the selftests drive (ORION_TOOLS_PREBUILT=1: the ones already in
# tools/target/release, while the tools' sources are being edited).
if [ "${ORION_TOOLS_PREBUILT:-0}" != 1 ]; then
	cargo build --quiet --release --manifest-path "$ORION_ROOT/tools/Cargo.toml" -p orion-thin -p orion-lvm -p orion-crash -p orion-fuzz >&2
fi
bash "$ORION_ROOT/scripts/build-initramfs.sh" "$kdir" "$out/initramfs.cpio"

drives=()
for i in 0 1 2 3; do
	img=$out/disk$i.img
	[ "${ORION_KEEP_DISKS:-0}" = 1 ] && [ -f "$img" ] || { rm -f "$img"; truncate -s 1G "$img"; }
	drives+=(-drive "file=$img,if=none,id=d$i,format=raw,cache=writeback" -device "virtio-blk-pci,drive=d$i,serial=orion$i")
done

console=$out/console.log
tap=$out/tap.log
: >"$console"
: >"$tap"
# IMA records dm table loads with their text (ima-buf), which the selftests compare.
append="console=ttyS0 panic=-1 ima_policy=critical_data ima_template=ima-buf"
append+=" orion.mode=$mode orion.tests=${tests// /,}"
# Cases per fuzz run and damaged metadata images (make reliability raises them).
append+=" orion.fuzz_cases=${ORION_FUZZ_CASES:-1500} orion.corrupt_cases=${ORION_CORRUPT_CASES:-160}"
append+=" orion.store_cases=${ORION_STORE_CASES:-120} orion.fi_exhaustive=${ORION_FI_EXHAUSTIVE:-0}"
# Under TCG a KASAN kernel on a busy host can leave the RCU kthread unscheduled for tens of
# seconds while unpacking the initramfs; allow that before calling it a stall.
if [ "$ORION_KERNEL_VARIANT" = debug ]; then
	append+=" rcupdate.rcu_cpu_stall_timeout=300"
	# -cpu max offers LA57 (5-level paging). Linux 6.12's identify_cpu() clears the boot
	# CPU's capability words before reading them again; an interrupt in that window finds
	# LA57 clear, KASAN's "has this address a shadow" test takes the 4-level layout, and a
	# lock in the 5-level direct map is reported as a wild-memory-access in handle_edge_irq
	# (a false positive, before /init; upstream thread "kasan: Fix
	# false-positive wild-memory-access on x86 under 5-level paging", 2026-06). It failed
	# CI once (2026-12-06); the debug kernel runs on 4-level paging.
	append+=" no5lvl"
fi
# The debug kernel boots on q35: the i440FX DSDT builds its PCI routing table (_PRT) in an
# AML While loop, and on this QEMU (7.2, TCG) the debug kernel's evaluation of it ran into
# ACPICA's 30 s loop timeout on four boots in a row, leaving the disks without routing and
# the guest hung before /init (Documentation/harness.md); q35's table is a static package.
# The release kernel never hung there and runs about 10% faster on i440FX ("pc").
machine=pc
[ "$ORION_KERNEL_VARIANT" = debug ] && machine=q35
machine=${ORION_VM_MACHINE:-$machine}
qemu=(qemu-system-x86_64 -machine "$machine" -accel tcg -cpu max -smp 2 -m 2G -no-reboot -display none
	-monitor none -kernel "$kdir/arch/x86/boot/bzImage" -initrd "$out/initramfs.cpio"
	"${drives[@]}")
# ORION_ICOUNT=N: the guest's clock counts instructions (2^N ns each), not host time, so a
# benchmark measures the instructions an I/O costs, free of this host's speed drift. The
# vCPUs then take turns on one host thread: work spread over CPUs gains nothing.
if [ -n "${ORION_ICOUNT:-}" ]; then
	[[ "$ORION_ICOUNT" =~ ^[0-9]+$ ]] || { orion_log "ORION_ICOUNT must be a shift (a number), not '$ORION_ICOUNT'"; exit 2; }
	qemu+=(-icount "shift=$ORION_ICOUNT,sleep=off")
	append+=" orion.icount=$ORION_ICOUNT"
fi
# The benchmark's settings (ORION_BENCH_RUNS=5 ...) as orion.bench_runs=5 ...
for v in $(compgen -v ORION_BENCH_); do
	name=${v#ORION_}
	append+=" orion.${name,,}=${!v}"
done
qemu+=(-append "$append")

if [ "$mode" = shell ]; then
	qemu+=(-serial mon:stdio -serial "file:$tap")
	exec "${qemu[@]}" -append "${append/console=ttyS0/console=ttyS0 loglevel=4}"
fi

qemu+=(-serial "file:$console" -serial "file:$tap")

# Boot watchdog: a guest that hangs in early boot, before our module or any test runs (as
# the ACPI trouble above did), is stopped and started again, up to ORION_VM_BOOT_ATTEMPTS
# times; the hung console is kept as console.boot-hang-N.log.
boot_timeout=${ORION_VM_BOOT_TIMEOUT:-240}
boot_attempts=${ORION_VM_BOOT_ATTEMPTS:-3}
booted() { grep -q 'Run /init as init process' "$console"; }
attempt=1
while :; do
	: >"$console"
	: >"$tap"
	timeout --signal=KILL "$timeout_s" "${qemu[@]}" &
	qpid=$!
	waited=0
	while kill -0 "$qpid" 2>/dev/null && ! booted && [ "$waited" -lt "$boot_timeout" ]; do
		sleep 2
		waited=$((waited + 2))
	done
	# Reached /init, or QEMU ended on its own (judged below like any run).
	if booted || ! kill -0 "$qpid" 2>/dev/null; then
		break
	fi
	cp "$console" "$out/console.boot-hang-$attempt.log"
	orion_log "guest kernel did not reach /init within ${boot_timeout}s (boot $attempt of $boot_attempts); last console lines:"
	tail -n 5 "$console" >&2
	# TERM, which timeout(1) passes on to QEMU (a KILL would end timeout and leave QEMU).
	kill -TERM "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	[ "$attempt" -lt "$boot_attempts" ] || break
	attempt=$((attempt + 1))
done
tail -n +1 -f --pid="$qpid" "$tap" 2>/dev/null &
tpid=$!
set +e
wait "$qpid"
qrc=$?
set -e
sleep 0.5
kill "$tpid" 2>/dev/null || true
wait "$tpid" 2>/dev/null || true

fail=0
if [ "$qrc" = 137 ]; then
	orion_log "watchdog: guest did not finish within ${timeout_s}s; killed"
	fail=1
fi
if ! grep -q '^ORION-DONE' "$tap"; then
	orion_log "guest did not report completion (crash or hang); last console lines:"
	tail -n 30 "$console" >&2
	fail=1
fi

# Any of these in the guest kernel log fails the run.
bad='Oops|BUG:|WARNING:|KASAN|UBSAN|Call Trace|INFO: possible|DEBUG_LOCKS_WARN_ON|suspicious RCU usage|possible recursive locking|circular locking|inconsistent lock state|sleeping function called from invalid context|Kernel panic|general protection fault|kmemleak: .*suspected memory leak|blocked for more than'
# Between the fault_inject test's markers, allocations fail on purpose, and the kernel's
# own reports of a failed vmalloc, page allocation or kmem_cache creation (with a call trace) are
# expected there: they are counted and left out; anything else still counts.
checked=$out/console.checked.log
awk -v dropped="$out/alloc-failure-reports" '
	/orion-selftest: allocation failures injected from here/ { inj = 1 }
	/orion-selftest: allocation failures injected until here/ { inj = 0 }
	inj && /(vmalloc error:|page allocation failure:|kmem_cache_create.*failed with error)/ { skip = 1; n++ }
	skip { if (/<\/TASK>/) skip = 0; next }
	{ print }
	END { print n + 0 >dropped }' "$console" >"$checked"
if [ "$(cat "$out/alloc-failure-reports")" != 0 ]; then
	orion_log "$(cat "$out/alloc-failure-reports") allocation-failure reports while faults were injected (expected)"
fi
if grep -Eq "$bad" "$checked"; then
	orion_log "guest kernel log shows a problem:"
	grep -En -B2 -A20 "$bad" "$checked" | head -n 80 >&2
	fail=1
fi

if [ "$mode" != test ] && ! grep -q '^ORION-DONE rc=0' "$tap"; then
	orion_log "the $mode failed"
	fail=1
fi
if [ "$mode" = test ]; then
	passed=$(grep -Ec '^ok [0-9]+ - ' "$tap" | tr -d ' ' || true)
	skipped=$(grep -Ec '^ok [0-9]+ - .*# SKIP' "$tap" || true)
	failed=$(grep -Ec '^not ok [0-9]+ - ' "$tap" || true)
	passed=$((passed - skipped))
	[ "$failed" = 0 ] || fail=1
	[ $((passed + failed)) -gt 0 ] || { orion_log "no test ran"; fail=1; }
	grep -E '^not ok ' "$tap" >&2 || true
	echo "vm: $passed passed, $failed failed, $skipped skipped"
fi
exit "$fail"
