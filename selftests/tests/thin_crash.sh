# thin_crash: power cuts of a thin pool, replayed from a dm-log-writes log; first on the C
# thin-pool/thin, then on orion-thin-pool/orion-thin.
#
# One ramdisk is the pool's disk. dm-log-writes over it logs every write to a second
# ramdisk in the order the writes became durable (a write is logged once a later flush
# completes); two linear devices over the log-writes device are the pool's metadata and
# data devices, so one log orders the writes to both. `orion-crash write` writes stamped
# 4 KiB blocks to a thin device, flushing every few writes, and the log gets a mark
# flush-N after flush N returned (and a thin snapshot is taken halfway). The data area
# starts as a marker byte pattern, so a block the pool maps before writing (or zeroing)
# it shows.
#
# Then `orion-crash walk` replays the log forward on a third ramdisk, each stretch once.
# At each cut point (every flush, FUA write and mark, and a random entry between two of
# them, thinned at random to MAX_CUTS) the ramdisk holds what a power cut there would have
# left. A transient dm-snapshot of it takes a new pool's writes; thin_check must pass, the
# pool and thin device must load, and every block of the thin device must be as flush N
# (the last mark before the cut) acknowledged it, or as written since, and nothing that
# was never written there.

modprobe dm-log-writes || die "modprobe dm-log-writes failed"
modprobe dm-snapshot || die "modprobe dm-snapshot failed"
modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"

# The sizes and counts; a wrapper test may set CRASH_WRITES and CRASH_MAX_CUTS for a
# shorter run (the check of 500 cut points then fails).
META_MIB=4
DATA_MIB=64
THIN_MIB=8
WRITES=${CRASH_WRITES:-1200}
FLUSH_EVERY=8
MAX_CUTS=${CRASH_MAX_CUTS:-560}
BACKGROUND_FLUSH_MS=20
STATE=/tmp/t.state
meta_len=$((META_MIB * 2048))
data_len=$((DATA_MIB * 2048))
total=$((meta_len + data_len))
thin_len=$((THIN_MIB * 2048))
snap_at=$((WRITES / FLUSH_EVERY / 2))
reject_at=$((WRITES / FLUSH_EVERY / 3))
base=/dev/ram0 logdev=/dev/ram1 replay=/dev/ram2 cow=/dev/ram3 cow2=/dev/ram4

crash_setup

# prepare DEV: the disk before the test: zeroes in the first metadata block (a new pool
# formats its metadata), marker bytes over the data area.
prepare() {
	dd if=/dev/zero of="$1" bs=4k count=1 oflag=direct 2>/dev/null &&
		for i in $(seq 1 $DATA_MIB); do cat /tmp/t.marker; done |
		dd of="$1" bs=1M seek=$META_MIB iflag=fullblock oflag=direct 2>/dev/null
}

# crash_run LABEL POOL_TARGET THIN_TARGET
crash_run() {
	label=$1 pool_t=$2 thin_t=$3
	t0=$(date +%s)
	ramdisks 5 192
	prepare $base && prepare $replay || die "cannot prepare the ramdisks"

	# The stack under test, logged.
	dm_create t.lw "0 $total log-writes $base $logdev"
	dm_create t.meta "0 $meta_len linear /dev/mapper/t.lw 0"
	dm_create t.data "0 $data_len linear /dev/mapper/t.lw $meta_len"
	dm_create t.pool "0 $data_len $pool_t /dev/mapper/t.meta /dev/mapper/t.data 128 0"
	dmsetup message t.pool 0 "create_thin 0"
	dm_create t.thin "0 $thin_len $thin_t /dev/mapper/t.pool 0"
	cat >/tmp/t.hook <<-EOF
		dmsetup message t.lw 0 mark flush-\$N || exit 1
		[ "\$N" = $snap_at ] || exit 0
		dmsetup suspend t.thin && dmsetup message t.pool 0 "create_snap 1 0" &&
			dmsetup resume t.thin && dmsetup message t.lw 0 mark snap
	EOF
	check "$label: workload of $WRITES writes, a flush every $FLUSH_EVERY and a mark after each, a snapshot at flush $snap_at" \
		orion-crash write /dev/mapper/t.thin --state $STATE --writes $WRITES \
		--flush-every $FLUSH_EVERY --seed 1 --after-flush "sh /tmp/t.hook" \
		--aligned-percent 15 --background-flush $BACKGROUND_FLUSH_MS
	last_flush=$(awk '$1 == "f" { n = $2 } END { print n }' $STATE)
	dmsetup remove t.thin t.pool t.data t.meta t.lw
	t1=$(date +%s)

	orion-crash walk $logdev $replay --cow $cow --cow $cow2 --state $STATE \
		--meta-sectors $meta_len --data-sectors $data_len --thin-sectors $thin_len \
		--block-size 128 --pool-target "$pool_t" --thin-target "$thin_t" --thin-id 0 \
		--snapshot-id 1 --snapshot-mark snap --start-mark flush-0 --max-cuts $MAX_CUTS \
		--marker-byte 0xa5 >/tmp/t.walk 2>&1
	rc=$?
	t2=$(date +%s)
	summary=$(grep '^walk: ' /tmp/t.walk)
	cuts=$(echo "$summary" | sed -n 's/^walk: \([0-9]*\) cut points.*/\1/p')
	after_snap=$(echo "$summary" | sed -n 's/.*, \([0-9]*\) after the snapshot mark$/\1/p')
	if [ "$rc" -le 1 ] && [ -n "$cuts" ]; then
		tap_ok "$label: the walk replays the log and brings the pool up at every cut point"
	else
		tap_not_ok "$label: the walk replays the log and brings the pool up at every cut point" \
			"exit $rc" "$(grep -v '^FAIL' /tmp/t.walk | tail -n 5)"
	fi
	check "$label: ${cuts:-no} cut points ($(echo "$summary" | sed -n 's/^walk: [0-9]* cut points at //p'))" \
		test "${cuts:-0}" -ge 500
	report "$label: ${cuts:-no} cut points, thin_check clean at all" check
	report "$label: the pool and thin device load at all cut points" activate
	report "$label: no acknowledged write lost (every block holds what its last flush acknowledged, or newer) at any cut point" lost
	report "$label: no marker, foreign, misplaced, torn or later data read at any cut point" foreign
	report "$label: the snapshot holds exactly flush $snap_at's data at all ${after_snap:-0} cut points after it" snapshot

	# The verifier must reject what is wrong: the disk cut at flush-R checked as if flush
	# R + 2 had been acknowledged (those writes are not there), and the pool's raw data
	# device (blocks out of place, marker bytes).
	prepare $replay &&
		orion-crash replay $logdev $replay --to-mark flush-$reject_at >/dev/null ||
		die "cannot replay to flush-$reject_at"
	dm_create t.rs "0 $total snapshot $replay $cow N 8"
	dm_create t.rm "0 $meta_len linear /dev/mapper/t.rs 0"
	dm_create t.rd "0 $data_len linear /dev/mapper/t.rs $meta_len"
	dm_create t.rpool "0 $data_len $pool_t /dev/mapper/t.rm /dev/mapper/t.rd 128 0"
	dm_create t.rthin "0 $thin_len $thin_t /dev/mapper/t.rpool 0"
	orion-crash verify /dev/mapper/t.rthin --state $STATE --flush $((reject_at + 2)) --report 2 >/tmp/t.v 2>&1
	rc=$?
	set -- $(problems /tmp/t.v)
	check_eq "$label: the verifier rejects flush-$reject_at's cut checked as flush $((reject_at + 2)) (exit 1, acknowledged data missing)" \
		"1 yes" "$rc $([ "$1" != x ] && [ "$1" -gt 0 ] && echo yes || echo no)"
	dmsetup remove t.rthin t.rpool
	dm_create t.raw "0 $thin_len linear /dev/mapper/t.rd 0"
	orion-crash verify /dev/mapper/t.raw --state $STATE --flush $reject_at --report 2 >/tmp/t.v 2>&1
	rc=$?
	set -- $(problems /tmp/t.v)
	check_eq "$label: the verifier rejects the pool's raw data device (exit 1, marker or misplaced blocks)" \
		"1 yes" "$rc $([ "$2" != x ] && [ "$2" -gt 0 ] && echo yes || echo no)"
	dmsetup remove t.raw t.rd t.rm t.rs
	t3=$(date +%s)

	echo "# $label: set-up and workload $((t1 - t0)) s, walk $((t2 - t1)) s, verifier checks $((t3 - t2)) s"
	grep '^walk: time' /tmp/t.walk | sed 's/^/# /'
	rmmod brd
}

crash_run "C thin" thin-pool thin
load_orion orion-
crash_run "orion thin" orion-thin-pool orion-thin
