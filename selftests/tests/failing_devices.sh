# Failing devices under linear, striped, snapshot and mirror, ours beside C on identical
# stacks (thin has thin_failure): dm-dust bad blocks and dm-flakey failing reads or writes
# below each target. The same I/O results, status lines and device-mapper log lines as C's;
# and recovery once the device is healthy and the table reloaded.

modprobe dm-snapshot || die "modprobe dm-snapshot failed"
modprobe dm-mirror || die "modprobe dm-mirror failed"
modprobe dm-flakey || die "modprobe dm-flakey failed"
modprobe dm-dust || die "modprobe dm-dust failed"
load_orion orion-
ramdisks 8 64
sz=$((32 << 11))
head -c $((sz * 512)) /dev/urandom >/tmp/t.A

# rd DEV SECTOR COUNT / wr DEV SECTOR COUNT: a direct read or write (of /tmp/t.A's bytes at
# the same place) of COUNT sectors; prints the exit status.
rd() {
	dd if="$1" of=/dev/null bs=512 skip="$2" count="$3" iflag=direct 2>/dev/null
	echo $?
}
wr() {
	dd if=/tmp/t.A of="$1" bs=512 skip="$2" seek="$2" count="$3" oflag=direct conv=notrunc 2>/dev/null
	echo $?
}
# dm_log: the device-mapper lines logged since the last `dmesg -c`, device numbers and our
# type names made alike.
dm_log() {
	dmesg -c | grep -o 'device-mapper: .*' | sed -E 's/[0-9]+:[0-9]+/M:m/g; s/orion-//g'
}
# sides CMD: runs CMD o then CMD c, each output in /tmp/t.out.S.
sides() {
	for s in o c; do
		dmesg -c >/dev/null
		"$@" $s >/tmp/t.out.$s 2>&1
	done
}
same_out() { check_eq "$1" "$(cat /tmp/t.out.c)" "$(cat /tmp/t.out.o)"; }

# Linear and striped over dm-dust: reads of bad blocks fail, the rest succeed; a write over
# a bad block clears it (dust's rule); after clearbadblocks every read succeeds.
dust_of() { [ "$1" = o ] && echo "/dev/ram$2" || echo "/dev/ram$(($2 + 2))"; }
for s in o c; do
	dd if=/tmp/t.A of="$(dust_of $s 0)" bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.A of="$(dust_of $s 1)" bs=1M oflag=direct 2>/dev/null
	for i in 0 1; do
		dm_create t.${s}dust$i "0 $sz dust $(dust_of $s $i) 0 512"
		for b in 100 2000 30001; do dmsetup message t.${s}dust$i 0 addbadblock $b >/dev/null; done
		dmsetup message t.${s}dust$i 0 enable >/dev/null
	done
	dm_create t.${s}lin "0 $sz $(type_for $s linear) /dev/mapper/t.${s}dust0 0"
	dm_create t.${s}str "0 $sz $(type_for $s striped) 2 64 /dev/mapper/t.${s}dust0 0 /dev/mapper/t.${s}dust1 0"
done
dust_io() {
	s=$1
	for d in lin str; do
		for at in "0 64" "96 8" "100 1" "1990 20" "30000 4" "50000 64"; do
			echo "$d read $at: $(rd /dev/mapper/t.$s$d $at)"
		done
	done
	echo "linear write over block 100: $(wr /dev/mapper/t.${s}lin 100 1)"
	echo "linear read of block 100 after it: $(rd /dev/mapper/t.${s}lin 100 1)"
	status_of t.${s}lin | sed -E 's/[0-9]+:[0-9]+/M:m/g'
	status_of t.${s}str | sed -E 's/[0-9]+:[0-9]+/M:m/g'
	dm_log
}
sides dust_io
same_out "dust below linear and striped: read and write results, status and log as C's"
check "dust: some reads of bad blocks fail (ours)" grep -q 'read 100 1: 1' /tmp/t.out.o
check "dust: reads of good blocks succeed (ours)" grep -q 'lin read 50000 64: 0' /tmp/t.out.o
heal_dust() {
	for i in 0 1; do dmsetup message t.$1dust$i 0 clearbadblocks >/dev/null 2>&1; done
	for d in lin str; do
		for at in "96 8" "1990 20" "30000 4"; do echo "$d read $at: $(rd /dev/mapper/t.$1$d $at)"; done
	done
	cmp -n $((sz * 512)) /dev/mapper/t.$1lin /tmp/t.A && echo "linear reads the data"
}
sides heal_dust
same_out "dust cleared: every read succeeds, as C's"
check "dust cleared: ours reads the data back" grep -q 'linear reads the data' /tmp/t.out.o
dmsetup remove t.olin t.clin t.ostr t.cstr t.odust0 t.odust1 t.cdust0 t.cdust1

# Snapshot whose COW device fails writes (flakey error_writes): the snapshot is invalidated
# with C's log line, origin writes go on; after the device heals, the snapshot loaded again
# is what C's is.
cowdev_for() { [ "$1" = o ] && echo /dev/ram4 || echo /dev/ram5; }
org_for() { [ "$1" = o ] && echo /dev/ram0 || echo /dev/ram1; }
snap_up() {
	s=$1
	dd if=/tmp/t.A of="$(org_for $s)" bs=1M oflag=direct 2>/dev/null
	dd if=/dev/zero of="$(cowdev_for $s)" bs=4k count=1 oflag=direct 2>/dev/null
	dm_create t.${s}cow "0 $sz flakey $(cowdev_for $s) 0 1000 0"
	dm_create t.${s}org "0 $sz $(type_for $s snapshot-origin) $(org_for $s)"
	dmsetup suspend t.${s}org
	dm_create t.${s}snap "0 $sz $(prefix_for $s)snapshot $(org_for $s) /dev/mapper/t.${s}cow P 8"
	dmsetup resume t.${s}org
}
flakey_cow() {
	dmsetup suspend t.${1}cow
	dmsetup load t.${1}cow --table "0 $sz flakey $(cowdev_for $1) 0 $2"
	dmsetup resume t.${1}cow
}
for s in o c; do snap_up $s; done
cow_fails() {
	s=$1
	echo "origin write before: $(wr /dev/mapper/t.${s}org 0 64)"
	flakey_cow $s "0 1000 1 error_writes"
	echo "origin write, COW failing: $(wr /dev/mapper/t.${s}org 4096 64)"
	echo "origin write after: $(wr /dev/mapper/t.${s}org 8192 8)"
	echo "snapshot read: $(rd /dev/mapper/t.${s}snap 0 8)"
	echo "snapshot write: $(wr /dev/mapper/t.${s}snap 100 8)"
	dmsetup status t.${s}snap | cut -d' ' -f4-
	dm_log
}
sides cow_fails
same_out "COW device failing writes: I/O results, snapshot status and log as C's"
check "COW device failing writes: our snapshot is Invalid" grep -qx Invalid /tmp/t.out.o
check "COW device failing writes: our origin writes succeed" grep -q 'origin write after: 0' /tmp/t.out.o
cow_heals() {
	s=$1
	flakey_cow $s "1000 0"
	dmsetup remove t.${s}snap
	dmsetup suspend t.${s}org
	dm_create t.${s}snap "0 $sz $(prefix_for $s)snapshot $(org_for $s) /dev/mapper/t.${s}cow P 8"
	dmsetup resume t.${s}org
	dmsetup status t.${s}snap | cut -d' ' -f4-
	echo "snapshot read: $(rd /dev/mapper/t.${s}snap 0 8)"
	cmp -n $((sz * 512)) /dev/mapper/t.${s}org "$(org_for $s)" && echo "origin reads its device"
	dm_log
}
sides cow_heals
same_out "COW device healed, snapshot loaded again: status, reads and log as C's"
for s in o c; do dmsetup remove t.${s}snap t.${s}org t.${s}cow; done

# Snapshot whose origin fails reads (flakey error_reads below the origin): the copy of a
# chunk cannot be read and the origin write that needed it fails, as C's.
org_up() {
	s=$1
	dd if=/tmp/t.A of="$(org_for $s)" bs=1M oflag=direct 2>/dev/null
	dd if=/dev/zero of="$(cowdev_for $s)" bs=4k count=1 oflag=direct 2>/dev/null
	dm_create t.${s}flk "0 $sz flakey $(org_for $s) 0 1000 0"
	dm_create t.${s}org "0 $sz $(type_for $s snapshot-origin) /dev/mapper/t.${s}flk"
	dmsetup suspend t.${s}org
	dm_create t.${s}snap "0 $sz $(prefix_for $s)snapshot /dev/mapper/t.${s}flk $(cowdev_for $s) P 16"
	dmsetup resume t.${s}org
}
origin_fails() {
	s=$1
	org_up $s
	echo "origin write before: $(wr /dev/mapper/t.${s}org 0 16)"
	dmsetup suspend t.${s}flk
	dmsetup load t.${s}flk --table "0 $sz flakey $(org_for $s) 0 0 1000 1 error_reads"
	dmsetup resume t.${s}flk
	echo "origin write, reads failing: $(wr /dev/mapper/t.${s}org 4096 16)"
	echo "origin read: $(rd /dev/mapper/t.${s}org 4096 16)"
	echo "snapshot read: $(rd /dev/mapper/t.${s}snap 0 16)"
	dmsetup status t.${s}snap | cut -d' ' -f4-
	dmsetup suspend t.${s}flk
	dmsetup load t.${s}flk --table "0 $sz flakey $(org_for $s) 0 1000 0"
	dmsetup resume t.${s}flk
	echo "origin read, healed: $(rd /dev/mapper/t.${s}org 4096 16)"
	dm_log
	dmsetup remove t.${s}snap t.${s}org t.${s}flk
}
sides origin_fails
same_out "origin failing reads during a copy: I/O results, snapshot status and log as C's"
check "origin failing reads: our origin write that needed the copy fails, as C's" \
	grep -q 'origin write, reads failing: 1' /tmp/t.out.o

# snapshot-merge loaded over a COW device that fails reads: refused with C's log lines, the
# snapshot keeps its table and the origin stays readable.
merge_fails() {
	s=$1
	snap_up $s
	for sec in 0 4096 8192 16384 32768; do wr /dev/mapper/t.${s}snap $sec 8 >/dev/null; done
	dmsetup suspend t.${s}org
	dmsetup suspend t.${s}snap
	flakey_cow $s "0 1000 1 error_reads"
	dmsetup load t.${s}snap --table "0 $sz $(type_for $s snapshot-merge) $(org_for $s) /dev/mapper/t.${s}cow P 8"
	dmsetup resume t.${s}snap
	dmsetup resume t.${s}org
	sleep 1
	dmsetup status t.${s}snap | cut -d' ' -f4-
	echo "origin read: $(rd /dev/mapper/t.${s}org 0 64)"
	dm_log | sort -u
	dmsetup remove t.${s}snap t.${s}org t.${s}cow
}
sides merge_fails
same_out "snapshot-merge over a COW device failing reads: refusal, status, reads and log as C's"

# Mirror with a leg on dm-dust (bad blocks): reads that hit them are sent to the other leg;
# with handle_errors the leg is marked failed. After clearbadblocks and a reload, the mirror
# resyncs. Status, results and events as C's.
leg_dev() { [ "$1" = o ] && echo "/dev/ram$2" || echo "/dev/ram$(($2 + 2))"; }
mirror_dust() {
	s=$1
	for i in 0 1; do dd if=/tmp/t.A of="$(leg_dev $s $i)" bs=1M oflag=direct 2>/dev/null; done
	dm_create t.${s}d0 "0 $sz dust $(leg_dev $s 0) 0 4096"
	dmsetup message t.${s}d0 0 addbadblock 10 >/dev/null
	dmsetup message t.${s}d0 0 addbadblock 900 >/dev/null
	dmsetup message t.${s}d0 0 enable >/dev/null
	dm_create t.${s}m "0 $sz $(type_for $s mirror) core 2 1024 nosync 2 /dev/mapper/t.${s}d0 0 $(leg_dev $s 1) 0 1 handle_errors"
	echo "read over bad blocks: $(rd /dev/mapper/t.${s}m 0 16384)"
	dd if=/dev/mapper/t.${s}m bs=1M count=8 iflag=direct 2>/dev/null | cmp -n $((8 << 20)) - /tmp/t.A &&
		echo "the data read back from the good leg"
	dmsetup status t.${s}m | cut -d' ' -f4- | sed -E 's/[0-9]+:[0-9]+/M:m/g; s#/dev/ram[0-9]#RAM#g'
	dmsetup message t.${s}d0 0 clearbadblocks >/dev/null
	dmsetup suspend t.${s}m
	dmsetup load t.${s}m --table "0 $sz $(type_for $s mirror) core 1 1024 2 /dev/mapper/t.${s}d0 0 $(leg_dev $s 1) 0"
	dmsetup resume t.${s}m
	n=0
	until dmsetup status t.${s}m | grep -q " $((sz / 1024))/$((sz / 1024)) "; do
		n=$((n + 1))
		[ $n -gt 300 ] && break
		sleep 0.1
	done
	dmsetup status t.${s}m | cut -d' ' -f4- | sed -E 's/[0-9]+:[0-9]+/M:m/g; s#/dev/ram[0-9]#RAM#g'
	dm_log
	dmsetup remove t.${s}m t.${s}d0
}
sides mirror_dust
same_out "mirror leg with bad blocks: read results, status and log as C's; resync after healing"
check "mirror leg with bad blocks: our reads succeed from the good leg" \
	grep -q 'the data read back from the good leg' /tmp/t.out.o
