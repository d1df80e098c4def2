# thin devices with an external origin, ours beside C: unmapped blocks read from the origin
# (zeroes past its end), writes copy the origin's block first (whole, straddling the end,
# beyond it, whole-block overwrites), snapshots of such a device, tables and refusals.

modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
load_orion orion-
ramdisks 5 64
thin_pair
origin=/dev/ram4
# The origin: 20 MiB + 40 KiB of random data, so one 64 KiB block straddles its end.
osize=$(((20 << 11) + 80))
dm_create t.origin "0 $osize linear $origin 0"
head -c $((osize * 512)) /dev/urandom >/tmp/t.orig
dd if=/tmp/t.orig of=/dev/mapper/t.origin bs=64k oflag=direct 2>/dev/null
blockdev --setro /dev/mapper/t.origin


for s in o c; do
	dd if=/dev/zero of="$(meta_for $s)" bs=4k count=1 2>/dev/null
	dm_create t.${s}pool "0 $plen $(prefix_for $s)thin-pool $(meta_for $s) $(data_for $s) 128 16"
	dmsetup message t.${s}pool 0 "create_thin 1"
	dm_create t.${s}1 "0 65536 $(prefix_for $s)thin /dev/mapper/t.${s}pool 1 /dev/mapper/t.origin"
done
check_eq "thin with an external origin: table as C's (devices aside)" \
	"$(table_of t.c1 | cut -d' ' -f1-3,5)" "$(table_of t.o1 | cut -d' ' -f1-3,5)"
check_eq "the table names the origin" "$(dmsetup table t.c1 | cut -d' ' -f6)" "$(dmsetup table t.o1 | cut -d' ' -f6)"
reads_origin_then_zeroes() {
	cmp -n $((osize * 512)) /dev/mapper/t.o1 /tmp/t.orig && is_zero /dev/mapper/t.o1 $osize $((65536 - osize))
}
check "unwritten: reads the origin, then zeroes past its end (ours)" reads_origin_then_zeroes
check "unwritten: the same bytes as C's" same_bytes /dev/mapper/t.o1 /dev/mapper/t.c1 $((32 << 20))

head -c 4096 /dev/urandom >/tmp/t.small
head -c 65536 /dev/urandom >/tmp/t.whole
for s in o c; do
	# Inside the origin, straddling its end (block 320), past it, and a whole block.
	dd if=/tmp/t.small of=/dev/mapper/t.${s}1 bs=512 seek=1001 oflag=direct 2>/dev/null
	dd if=/tmp/t.small of=/dev/mapper/t.${s}1 bs=512 seek=$((320 * 128 + 16)) oflag=direct 2>/dev/null
	dd if=/tmp/t.small of=/dev/mapper/t.${s}1 bs=512 seek=$((400 * 128 + 5)) oflag=direct 2>/dev/null
	dd if=/tmp/t.whole of=/dev/mapper/t.${s}1 bs=64k seek=7 oflag=direct 2>/dev/null
done
check "after writes: the same bytes as C's" same_bytes /dev/mapper/t.o1 /dev/mapper/t.c1 $((32 << 20))
check "a partial write keeps the rest of the origin's block" same_region /dev/mapper/t.o1 1024 100 /tmp/t.orig 1024
check_eq "written: thin status as C's" "$(status_of t.c1)" "$(status_of t.o1)"

# A snapshot of the thin device, given the same origin, then writes to the origin thin.
for s in o c; do
	dmsetup suspend t.${s}1
	dmsetup message t.${s}pool 0 "create_snap 2 1"
	dmsetup resume t.${s}1
	dm_create t.${s}2 "0 65536 $(prefix_for $s)thin /dev/mapper/t.${s}pool 2 /dev/mapper/t.origin"
	dd if=/tmp/t.whole of=/dev/mapper/t.${s}1 bs=4k seek=100 count=4 oflag=direct 2>/dev/null
done
check "the snapshot reads the same bytes as C's" same_bytes /dev/mapper/t.o2 /dev/mapper/t.c2 $((32 << 20))
check "the origin thin after more writes: the same bytes as C's" same_bytes /dev/mapper/t.o1 /dev/mapper/t.c1 $((32 << 20))
check "fio verify on a thin device with an external origin" fio_verify /dev/mapper/t.o2 \
	--rw=randwrite --bs=4k --size=30M --iodepth=16 --ioengine=libaio
bad_table thin "65536 /dev/mapper/t.opool 1 /dev/mapper/t.opool" "the pool as its own origin"
for s in o c; do dmsetup remove t.${s}2 t.${s}1 t.${s}pool; done
check "thin_check accepts our metadata" thin_check -q $om
dmsetup remove t.origin
unload_orion
