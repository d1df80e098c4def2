# mirror, ours beside C's dm-mirror on identical devices: resync from the first leg (core
# and disk logs, 2 and 3 legs, several region sizes), writes during the resync under fio
# verify, the same status and data on every leg; nosync and sync; a disk log reused after a
# clean shutdown and one with dirty regions written by hand, loaded by both; a failing leg
# without and with handle_errors; failed reads sent again to an intact leg; malformed
# tables refused with C's messages.

modprobe dm-mirror || die "modprobe dm-mirror failed"
load_orion orion-
ramdisks 8 64
sz=$((32 << 11))
# legs S N: N linear legs of S (ours on ram0-2, C's on ram3-5), 32 MiB each.
leg_dev() { [ "$1" = o ] && echo /dev/ram$2 || echo /dev/ram$(($2 + 3)); }
logdev_for() { [ "$1" = o ] && echo /dev/ram6 || echo /dev/ram7; }
legs() {
	i=0
	while [ $i -lt "$2" ]; do
		dm_create t.${1}l$i "0 $sz linear $(leg_dev $1 $i) 0"
		i=$((i + 1))
	done
}
leg_args() {
	a="$2"
	i=0
	while [ $i -lt "$2" ]; do
		a="$a /dev/mapper/t.${1}l$i 0"
		i=$((i + 1))
	done
	echo "$a"
}
# synced S: the mirror t.Sm reports every region in sync.
synced() {
	side=$1
	i=0
	while [ $i -lt 600 ]; do
		set -- $(dmsetup status t.${side}m)
		n=$4
		shift 4
		for a; do case $a in */*) [ "${a%/*}" = "${a#*/}" ] && return 0 ;; esac; done
		sleep 0.1
		i=$((i + 1))
	done
	dmsetup status t.${side}m
	return 1
}
# events NAME: the device's event count once it has stopped changing (both sides raise
# events from a work item, after the I/O that caused them has returned).
events() {
	e=$(dmsetup info "$1" | awk '/Event number/ { print $3 }')
	n=0
	while [ $n -lt 20 ]; do
		sleep 0.1
		f=$(dmsetup info "$1" | awk '/Event number/ { print $3 }')
		[ "$f" = "$e" ] && [ $n -ge 3 ] && break
		e=$f
		n=$((n + 1))
	done
	echo "$e"
}
mirror_table() { table_of "$1" | sed -E 's/[0-9]+:[0-9]+/D/g'; }
mirror_status() { status_of "$1" | sed -E 's/[0-9]+:[0-9]+/D/g'; }
same_mirror_status() { check_eq "$1" "$(mirror_status t.cm)" "$(mirror_status t.om)"; }
down() {
	dmsetup remove t.om t.cm
	for s in o c; do i=0; while dmsetup remove t.${s}l$i 2>/dev/null; do i=$((i + 1)); done; done
}

head -c $((sz * 512)) /dev/urandom >/tmp/t.A
head -c $((sz * 512)) /dev/urandom >/tmp/t.B

# Core log, 2 legs, region 1024: the second leg is resynchronised from the first.
for s in o c; do
	dd if=/tmp/t.A of="$(leg_dev $s 0)" bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.B of="$(leg_dev $s 1)" bs=1M oflag=direct 2>/dev/null
	legs $s 2
	dm_create t.${s}m "0 $sz $(type_for $s mirror) core 1 1024 $(leg_args $s 2)"
done
check_eq "core log: table as C's (devices aside)" "$(mirror_table t.cm)" "$(mirror_table t.om)"
check "ours resyncs" synced o
check "C resyncs" synced c
same_mirror_status "resynced: status as C's"
check "the second leg now holds the first leg's data" cmp -n $((sz * 512)) /dev/mapper/t.ol1 /tmp/t.A
check "the mirror reads the data" cmp -n $((sz * 512)) /dev/mapper/t.om /tmp/t.A
check_eq "IMA measurement as C's (devices aside)" \
	"$(ima_table_load t.cm | sed -E 's/[0-9]+:[0-9]+/D/g')" "$(ima_table_load t.om | sed -E 's/[0-9]+:[0-9]+/D/g')"
check "queue limits as C's" same_limits t.om t.cm
check "fio verify through the mirror" fio_verify /dev/mapper/t.om --rw=randwrite --bs=16k \
	--size=16M --iodepth=16 --ioengine=libaio
check "after writes: both legs hold the same data" same_bytes /dev/mapper/t.ol0 /dev/mapper/t.ol1 $((sz * 512))
down

# Writes during the resync (3 legs, region 512).
for s in o c; do
	dd if=/tmp/t.A of="$(leg_dev $s 0)" bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.B of="$(leg_dev $s 1)" bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.B of="$(leg_dev $s 2)" bs=1M oflag=direct 2>/dev/null
	legs $s 3
	dm_create t.${s}m "0 $sz $(type_for $s mirror) core 1 512 $(leg_args $s 3)"
done
check "fio verify during the resync (3 legs)" fio_verify /dev/mapper/t.om --rw=randwrite \
	--bs=4k --size=32M --iodepth=32 --ioengine=libaio --number_ios=4000
check "ours resyncs (3 legs)" synced o
check "C resyncs (3 legs)" synced c
same_mirror_status "3 legs resynced: status as C's"
check "legs 0 and 1 equal" same_bytes /dev/mapper/t.ol0 /dev/mapper/t.ol1 $((sz * 512))
check "legs 0 and 2 equal" same_bytes /dev/mapper/t.ol0 /dev/mapper/t.ol2 $((sz * 512))
down

# nosync and sync.
for s in o c; do
	legs $s 2
	dm_create t.${s}m "0 $sz $(type_for $s mirror) core 2 2048 nosync $(leg_args $s 2)"
done
same_mirror_status "nosync: in sync at once, status as C's"
check_eq "nosync: table as C's" "$(mirror_table t.cm)" "$(mirror_table t.om)"
down

# Disk log: a clean shutdown, the log reused by the other side.
for s in o c; do
	dd if=/dev/zero of="$(logdev_for $s)" bs=1M count=1 oflag=direct 2>/dev/null
	dd if=/tmp/t.A of="$(leg_dev $s 0)" bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.B of="$(leg_dev $s 1)" bs=1M oflag=direct 2>/dev/null
	legs $s 2
	dm_create t.${s}m "0 $sz $(type_for $s mirror) disk 2 $(logdev_for $s) 1024 $(leg_args $s 2)"
done
check_eq "disk log: table as C's (devices aside)" "$(mirror_table t.cm)" "$(mirror_table t.om)"
check "disk log: ours resyncs" synced o
check "disk log: C resyncs" synced c
same_mirror_status "disk log: status as C's"
for s in o c; do dd if=/tmp/t.B of=/dev/mapper/t.${s}m bs=64k count=64 oflag=direct 2>/dev/null; done
down
check "disk log after a clean shutdown: the same log device content as C's" \
	same_bytes "$(logdev_for o)" "$(logdev_for c)" 4096
for s in o c; do legs $s 2; done
dm_create t.om "0 $sz orion-mirror disk 2 $(logdev_for c) 1024 $(leg_args c 2)"
dm_create t.cm "0 $sz mirror disk 2 $(logdev_for o) 1024 $(leg_args o 2)"
check_eq "ours reads C's clean log: in sync at once" "2 D D 64/64 1 AA 3 disk D A" "$(mirror_status t.om | cut -d' ' -f4-)"
check_eq "C reads our clean log: in sync at once" "2 D D 64/64 1 AA 3 disk D A" "$(mirror_status t.cm | cut -d' ' -f4-)"
down

# A log with dirty regions (as a crash leaves it): header, then a bitmap with regions 3
# and 17 (of 64) not clean. Both sides resync exactly those regions from the first leg.
for s in o c; do
	dd if=/tmp/t.A of="$(leg_dev $s 0)" bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.A of="$(leg_dev $s 1)" bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.B of="$(leg_dev $s 1)" bs=512 seek=$((3 * 1024)) count=1024 oflag=direct 2>/dev/null
	dd if=/tmp/t.B of="$(leg_dev $s 1)" bs=512 seek=$((17 * 1024)) count=1024 oflag=direct 2>/dev/null
	{
		printf 'rRiM\002\000\000\000\100\000\000\000\000\000\000\000'
		head -c 1008 /dev/zero
		printf '\367\377\375\377\377\377\377\377'
		head -c 1016 /dev/zero
	} | dd of="$(logdev_for $s)" bs=1024 count=2 iflag=fullblock oflag=direct 2>/dev/null
	legs $s 2
	dm_create t.${s}m "0 $sz $(type_for $s mirror) disk 2 $(logdev_for $s) 1024 $(leg_args $s 2)"
done
check "dirty log: ours resyncs" synced o
check "dirty log: C resyncs" synced c
check "dirty log: ours repaired regions 3 and 17" same_bytes /dev/mapper/t.ol0 /dev/mapper/t.ol1 $((sz * 512))
check "dirty log: C repaired them" same_bytes /dev/mapper/t.cl0 /dev/mapper/t.cl1 $((sz * 512))
same_mirror_status "dirty log: status as C's"
down

# A failing leg: the second leg's device becomes an error target under writes. Without
# handle_errors the writes succeed on the first leg; with it they are held until the table
# is replaced (by linear on the good leg here, as LVM2 does).
for mode in "" "1 handle_errors"; do
	for s in o c; do
		legs $s 2
		dm_create t.${s}m "0 $sz $(type_for $s mirror) core 2 1024 nosync $(leg_args $s 2) $mode"
	done
	for s in o c; do
		dmsetup suspend t.${s}l1
		dmsetup load t.${s}l1 --table "0 $sz error"
		dmsetup resume t.${s}l1
		dd if=/tmp/t.A of=/dev/mapper/t.${s}m bs=64k count=16 oflag=direct 2>/dev/null &
		ddpid=$!
		sleep 2
		mirror_status t.${s}m >/tmp/t.${s}failed
		events t.${s}m >/tmp/t.${s}events
		if [ -n "$mode" ]; then
			dmsetup suspend --noflush t.${s}m
			dmsetup load t.${s}m --table "0 $sz linear /dev/mapper/t.${s}l0 0"
			dmsetup resume t.${s}m
		fi
		wait $ddpid
		echo $? >/tmp/t.${s}rc
	done
	what="leg failure ${mode:-without handle_errors}"
	check_eq "$what: status as C's" "$(cat /tmp/t.cfailed)" "$(cat /tmp/t.ofailed)"
	check_eq "$what: the writes succeed, as C's" "$(cat /tmp/t.crc)" "$(cat /tmp/t.orc)"
	check_eq "$what: table events as C's" "$(cat /tmp/t.cevents)" "$(cat /tmp/t.oevents)"
	check "$what: the first leg has the data" cmp -n $((1 << 20)) /dev/mapper/t.ol0 /tmp/t.A
	if [ -z "$mode" ]; then
		# Repair: the failed leg replaced by a new one, which is resynchronised.
		for s in o c; do
			dm_create t.${s}l2 "0 $sz linear $(leg_dev $s 2) 0"
			dm_reload t.${s}m "0 $sz $(type_for $s mirror) core 1 1024 2 /dev/mapper/t.${s}l0 0 /dev/mapper/t.${s}l2 0"
		done
		check "repaired with a new leg: ours resyncs" synced o
		check "repaired with a new leg: C resyncs" synced c
		same_mirror_status "repaired: status as C's"
		check "the new leg holds the data" same_bytes /dev/mapper/t.ol0 /dev/mapper/t.ol2 $((sz * 512))
		dmsetup remove t.om t.cm t.ol2 t.cl2
	fi
	down
done

# A failing read: the first (default) leg's device fails every I/O; a read that fails is
# sent again to an intact leg (dm-raid1's retry), without and with handle_errors; with both
# legs failing the read fails, as C's.
for mode in "" "1 handle_errors" "both"; do
	for s in o c; do
		legs $s 2
		for i in 0 1; do dd if=/tmp/t.A of=/dev/mapper/t.${s}l$i bs=1M oflag=direct 2>/dev/null; done
		feat=$mode
		[ "$mode" = both ] && feat=""
		dm_create t.${s}m "0 $sz $(type_for $s mirror) core 2 1024 nosync $(leg_args $s 2) $feat"
		failing="0"
		[ "$mode" = both ] && failing="0 1"
		for i in $failing; do
			dmsetup suspend t.${s}l$i
			dmsetup load t.${s}l$i --table "0 $sz error"
			dmsetup resume t.${s}l$i
		done
		rm -f /tmp/t.${s}read
		dd if=/dev/mapper/t.${s}m of=/tmp/t.${s}read bs=64k count=64 iflag=direct 2>/dev/null
		echo $? >/tmp/t.${s}rc
		mirror_status t.${s}m >/tmp/t.${s}failed
		events t.${s}m >/tmp/t.${s}events
	done
	what="failing read (${mode:-without handle_errors})"
	check_eq "$what: read result as C's" "$(cat /tmp/t.crc)" "$(cat /tmp/t.orc)"
	if [ "$mode" = both ]; then
		check_fails "$what: ours fails the read" test "$(cat /tmp/t.orc)" = 0
	else
		check_eq "$what: ours reads without error" 0 "$(cat /tmp/t.orc)"
		check "$what: ours read the data from the other leg" cmp -n $((4 << 20)) /tmp/t.oread /tmp/t.A
	fi
	check_eq "$what: status as C's" "$(cat /tmp/t.cfailed)" "$(cat /tmp/t.ofailed)"
	check_eq "$what: table events as C's" "$(cat /tmp/t.cevents)" "$(cat /tmp/t.oevents)"
	down
done

# A disk log captured mid-write (dirty regions, as a power cut leaves it) is loaded by the
# other side, which resyncs exactly its dirty regions: the second leg is damaged in those
# regions only, and the legs must be equal afterwards.
# dirty_regions FILE: the regions whose clean bit is clear in a captured log.
dirty_regions() {
	od -An -v -tu1 -j1024 -N8 "$1" | tr -s ' ' '\n' | grep -v '^$' | awk '{
		v = $1
		for (b = 0; b < 8; b++) { if (v % 2 == 0) print (NR - 1) * 8 + b; v = int(v / 2) } }'
}
for pair in "o c" "c o"; do
	set -- $pair
	w=$1 r=$2
	legs $w 2
	dd if=/dev/zero of="$(logdev_for $w)" bs=1M count=1 oflag=direct 2>/dev/null
	dm_create t.${w}m "0 $sz $(type_for $w mirror) disk 3 $(logdev_for $w) 1024 nosync $(leg_args $w 2)"
	fio --name=cap --filename=/dev/mapper/t.${w}m --direct=1 --rw=randwrite --bs=4k \
		--ioengine=libaio --iodepth=32 --time_based --runtime=4 >/dev/null 2>&1 &
	fpid=$!
	sleep 1
	# A capture between two log writes can find every region clean: try a few instants.
	k=0
	while [ $k -lt 20 ]; do
		dd if="$(logdev_for $w)" of=/tmp/t.caplog bs=4096 count=1 iflag=direct 2>/dev/null
		[ -n "$(dirty_regions /tmp/t.caplog)" ] && break
		sleep 0.1
		k=$((k + 1))
	done
	wait $fpid
	dmsetup remove t.${w}m
	dirty=$(dirty_regions /tmp/t.caplog | tr '\n' ' ')
	check "the log captured from $w's mirror has dirty regions (${dirty:-none})" test -n "$dirty"
	for d in $dirty; do
		dd if=/tmp/t.B of=/dev/mapper/t.${w}l1 bs=512 seek=$((d * 1024)) count=1024 oflag=direct 2>/dev/null
	done
	dd if=/tmp/t.caplog of="$(logdev_for $w)" bs=4096 count=1 oflag=direct 2>/dev/null
	dm_create t.${r}m "0 $sz $(type_for $r mirror) disk 2 $(logdev_for $w) 1024 $(leg_args $w 2)"
	check "$r loads $w's dirty log and resyncs" synced $r
	check "$r repaired the dirty regions: legs equal" same_bytes /dev/mapper/t.${w}l0 /dev/mapper/t.${w}l1 $((sz * 512))
	dmsetup remove t.${r}m
	i=0; while dmsetup remove t.${w}l$i 2>/dev/null; do i=$((i + 1)); done
done

# Malformed tables.
for i in 0 1; do dm_create t.b$i "0 $sz linear /dev/ram$i 0"; done
bad_table mirror "$sz core" "no log argument count"
bad_table mirror "$sz core x 1024" "a bad log argument count"
bad_table mirror "$sz core 3 1024" "more log arguments than given"
bad_table mirror "$sz core 1 1000 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0" "a region size not a power of 2"
bad_table mirror "$sz core 1 1 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0" "a region size of 1"
bad_table mirror "$sz core 2 1024 always 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0" "an unknown sync argument"
bad_table mirror "$sz bogus 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0" "an unknown log type"
bad_table mirror "$sz disk 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0" "a disk log without a device"
bad_table mirror "$sz core 1 1024 1 /dev/mapper/t.b0 0" "one leg"
bad_table mirror "$sz core 1 1024 10 /dev/mapper/t.b0 0" "ten legs"
bad_table mirror "$sz core 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1" "a missing offset"
bad_table mirror "$sz core 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 x" "a bad offset"
bad_table mirror "$sz core 1 1024 2 /dev/mapper/t.b0 0 /dev/nonexistent 0" "a missing leg"
bad_table mirror "$sz core 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0 2 handle_errors" "fewer features than counted"
bad_table mirror "$sz core 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0 1 fast" "an unknown feature"
bad_table mirror "$sz core 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0 1 keep_log" "keep_log without handle_errors"
bad_table mirror "$sz core 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0 1 handle_errors x" "an extra argument"
bad_table mirror "$sz core 1 1024 2 /dev/mapper/t.b0 0 /dev/mapper/t.b1 0 x" "a bad feature count"
dmsetup remove t.b0 t.b1
