# snapshot-merge, ours beside C's: a snapshot merged into its origin by handover (as
# lvconvert --merge of an active origin) and by direct activation (a merge started at the
# next activation), with origin writes under fio verify during the merge; the end state and
# status as C's, and the merged COW device read by the other side.

modprobe dm-snapshot || die "modprobe dm-snapshot failed"
load_orion orion-
ramdisks 4 64
osz=$((32 << 11))
org_for() { [ "$1" = o ] && echo /dev/ram0 || echo /dev/ram1; }
cow_for() { [ "$1" = o ] && echo /dev/ram2 || echo /dev/ram3; }
# merged S: the merge of S's origin device has finished (nothing left but the header and
# the first area).
merged() {
	side=$1
	i=0
	while [ $i -lt 600 ]; do
		set -- $(dmsetup status t.${side}morg)
		[ -n "$5" ] && [ "${4%%/*}" = "$5" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	dmsetup status t.${side}morg
	return 1
}

head -c $((osz * 512)) /dev/urandom >/tmp/t.A
head -c $((16 << 20)) /dev/urandom >/tmp/t.B
head -c $((1 << 20)) /dev/urandom >/tmp/t.C
for s in o c; do
	dd if=/tmp/t.A of="$(org_for $s)" bs=1M oflag=direct 2>/dev/null
	dd if=/dev/zero of="$(cow_for $s)" bs=4k count=1 oflag=direct 2>/dev/null
	dm_create t.${s}morg "0 $osz $(type_for $s snapshot-origin) $(org_for $s)"
	dmsetup suspend t.${s}morg
	dm_create t.${s}snap "0 $osz $(prefix_for $s)snapshot $(org_for $s) $(cow_for $s) P 16"
	dmsetup resume t.${s}morg
	# 16 MiB of origin writes (2048 exceptions), then writes to the snapshot.
	dd if=/tmp/t.B of=/dev/mapper/t.${s}morg bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.C of=/dev/mapper/t.${s}snap bs=512 seek=40000 oflag=direct 2>/dev/null
	dd if=/dev/mapper/t.${s}snap of=/tmp/t.${s}want bs=1M 2>/dev/null
done
check "the two snapshots hold the same data before the merge" cmp /tmp/t.owant /tmp/t.cwant
check_eq "before the merge: status as C's" "$(status_of t.csnap)" "$(status_of t.osnap)"

# Handover: the origin's table becomes snapshot-merge of the snapshot's COW device.
for s in o c; do
	dmsetup suspend t.${s}snap
	dmsetup suspend t.${s}morg
	dmsetup load t.${s}morg --table "0 $osz $(type_for $s snapshot-merge) $(org_for $s) $(cow_for $s) P 16"
done
check "handover: the merge target resumes" dmsetup resume t.omorg
dmsetup resume t.cmorg
check_eq "the old snapshot table is invalid after the handover" "Invalid" "$(dmsetup status t.osnap | cut -d' ' -f4)"
for s in o c; do dmsetup resume t.${s}snap; dmsetup remove t.${s}snap; done
check "fio verify on the origin during the merge" fio_verify /dev/mapper/t.omorg \
	--rw=randwrite --bs=4k --offset=24M --size=4M --iodepth=16 --ioengine=libaio
check "our merge finishes" merged o
check "C's merge finishes" merged c
check_eq "merged: status as C's" "$(status_of t.cmorg)" "$(status_of t.omorg)"
check "the origin holds the snapshot's data (merged part)" same_region /dev/mapper/t.omorg 0 $((24 << 11)) /tmp/t.owant
check "the origin as C's outside fio's area" same_bytes /dev/mapper/t.omorg /dev/mapper/t.cmorg $((24 << 20))
check_eq "merge table as C's (devices aside)" "$(table_of t.cmorg | cut -d' ' -f1-3,6-)" \
	"$(table_of t.omorg | cut -d' ' -f1-3,6-)"
for s in o c; do dmsetup remove t.${s}morg; done
dm_create t.x1 "0 $osz snapshot /dev/ram0 /dev/ram2 P 16"
dm_create t.x2 "0 $osz orion-snapshot /dev/ram1 /dev/ram3 P 16"
check_eq "C reads our merged COW device: empty, as its own" "$(status_of t.x2)" "$(status_of t.x1)"
dmsetup remove t.x1 t.x2

# A merge started at activation: snapshot-merge created directly over a snapshot's COW.
for s in o c; do
	dd if=/tmp/t.A of="$(org_for $s)" bs=1M oflag=direct 2>/dev/null
	dd if=/dev/zero of="$(cow_for $s)" bs=4k count=1 oflag=direct 2>/dev/null
	dm_create t.${s}morg "0 $osz $(type_for $s snapshot-origin) $(org_for $s)"
	dmsetup suspend t.${s}morg
	dm_create t.${s}snap "0 $osz $(prefix_for $s)snapshot $(org_for $s) $(cow_for $s) P 32"
	dmsetup resume t.${s}morg
	dd if=/tmp/t.C of=/dev/mapper/t.${s}morg bs=64k seek=3 oflag=direct 2>/dev/null
	dd if=/tmp/t.C of=/dev/mapper/t.${s}snap bs=4k seek=1000 oflag=direct 2>/dev/null
	dd if=/dev/mapper/t.${s}snap of=/tmp/t.${s}want bs=1M 2>/dev/null
	dmsetup remove t.${s}snap t.${s}morg
done
dm_create t.omorg "0 $osz orion-s-merge /dev/ram0 /dev/ram2 P 32"
dm_create t.cmorg "0 $osz snapshot-merge /dev/ram1 /dev/ram3 P 32"
check "merge at activation: ours finishes" merged o
check "merge at activation: C's finishes" merged c
check "merge at activation: the origin holds the snapshot's data" cmp /dev/mapper/t.omorg /tmp/t.owant
check "merge at activation: the origin as C's" same_bytes /dev/mapper/t.omorg /dev/mapper/t.cmorg $((osz * 512))
check_eq "merge at activation: status as C's" "$(status_of t.cmorg)" "$(status_of t.omorg)"
for s in o c; do dmsetup remove t.${s}morg; done
bad_table snapshot-merge "65536 /dev/ram0 /dev/ram2 N 16" "a transient store"
