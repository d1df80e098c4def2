# Damaged thin-pool metadata loaded by our pool (orion-fuzz metadata): a pristine image with
# thin devices, a snapshot, broken sharing and a held metadata snapshot, then one damage per
# case (bits flipped with and without a valid checksum, zeroed and torn blocks, blocks copied
# over others, huge values in nodes, superblock fields). Each case loads a pool on it and
# drives it (status, a message, a thin device, a read and a write). Passes when the kernel
# logs no bug report, no case hangs, and every refusal says why. Cases: orion.corrupt_cases
# on the kernel command line (make reliability raises it).

cases=160
for arg in $(cat /proc/cmdline); do
	case "$arg" in orion.corrupt_cases=*) cases=${arg#orion.corrupt_cases=} ;; esac
done
echo on >/proc/sys/kernel/printk_devkmsg
load_orion
ramdisks 2 64
dm_create tc-meta "0 16384 linear /dev/ram0 0"
meta=/dev/mapper/tc-meta data=/dev/ram1
dd if=/dev/zero of=$meta bs=4k count=1 oflag=direct 2>/dev/null
pool="0 $(sectors $data) orion-thin-pool $meta $data 128 0"
dm_create tc-pool "$pool"
dmsetup message tc-pool 0 "create_thin 1"
dmsetup message tc-pool 0 "create_thin 2"
dm_create tc-thin1 "0 32768 orion-thin /dev/mapper/tc-pool 1"
dm_create tc-thin2 "0 32768 orion-thin /dev/mapper/tc-pool 2"
head -c $((8 << 20)) /dev/urandom | dd of=/dev/mapper/tc-thin1 bs=64k oflag=direct 2>/dev/null
head -c $((4 << 20)) /dev/urandom | dd of=/dev/mapper/tc-thin2 bs=64k seek=100 oflag=direct 2>/dev/null
dmsetup suspend tc-thin1
dmsetup message tc-pool 0 "create_snap 3 1"
dmsetup resume tc-thin1
head -c $((2 << 20)) /dev/urandom | dd of=/dev/mapper/tc-thin1 bs=64k seek=16 oflag=direct 2>/dev/null
dmsetup message tc-pool 0 "reserve_metadata_snap"
dmsetup remove tc-thin1 tc-thin2
dmsetup remove tc-pool
dd if=$meta of=/tmp/tc.pristine bs=1M iflag=direct 2>/dev/null
check "corrupt: the pristine image passes thin_check" thin_check /tmp/tc.pristine

orion-fuzz metadata --image /tmp/tc.pristine --meta $meta --data $data --cases "$cases" >/tmp/tc.out 2>&1
rc=$?
sed -n '/^# metadata:/p;/^# [0-9.]* s;/p' /tmp/tc.out
check_eq "corrupt: $cases damaged images loaded, no bug report in the kernel log (exit 0)" 0 "$rc"
[ "$rc" = 0 ] || tail -20 /tmp/tc.out | sed 's/^/# /'
grep '^# case' -A12 /tmp/tc.out | head -80
check_eq "corrupt: every refusal carries a ti->error line" "silent=0" \
	"$(grep -o 'silent=[0-9]*' /tmp/tc.out)"
# The pristine image still loads and reads back after all that.
dd if=/tmp/tc.pristine of=$meta bs=1M oflag=direct 2>/dev/null
dm_create tc-pool "$pool"
check "corrupt: the pristine image loads read-write afterwards" \
	sh -c "dmsetup status tc-pool | grep -qw rw"
dmsetup remove tc-pool
echo ratelimit >/proc/sys/kernel/printk_devkmsg
