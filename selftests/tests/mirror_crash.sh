# mirror_crash: power cuts of a mirror with a disk log, replayed from a dm-log-writes log,
# during its first resync and under writes; first on the C mirror, then on orion-mirror.
#
# One ramdisk is the disk: a log area, then leg 0, then leg 1. dm-log-writes over it logs
# every write to a second ramdisk in the order the writes became durable; three linear
# devices over the log-writes device are the mirror's disk log and its two legs, so one log
# orders the log's commits and the writes to both legs. The log area starts zeroed (the
# disk log starts new), leg 0 zeroed and leg 1 a marker byte pattern. The log gets the mark
# flush-0 and the mirror is created (`disk 2 LOG 1024`, default sync): a new log holds no
# region in sync, so the mirror copies leg 0 over leg 1, region by region, each region's
# clean bit committed once its copy landed. Once it reports every region in sync,
# `orion-crash write` writes stamped 4 KiB blocks to the mirror, flushing every few writes,
# and the log gets a mark flush-N after flush N returned; a write's region is marked dirty
# in the log before the write reaches the legs, and cleaned once the region is idle.
#
# Then `orion-crash walk --stack mirror` replays the log forward on a third ramdisk, each
# stretch once. At each cut point (every flush, FUA write and mark from the first flush-0,
# and a random entry between two of them, thinned at random to MAX_CUTS) the ramdisk holds
# what a power cut there would have left. A transient C dm-snapshot of it takes writes;
# over it, linear log and leg devices and the mirror on them, trusting its log (default
# sync), which must report every region in sync within RESYNC_S seconds: the regions the
# log holds dirty (or, mid first resync, not yet in sync) are copied from leg 0. Then the
# mirror and each leg must hold what flush N (the last mark before the cut) acknowledged,
# or what was written since, and nothing that was never written there (a region the log
# called in sync before its copy landed keeps the marker on leg 1), and leg 1 must hold
# leg 0's bytes exactly (a write that reached one leg in a region the log held clean).

modprobe dm-log-writes || die "modprobe dm-log-writes failed"
modprobe dm-snapshot || die "modprobe dm-snapshot failed"
modprobe dm-mirror || die "modprobe dm-mirror failed"

# The sizes and counts; a wrapper test may set CRASH_WRITES and CRASH_MAX_CUTS for a
# shorter run (the check of 250 cut points then fails).
LOG_MIB=1
LEG_MIB=16
REGION=1024
WRITES=${CRASH_WRITES:-1200}
FLUSH_EVERY=8
MAX_CUTS=${CRASH_MAX_CUTS:-300}
RESYNC_CUTS=100
BACKGROUND_FLUSH_MS=20
RESYNC_S=30
STATE=/tmp/t.state
log_len=$((LOG_MIB * 2048))
leg_len=$((LEG_MIB * 2048))
total=$((log_len + 2 * leg_len))
regions=$((leg_len / REGION))
reject_at=$((WRITES / FLUSH_EVERY / 2))
base=/dev/ram0 logdev=/dev/ram1 replay=/dev/ram2 cow=/dev/ram3 cow2=/dev/ram4

crash_setup

# prepare DEV: the disk before the test: the log area and leg 0 zeroed, leg 1 marker bytes.
prepare() {
	dd if=/dev/zero of="$1" bs=1M count=$((LOG_MIB + LEG_MIB)) oflag=direct 2>/dev/null &&
		for i in $(seq 1 $LEG_MIB); do cat /tmp/t.marker; done |
		dd of="$1" bs=1M seek=$((LOG_MIB + LEG_MIB)) iflag=fullblock oflag=direct 2>/dev/null
}

# synced NAME: the mirror reports every region in sync (within 60 s).
synced() {
	name=$1
	i=0
	while [ $i -lt 600 ]; do
		set -- $(dmsetup status "$name")
		[ "$7" = "$regions/$regions" ] && [ "$9" = AA ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	dmsetup status "$name"
	return 1
}

# in_sync_and_equal: the mirror t.m reports every region in sync and its legs hold the same
# bytes.
in_sync_and_equal() {
	synced t.m && same_bytes /dev/mapper/t.leg0 /dev/mapper/t.leg1 $((leg_len * 512))
}

# replayed MARK: the replay ramdisk cut at the first mark MARK, under a transient snapshot
# t.rs with linear devices t.rlog, t.rleg0 and t.rleg1 over it.
replayed() {
	prepare $replay &&
		orion-crash replay $logdev $replay --to-mark "$1" >/dev/null ||
		die "cannot replay to $1"
	dm_create t.rs "0 $total snapshot $replay $cow N 8"
	dm_create t.rlog "0 $log_len linear /dev/mapper/t.rs 0"
	dm_create t.rleg0 "0 $leg_len linear /dev/mapper/t.rs $log_len"
	dm_create t.rleg1 "0 $leg_len linear /dev/mapper/t.rs $((log_len + leg_len))"
}

# walk START_MARK END_MARK MAX_CUTS: the walk of the mirror from the first mark START_MARK
# to the first END_MARK after it ("": the log's end), at MAX_CUTS cut points at most.
walk() {
	orion-crash walk $logdev $replay --cow $cow --cow $cow2 --state $STATE --stack mirror \
		--log-sectors $log_len --leg-sectors $leg_len --legs 2 --region-size $REGION \
		--mirror-target "$mirror_t" --resync-timeout $RESYNC_S --start-mark "$1" \
		${2:+--end-mark "$2"} --max-cuts "$3" --marker-byte 0xa5
}

# span FILE: "entries A..=B of N" from a walk's summary.
span() {
	sed -n 's/^walk: [0-9]* cut points at \(.*\), [0-9]* after the snapshot mark$/\1/p' "$1"
}

# crash_run LABEL MIRROR_TARGET
crash_run() {
	label=$1 mirror_t=$2
	t0=$(date +%s)
	ramdisks 5 192
	prepare $base && prepare $replay || die "cannot prepare the ramdisks"

	# The stack under test, logged; the first walk starts at the mark before the mirror
	# exists, the second at the mark after its first resync.
	dm_create t.lw "0 $total log-writes $base $logdev"
	dm_create t.log "0 $log_len linear /dev/mapper/t.lw 0"
	dm_create t.leg0 "0 $leg_len linear /dev/mapper/t.lw $log_len"
	dm_create t.leg1 "0 $leg_len linear /dev/mapper/t.lw $((log_len + leg_len))"
	dmsetup message t.lw 0 mark flush-0
	dm_create t.m "0 $leg_len $mirror_t disk 2 /dev/mapper/t.log $REGION 2 /dev/mapper/t.leg0 0 /dev/mapper/t.leg1 0"
	check "$label: the new mirror (disk log, region $REGION) copies leg 0 (zeroes) over leg 1 (marker bytes): $regions/$regions regions in sync" \
		synced t.m
	check "$label: leg 1 reads zeroes after the first resync" is_zero /dev/mapper/t.leg1 0 $leg_len
	dmsetup message t.lw 0 mark synced
	cat >/tmp/t.hook <<-EOF
		dmsetup message t.lw 0 mark flush-\$N
	EOF
	check "$label: workload of $WRITES writes to the mirror, a flush every $FLUSH_EVERY and a mark after each" \
		orion-crash write /dev/mapper/t.m --state $STATE --writes $WRITES \
		--flush-every $FLUSH_EVERY --seed 1 --after-flush "sh /tmp/t.hook" \
		--background-flush $BACKGROUND_FLUSH_MS
	last_flush=$(awk '$1 == "f" { n = $2 } END { print n }' $STATE)
	check "$label: after the workload the mirror is in sync and its legs are equal" \
		in_sync_and_equal
	# Removed top-down in one process, as fast as the ioctls go: a device below a target
	# that closes it only after its destructor returned is still busy then.
	late=
	dmsetup remove t.m t.leg1 t.leg0 t.log t.lw 2>/dev/null
	for d in t.m t.leg1 t.leg0 t.log t.lw; do
		dmsetup info $d >/dev/null 2>&1 || continue
		late="$late $d"
		i=0
		until dmsetup remove $d 2>/dev/null || [ $i -ge 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
	done
	check_eq "$label: each device is closed once the devices over it are removed (busy:${late:- none})" "" "$late"
	orion-crash list $logdev | grep -v '^#' >/tmp/t.list
	synced_at=$(awk '$5 == "synced" { print $1; exit }' /tmp/t.list)
	t1=$(date +%s)

	# Two walks: the first resync's stretch, where a cut can fall between a region's copy
	# and its clean bit, with up to RESYNC_CUTS cut points of its own; then the workload's.
	walk flush-0 synced $RESYNC_CUTS >/tmp/t.walk1 2>&1
	rc1=$?
	walk synced "" $MAX_CUTS >/tmp/t.walk2 2>&1
	rc2=$?
	cat /tmp/t.walk1 /tmp/t.walk2 >/tmp/t.walk
	t2=$(date +%s)
	cuts1=$(sed -n 's/^walk: \([0-9]*\) cut points.*/\1/p' /tmp/t.walk1)
	cuts2=$(sed -n 's/^walk: \([0-9]*\) cut points.*/\1/p' /tmp/t.walk2)
	if [ "$rc1" -le 1 ] && [ "$rc2" -le 1 ] && [ -n "$cuts1" ] && [ -n "$cuts2" ]; then
		tap_ok "$label: the walks replay the log and bring the mirror up at every cut point"
	else
		tap_not_ok "$label: the walks replay the log and bring the mirror up at every cut point" \
			"exit $rc1, $rc2" "$(grep -v '^FAIL' /tmp/t.walk | tail -n 10)"
	fi
	check "$label: $((${cuts1:-0} + ${cuts2:-0})) cut points: ${cuts1:-no} during the first resync ($(span /tmp/t.walk1)), ${cuts2:-no} during the workload ($(span /tmp/t.walk2))" \
		test "${cuts1:-0}" -ge 20 -a "${cuts2:-0}" -ge 250
	late=$(sed -n 's/^walk: \([0-9]*\) devices still open.*/\1/p' /tmp/t.walk | awk '{ n += $1 } END { print n + 0 }')
	check_eq "$label: at every cut point the log and leg devices are closed once the mirror is removed (longest waits: $(sed -n 's/^walk: .*(longest wait \([0-9]*\) ms.*/\1 ms/p' /tmp/t.walk | tr '\n' ' ' | sed 's/ $//'))" \
		0 "$late"
	report "$label: the mirror loads on its disk log at every cut point" activate
	report "$label: the mirror reports all $regions regions in sync within $RESYNC_S s, legs and log alive, at every cut point" resync
	report "$label: no acknowledged write lost on the mirror or on either leg at any cut point" lost
	report "$label: no marker, foreign, misplaced, torn or later data read from the mirror or either leg at any cut point" foreign
	report "$label: leg 1 holds leg 0's bytes exactly at every cut point" diverged

	# The verifier must reject what is wrong: leg 1 of the disk cut at flush-R checked as
	# if flush R + 2 had been acknowledged (those writes are not there; as flush R's it
	# passes), and leg 1 under a mirror told every region is in sync (nosync) at the first
	# mark, before the first resync: what a mirror that trusted a log whose dirty bits
	# were lost would hold.
	replayed flush-$reject_at
	orion-crash verify /dev/mapper/t.rleg1 --state $STATE --flush $reject_at >/tmp/t.v 2>&1
	ok_rc=$?
	orion-crash verify /dev/mapper/t.rleg1 --state $STATE --flush $((reject_at + 2)) --report 2 >/tmp/t.v 2>&1
	rc=$?
	set -- $(problems /tmp/t.v)
	check_eq "$label: the verifier takes leg 1 cut at flush-$reject_at as flush $reject_at's (exit 0) and rejects it as flush $((reject_at + 2))'s (exit 1, acknowledged data missing)" \
		"0 1 yes" "$ok_rc $rc $([ "$1" != x ] && [ "$1" -gt 0 ] && echo yes || echo no)"
	dmsetup remove t.rleg1 t.rleg0 t.rlog t.rs
	replayed flush-0
	dm_create t.rm "0 $leg_len $mirror_t disk 3 /dev/mapper/t.rlog $REGION nosync 2 /dev/mapper/t.rleg0 0 /dev/mapper/t.rleg1 0"
	status=$(dmsetup status t.rm)
	orion-crash verify /dev/mapper/t.rleg1 --state $STATE --flush 0 --report 2 >/tmp/t.v 2>&1
	rc=$?
	set -- $(problems /tmp/t.v)
	check_eq "$label: the verifier rejects leg 1 of a mirror loaded nosync before its first resync (in sync: $(echo "$status" | cut -d' ' -f7); exit 1, marker)" \
		"1 yes" "$rc $([ "$2" != x ] && [ "$2" -gt 0 ] && echo yes || echo no)"
	dmsetup remove t.rm t.rleg1 t.rleg0 t.rlog t.rs
	t3=$(date +%s)

	echo "# $label: set-up and workload $((t1 - t0)) s, walks $((t2 - t1)) s, verifier checks $((t3 - t2)) s (first resync ends at entry $synced_at of $(wc -l </tmp/t.list), last flush $last_flush)"
	grep '^walk: time' /tmp/t.walk1 | sed 's/^/# first resync: /'
	grep '^walk: time' /tmp/t.walk2 | sed 's/^/# workload: /'
	rmmod brd
}

crash_run "C mirror" mirror
load_orion orion-
crash_run "orion mirror" orion-mirror
