# Table and message fuzzing, ours beside the C targets in the same kernel (orion-fuzz):
# every target's table lines mutated (numbers at and past limits, arguments dropped, repeated,
# swapped, cut, unknown words, missing/repeated/huge devices, odd lengths) and thin-pool
# messages. Passes when the kernel logs no bug report, every valid template is accepted by
# ours, and ours gives C's verdict, errno and ti->error on every case. Cases per run:
# orion.fuzz_cases on the kernel command line (make reliability raises it).

cases=1500
for arg in $(cat /proc/cmdline); do
	case "$arg" in orion.fuzz_cases=*) cases=${arg#orion.fuzz_cases=} ;; esac
done

# orion-fuzz logs a marker after each case to close the records it reads: no rate limit on
# writes to /dev/kmsg.
echo on >/proc/sys/kernel/printk_devkmsg
modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
modprobe dm-snapshot || die "modprobe dm-snapshot failed"
modprobe dm-mirror || die "modprobe dm-mirror failed"
load_orion
ramdisks 12 64
# C: ram0-3 and a pool on ram8/ram9; ours: ram4-7 and a pool on ram10/ram11.
for side in c o; do
	if [ $side = c ]; then meta=/dev/ram8 data=/dev/ram9 pt=thin-pool; else meta=/dev/ram10 data=/dev/ram11 pt=orion-thin-pool; fi
	dd if=/dev/zero of=$meta bs=4k count=1 2>/dev/null
	dm_create fz$side-pool "0 $(sectors $data) $pt $meta $data 128 0" || die "pool $side"
	dmsetup message fz$side-pool 0 "create_thin 1" || die "create_thin $side"
done
devs_c=/dev/ram0,/dev/ram1,/dev/ram2,/dev/ram3
devs_o=/dev/ram4,/dev/ram5,/dev/ram6,/dev/ram7
common="--show 100 --seed ${ORION_FUZZ_SEED:-1} --c-devs $devs_c --o-devs $devs_o --c-pool /dev/mapper/fzc-pool --o-pool /dev/mapper/fzo-pool"

orion-fuzz tables --cases "$cases" $common >/tmp/fz.tables 2>&1
rc=$?
sed -n '/^# tables:/p;/^# [0-9.]* s;/p' /tmp/fz.tables
check_eq "fuzz: $cases table cases ran, no bug report in the kernel log (exit 0)" 0 "$rc"
grep -q '^SUMMARY tables' /tmp/fz.tables || cat /tmp/fz.tables | tail -5 | sed 's/^/# /'
diffs=$(sed -n 's/^SUMMARY tables cases=[0-9]* differences=//p' /tmp/fz.tables)
if [ "$diffs" = 0 ]; then
	tap_ok "fuzz: every table verdict, errno and ti->error equal to C's"
else
	tap_not_ok "fuzz: every table verdict, errno and ti->error equal to C's" "$diffs cases differ:" "$(grep '^#' /tmp/fz.tables | head -400)"
fi
check_eq "fuzz: every valid template accepted by ours" "" "$(grep -o 'valid template refused by ours [0-9]*' /tmp/fz.tables)"

mcases=$((cases / 5))
orion-fuzz messages --cases "$mcases" $common >/tmp/fz.messages 2>&1
rc=$?
sed -n '/^# messages:/p' /tmp/fz.messages
check_eq "fuzz: $mcases pool messages, no bug report (exit 0)" 0 "$rc"
diffs=$(sed -n 's/^SUMMARY messages cases=[0-9]* differences=//p' /tmp/fz.messages)
if [ "$diffs" = 0 ]; then
	tap_ok "fuzz: every pool message's result and log equal to C's"
else
	tap_not_ok "fuzz: every pool message's result and log equal to C's" "$diffs messages differ:" "$(grep '^#' /tmp/fz.messages | head -300)"
fi
# Our pool still works after all that: a new thin device reads back what is written.
dmsetup message fzo-pool 0 "create_thin 77"
dm_create fzo-thin "0 8192 orion-thin /dev/mapper/fzo-pool 77"
head -c 1048576 /dev/urandom >/tmp/fz.data
dd if=/tmp/fz.data of=/dev/mapper/fzo-thin bs=64k conv=fsync 2>/dev/null
check "fuzz: our pool still serves a thin device afterwards" cmp -n 1048576 /tmp/fz.data /dev/mapper/fzo-thin
# The debug kernel: nothing the fuzzing allocated is left unreferenced.
if has_kmemleak; then
	check_eq "fuzz: kmemleak finds no leak after the run" "" "$(kmemleak_report)"
fi
echo ratelimit >/proc/sys/kernel/printk_devkmsg
