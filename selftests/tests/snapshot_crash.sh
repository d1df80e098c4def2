# snapshot_crash: power cuts of a snapshot origin with a persistent snapshot, cut mid-COW and
# replayed from a dm-log-writes log; first on the C snapshot-origin/snapshot, then on
# orion-s-origin/orion-snapshot.
#
# One ramdisk is the disk: an origin area, then a COW area. dm-log-writes over it logs every
# write to a second ramdisk in the order the writes became durable; two linear devices over
# the log-writes device are the origin and the COW device, so one log orders the copies, the
# exception store's commits and the origin writes. `orion-crash write` writes stamped 4 KiB
# blocks to a snapshot-origin device over the origin, flushing every few writes, and the log
# gets a mark flush-N after flush N returned. Halfway the hook takes a persistent snapshot
# as LVM does (origin suspended, snapshot created, origin resumed) and logs the mark snap;
# every origin write after it copies the chunks it overwrites into the COW area first. The
# origin starts zeroed (what the verifier takes for never written) and the COW area, its
# first two chunks aside (a blank store), holds a marker byte pattern, so an exception
# pointing at a chunk whose copy never landed, or a metadata area read before it was wiped,
# shows.
#
# Then `orion-crash walk --stack snapshot` replays the log forward on a third ramdisk, each
# stretch once. At each cut point (every flush, FUA write and mark, and a random entry
# between two of them, thinned at random to MAX_CUTS) the ramdisk holds what a power cut
# there would have left. A transient C dm-snapshot of it takes writes; over it, linear
# origin and COW devices. The origin must hold what flush N (the last mark before the cut)
# acknowledged, or what was written since, and nothing that was never written there; after
# the snap mark the snapshot target must load on the two and hold exactly the origin's data
# of flush SNAP_AT.

modprobe dm-log-writes || die "modprobe dm-log-writes failed"
modprobe dm-snapshot || die "modprobe dm-snapshot failed"

# The sizes and counts; a wrapper test may set CRASH_WRITES and CRASH_MAX_CUTS for a
# shorter run (the check of 350 cut points then fails). The COW area holds every chunk the
# origin can have (and the store's metadata): a snapshot that overflows is invalidated.
ORIGIN_MIB=16
COW_MIB=20
CHUNK=8
WRITES=${CRASH_WRITES:-1200}
FLUSH_EVERY=8
MAX_CUTS=${CRASH_MAX_CUTS:-400}
CROSS_CUTS=${CRASH_CROSS_CUTS:-200}
BACKGROUND_FLUSH_MS=20
STATE=/tmp/t.state
origin_len=$((ORIGIN_MIB * 2048))
cow_len=$((COW_MIB * 2048))
total=$((origin_len + cow_len))
snap_at=$((WRITES / FLUSH_EVERY / 2))
reject_at=$((WRITES / FLUSH_EVERY * 3 / 4))
base=/dev/ram0 logdev=/dev/ram1 replay=/dev/ram2 cow=/dev/ram3 cow2=/dev/ram4

crash_setup

# prepare DEV: the disk before the test: the origin area zeroed; in the COW area zeroes in
# the first two chunks (the store's header, which makes it a new store, and its first
# metadata area), marker bytes after them. A new store writes its header and then wipes its
# first metadata area, with no flush between (C's dm-snap-persistent); on a marker-filled
# area a cut between the two leaves a valid header over garbage exceptions, which C's
# snapshot then refuses to load. That window of the snapshot's creation is not what this
# test is after: the chunk copies and exception commits of the COW that follows are.
prepare() {
	dd if=/dev/zero of="$1" bs=1M count=$ORIGIN_MIB oflag=direct 2>/dev/null &&
		for i in $(seq 1 $COW_MIB); do cat /tmp/t.marker; done |
		dd of="$1" bs=1M seek=$ORIGIN_MIB iflag=fullblock oflag=direct 2>/dev/null &&
		dd if=/dev/zero of="$1" bs=512 count=$((2 * CHUNK)) seek=$origin_len oflag=direct 2>/dev/null
}

# crash_run LABEL ORIGIN_TARGET SNAPSHOT_TARGET OTHER_SNAPSHOT_TARGET: the last is the other
# side's snapshot target, walked over the same log to show it loads this side's COW device
# after every cut as well.
crash_run() {
	label=$1 origin_t=$2 snap_t=$3 other_t=$4
	t0=$(date +%s)
	ramdisks 5 128
	prepare $base && prepare $replay || die "cannot prepare the ramdisks"

	# The stack under test, logged.
	dm_create t.lw "0 $total log-writes $base $logdev"
	dm_create t.origin "0 $origin_len linear /dev/mapper/t.lw 0"
	dm_create t.cow "0 $cow_len linear /dev/mapper/t.lw $origin_len"
	dm_create t.org "0 $origin_len $origin_t /dev/mapper/t.origin"
	cat >/tmp/t.hook <<-EOF
		dmsetup message t.lw 0 mark flush-\$N || exit 1
		[ "\$N" = $snap_at ] || exit 0
		dmsetup suspend t.org &&
			dmsetup create t.snap --table "0 $origin_len $snap_t /dev/mapper/t.origin /dev/mapper/t.cow P $CHUNK" &&
			dmsetup resume t.org && dmsetup message t.lw 0 mark snap
	EOF
	check "$label: workload of $WRITES writes to the origin, a flush every $FLUSH_EVERY and a mark after each, a snapshot at flush $snap_at" \
		orion-crash write /dev/mapper/t.org --state $STATE --writes $WRITES \
		--flush-every $FLUSH_EVERY --seed 1 --after-flush "sh /tmp/t.hook" \
		--background-flush $BACKGROUND_FLUSH_MS
	status=$(dmsetup status t.snap 2>&1)
	case $status in
	*Invalid* | *Overflow* | *Merge* | "") tap_not_ok "$label: the snapshot is valid after the workload" "status: $status" ;;
	*) tap_ok "$label: the snapshot is valid after the workload (status: ${status#* * * })" ;;
	esac
	# Removed top-down in one process, as fast as the ioctls go: a device below a target
	# that closes it only after its destructor returned is still busy then.
	late=
	dmsetup remove t.snap t.org t.cow t.origin t.lw 2>/dev/null
	for d in t.snap t.org t.cow t.origin t.lw; do
		dmsetup info $d >/dev/null 2>&1 || continue
		late="$late $d"
		i=0
		until dmsetup remove $d 2>/dev/null || [ $i -ge 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
	done
	check_eq "$label: each device is closed once the devices over it are removed (busy:${late:- none})" "" "$late"
	t1=$(date +%s)

	orion-crash walk $logdev $replay --cow $cow --cow $cow2 --state $STATE --stack snapshot \
		--origin-sectors $origin_len --cow-sectors $cow_len --chunk $CHUNK \
		--snapshot-target "$snap_t" --snapshot-mark snap --start-mark flush-0 \
		--max-cuts $MAX_CUTS --marker-byte 0xa5 >/tmp/t.walk 2>&1
	rc=$?
	t2=$(date +%s)
	summary=$(grep '^walk: ' /tmp/t.walk)
	cuts=$(echo "$summary" | sed -n 's/^walk: \([0-9]*\) cut points.*/\1/p')
	after_snap=$(echo "$summary" | sed -n 's/.*, \([0-9]*\) after the snapshot mark$/\1/p')
	if [ "$rc" -le 1 ] && [ -n "$cuts" ]; then
		tap_ok "$label: the walk replays the log and brings the origin and snapshot up at every cut point"
	else
		tap_not_ok "$label: the walk replays the log and brings the origin and snapshot up at every cut point" \
			"exit $rc" "$(grep -v '^FAIL' /tmp/t.walk | tail -n 5)"
	fi
	check "$label: ${cuts:-no} cut points ($(echo "$summary" | sed -n 's/^walk: [0-9]* cut points at //p'))" \
		test "${cuts:-0}" -ge 350
	check "$label: ${after_snap:-no} of them after the snapshot mark, mid-COW" \
		test "${after_snap:-0}" -ge 200
	late=$(sed -n 's/^walk: \([0-9]*\) devices still open.*/\1/p' /tmp/t.walk)
	check_eq "$label: at every cut point the origin and COW devices are closed once the snapshot is removed $(sed -n 's/^walk: [0-9]* devices still open once the devices above them were removed //p' /tmp/t.walk)" \
		0 "${late:-none}"
	report "$label: the snapshot loads at all ${after_snap:-0} cut points after the mark" activate
	report "$label: no acknowledged origin write lost (every block holds what its last flush acknowledged, or newer) at any cut point" lost
	report "$label: no marker, foreign, misplaced, torn or later data read from the origin at any cut point" foreign
	report "$label: the snapshot holds exactly flush $snap_at's data at all ${after_snap:-0} cut points after the mark" snapshot

	# The other side's target over this side's COW device, cut by cut.
	prepare $replay || die "cannot prepare the replay ramdisk"
	orion-crash walk $logdev $replay --cow $cow --cow $cow2 --state $STATE --stack snapshot \
		--origin-sectors $origin_len --cow-sectors $cow_len --chunk $CHUNK \
		--snapshot-target "$other_t" --snapshot-mark snap --start-mark flush-0 \
		--max-cuts $CROSS_CUTS --seed 2 --marker-byte 0xa5 >/tmp/t.walk 2>&1
	summary=$(grep '^walk: ' /tmp/t.walk)
	after_snap=$(echo "$summary" | sed -n 's/.*, \([0-9]*\) after the snapshot mark$/\1/p')
	check "$label, read by $other_t: ${after_snap:-no} cut points after the mark" test "${after_snap:-0}" -ge 100
	report "$label, read by $other_t: the snapshot loads at all ${after_snap:-0} of them" activate
	report "$label, read by $other_t: it holds exactly flush $snap_at's data at all of them" snapshot

	# The verifier must reject what is wrong: the snapshot of the disk cut at flush-R
	# checked as if it had been taken at flush S + 2 (it holds older data there), and the
	# origin, which moved on, checked as the snapshot (what a snapshot whose exceptions
	# were lost would read). The same snapshot passes as flush S's.
	prepare $replay &&
		orion-crash replay $logdev $replay --to-mark flush-$reject_at >/dev/null ||
		die "cannot replay to flush-$reject_at"
	dm_create t.rs "0 $total snapshot $replay $cow N 8"
	dm_create t.ro "0 $origin_len linear /dev/mapper/t.rs 0"
	dm_create t.rc "0 $cow_len linear /dev/mapper/t.rs $origin_len"
	dm_create t.rsnap "0 $origin_len $snap_t /dev/mapper/t.ro /dev/mapper/t.rc P $CHUNK"
	orion-crash verify /dev/mapper/t.rsnap --state $STATE --flush $snap_at --exact >/tmp/t.v 2>&1
	ok_rc=$?
	orion-crash verify /dev/mapper/t.rsnap --state $STATE --flush $((snap_at + 2)) --exact --report 2 >/tmp/t.v 2>&1
	rc=$?
	set -- $(problems /tmp/t.v)
	check_eq "$label: the verifier takes flush-$reject_at's snapshot as flush $snap_at's (exit 0) and rejects it as flush $((snap_at + 2))'s (exit 1, acknowledged data missing)" \
		"0 1 yes" "$ok_rc $rc $([ "$1" != x ] && [ "$1" -gt 0 ] && echo yes || echo no)"
	orion-crash verify /dev/mapper/t.ro --state $STATE --flush $snap_at --exact --report 2 >/tmp/t.v 2>&1
	rc=$?
	set -- $(problems /tmp/t.v)
	check_eq "$label: the verifier rejects flush-$reject_at's origin as flush $snap_at's snapshot (exit 1, later data)" \
		"1 yes" "$rc $([ "$2" != x ] && [ "$2" -gt 0 ] && echo yes || echo no)"
	dmsetup remove t.rsnap t.rc t.ro t.rs
	t3=$(date +%s)

	echo "# $label: set-up and workload $((t1 - t0)) s, walk $((t2 - t1)) s, verifier checks $((t3 - t2)) s"
	grep '^walk: time' /tmp/t.walk | sed 's/^/# /'
	rmmod brd
}

load_orion orion-
crash_run "C snapshot" snapshot-origin snapshot orion-snapshot
crash_run "orion snapshot" orion-s-origin orion-snapshot snapshot
