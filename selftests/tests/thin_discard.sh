# thin discards: ours beside C on identical ramdisks, for each discard feature of the pool:
# queue limits, what a discard unmaps (whole blocks only), what reaches the data device (only
# blocks no snapshot still maps), status lines, and the data left readable.

modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
load_orion orion-
ramdisks 4 64
thin_pair



# zero_blocks DEV: how many of the first 256 blocks (64 KiB) of DEV read as zeroes (the
# pools allocate 160).
zero_blocks() {
	n=0
	i=0
	total=256
	while [ $i -lt $total ]; do
		dd if="$1" bs=64k skip=$i count=1 iflag=direct 2>/dev/null | cmp -s - /tmp/t.zero64k && n=$((n + 1))
		i=$((i + 1))
	done
	echo $n
}
head -c 65536 /dev/zero >/tmp/t.zero64k
head -c $((8 << 20)) /dev/urandom >/tmp/t.data

# run FEATURES: both pools with FEATURES; writes, a snapshot, partial rewrites, discards.
run() {
	feat=$1
	for s in o c; do
		dd if=/dev/zero of="$(meta_for $s)" bs=4k count=1 2>/dev/null
		# The data device starts non-zero so that passed-down blocks show.
		tr '\000' '\132' </dev/zero | dd of="$(data_for $s)" bs=1M count=64 iflag=fullblock 2>/dev/null
		dm_create t.${s}pool "0 $plen $(prefix_for $s)thin-pool $(meta_for $s) $(data_for $s) 128 16 $feat"
		dmsetup message t.${s}pool 0 "create_thin 1"
		dm_create t.${s}1 "0 131072 $(prefix_for $s)thin /dev/mapper/t.${s}pool 1"
		dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k oflag=direct 2>/dev/null
		dmsetup suspend t.${s}1
		dmsetup message t.${s}pool 0 "create_snap 2 1"
		dmsetup resume t.${s}1
		# Blocks 0-31 are broken out of sharing; 32-127 stay shared with the snapshot.
		dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k count=32 oflag=direct 2>/dev/null
		dm_create t.${s}2 "0 131072 $(prefix_for $s)thin /dev/mapper/t.${s}pool 2"
	done
	check "[$feat] thin queue limits identical to C's" same_limits t.o1 t.c1
	check "[$feat] pool queue limits identical to C's" same_limits t.opool t.cpool
	for s in o c; do
		# Whole blocks 0-47 (unshared 0-31, shared 32-47), less than a block, and a range
		# with partial head and tail blocks (only 100-101 whole).
		blkdiscard -o 0 -l $((3 << 20)) /dev/mapper/t.${s}1 2>/tmp/t.err.$s
		blkdiscard -o $((80 << 16)) -l 4096 /dev/mapper/t.${s}1 2>>/tmp/t.err.$s
		blkdiscard -o $(((99 << 16) + 8192)) -l $((3 << 16)) /dev/mapper/t.${s}1 2>>/tmp/t.err.$s
		# A discard of the snapshot too: its blocks 120-127 are still mapped by the origin,
		# so they are unmapped but not passed down.
		blkdiscard -o $((120 << 16)) -l $((8 << 16)) /dev/mapper/t.${s}2 2>>/tmp/t.err.$s
		sync
	done
	check_eq "[$feat] blkdiscard: same result as C's" "$(cat /tmp/t.err.c)" "$(sed 's/t\.o/t.c/' /tmp/t.err.o)"
	check_eq "[$feat] thin status after discards identical to C's" \
		"$(status_of t.c1; status_of t.c2)" "$(status_of t.o1; status_of t.o2)"
	check_eq "[$feat] pool status after discards identical to C's" \
		"$(pool_status t.cpool)" "$(pool_status t.opool)"
	check "[$feat] the origin reads the same bytes as C's" same_bytes /dev/mapper/t.o1 /dev/mapper/t.c1 $((64 << 20))
	check "[$feat] the snapshot reads the same bytes as C's" same_bytes /dev/mapper/t.o2 /dev/mapper/t.c2 $((64 << 20))
	check "[$feat] the snapshot keeps the blocks the origin discarded" \
		same_region /dev/mapper/t.o2 0 $((48 * 128)) /tmp/t.data
	check "[$feat] the origin keeps the blocks the snapshot discarded" \
		same_region /dev/mapper/t.o1 $((120 * 128)) $((8 * 128)) /tmp/t.data $((120 * 128))
	for s in o c; do
		dmsetup remove t.${s}2 t.${s}1 t.${s}pool
	done
	check_eq "[$feat] blocks passed down to the data device: as many as C's" \
		"$(zero_blocks $cd)" "$(zero_blocks $od)"
	check "[$feat] thin_check accepts our metadata" thin_check -q $om
}

run ""
run "1 no_discard_passdown"
run "1 ignore_discard"
# A data device that cannot discard: passdown is turned off with C's warning.
echo 0 >/sys/block/ram1/queue/discard_max_bytes
echo 0 >/sys/block/ram3/queue/discard_max_bytes
dmesg -c >/dev/null
run ""
check_eq "a data device without discards: passdown disabled with C's warning" \
	"$(dmesg | grep -c 'Data device (ram3) discard unsupported: Disabling discard passdown')" \
	"$(dmesg | grep -c 'Data device (ram1) discard unsupported: Disabling discard passdown')"
unload_orion
