#!/bin/sh
# Benchmarks inside the VM: fio on linear and striped, ours beside C on identical backing
# devices (null_blk without memory, and brd), with the raw device as the limit. Prints a
# markdown table of IOPS and the ratio ours / C. Under TCG only the ratios mean anything.
set -e
export DM_DISABLE_UDEV=1
# Sections to run (kernel command line orion.tests=a,b; default all): basic, thin, snap,
# mirror (mirror-slow: only its rows on queue-limited legs), noise, paired; profile runs only when
# named.
sections=all
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	orion.tests=*) sections=$(echo "${arg#orion.tests=}" | tr , ' ') ;;
	orion.icount=*)
		echo
		echo "Clock: instruction counting (QEMU -icount shift=${arg#orion.icount=}): a second is"
		echo "a fixed number of guest instructions, so IOPS compare the instructions an I/O costs"
		echo "on one vCPU at a time; work spread over both vCPUs gains nothing here."
		ICOUNT=1
		# Runs repeat to the instruction: fewer and shorter ones say as much.
		ORION_BENCH_STEADY_RUNS=${ORION_BENCH_STEADY_RUNS:-3}
		ORION_BENCH_STEADY_RUNTIME=${ORION_BENCH_STEADY_RUNTIME:-1}
		;;
	orion.bench_*=*)
		# ORION_BENCH_* settings of the host (scripts/vm-run.sh passes them on).
		v=${arg#orion.}
		eval "ORION_$(echo "${v%%=*}" | tr a-z A-Z)=\${v#*=}"
		;;
	esac
done
want() { case " $sections " in *" all "* | *" $1 "*) return 0 ;; esac; return 1; }
RUNTIME=${ORION_BENCH_RUNTIME:-4}
# Single-submitter jobs run on one vCPU, the same for every side: under TCG the vCPUs differ
# in speed (an A/B with a job on each showed it), so a job the scheduler put on the other
# vCPU than its partner's measured the vCPUs, not the targets.
PIN="--cpus_allowed=${ORION_BENCH_CPU:-1}"

modprobe dm-bufio
modprobe dm-snapshot
modprobe dm-mirror
insmod /lib/modules/$(uname -r)/extra/orion_dm.ko prefix=orion-
modprobe null_blk nr_devices=4 gb=1 queue_mode=2 memory_backed=0 >/dev/null
modprobe dm-thin-pool
# brd_load MIB: brd's five devices of MIB MiB each, all empty (a reload frees their pages).
brd_load() {
	if [ -e /sys/module/brd ]; then rmmod brd; fi
	modprobe brd rd_nr=5 rd_size=$(($1 * 1024)) max_part=0
	if [ "$(cat /sys/block/ram0/size)" != $(($1 * 2048)) ]; then
		echo "brd: ram0 is not $1 MiB" >&2
		exit 1
	fi
}
brd_load 256

# iops DEV JOB: the IOPS of one fio job on DEV.
iops() {
	case "$2" in
	randread-qd1) a="--rw=randread --bs=4k --ioengine=psync --iodepth=1" ;;
	randwrite-qd1) a="--rw=randwrite --bs=4k --ioengine=psync --iodepth=1" ;;
	randread-qd32) a="--rw=randread --bs=4k --ioengine=libaio --iodepth=32" ;;
	randwrite-qd32) a="--rw=randwrite --bs=4k --ioengine=libaio --iodepth=32" ;;
	seqread-1m) a="--rw=read --bs=1M --ioengine=libaio --iodepth=4" ;;
	esac
	# Terse v3: field 8 is read IOPS, field 49 write IOPS.
	fio --name=b --filename="$1" --direct=1 --size=256M --time_based --runtime="$RUNTIME" \
		--ramp_time=1 --minimal $PIN $a | awk -F';' '{ print $8 + $49 }'
}

# warm MIB DEV...: writes the first MIB MiB of each brd device once, so that no measured run
# pays for brd allocating and clearing its pages.
warm() {
	mib=$1
	shift
	for d; do dd if=/dev/zero of=$d bs=1M count=$mib oflag=direct 2>/dev/null; done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# median of the arguments, and their min-max.
med() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
# medci VALUES...: a 95% confidence interval of their median, "[lo-hi]": order statistics k
# and n+1-k, k the largest with P(Binomial(n, 1/2) < k) <= 2.5% (no assumption about the
# spread's shape). Unlike min-max it narrows as runs are added; none below 6 runs.
medci() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		n = NR; p = 1; for (i = 0; i < n; i++) p /= 2
		k = 0; cum = p; pk = p
		while (cum <= 0.025) { k++; pk = pk * (n - k + 1) / k; cum += pk }
		if (k > 0) printf "[%s-%s]", v[k], v[n + 1 - k] }'
}
# verdict "MEDIAN (MIN-MAX)": faster or slower when the whole spread is on one side of 1.0,
# same when every run gave 1.00, else inconclusive.
verdict() {
	awk -v l="${2#(}" 'BEGIN { split(l, r, "-"); l = r[1] + 0; h = r[2]; sub(/\)/, "", h); h += 0
		if (l == 1 && h == 1) print "same"; else if (l >= 1) print "faster"
		else if (h < 1) print "slower"; else print "inconclusive" }'
}
RUNS=${ORION_BENCH_RUNS:-3}
# row LABEL N FN ARGS...: RUNS runs of `FN c ARGS` and `FN o ARGS`, interleaved (C, ours,
# C, ours...); the table row with the medians, the median ratio (per run pair) with its
# spread, and whether the spread stays on one side of 1. With ROW_REF set to a command, it
# runs once per pair too: its median is the reference column, and ours / the reference
# (per run, median and spread) comes before the ratio to C.
row() {
	label=$1 n=$2 fn=$3
	shift 3
	cs="" os="" rs="" refs="" rrs=""
	k=0
	while [ $k -lt "$RUNS" ]; do
		r=""
		[ -n "${ROW_REF:-}" ] && r=$($ROW_REF) && refs="$refs $r"
		c=$($fn c "$@")
		o=$($fn o "$@")
		cs="$cs $c" os="$os $o" rs="$rs $(ratio "$o" "$c")"
		[ -n "$r" ] && rrs="$rrs $(ratio "$o" "$r")"
		k=$((k + 1))
	done
	m=$(med $rs)
	verdict=$(verdict $m)
	ref=""
	vsref=""
	[ -n "${ROW_REF:-}" ] && ref=" $(med $refs | cut -d' ' -f1) |" && vsref=" $(med $rrs) $(medci $rrs) |"
	ci=$(medci $rs)
	echo "| $label | $n |$ref $(med $cs) | $(med $os) |$vsref $m | $verdict${ci:+, median $ci} |"
}

# Linear and striped on null_blk (no memory: the target's own cost) and brd; the raw device
# is the reference.
basic_job() {
	if [ "$1" = o ]; then iops /dev/mapper/o_$2 $3; else iops /dev/mapper/c_$2 $3; fi
}
if want basic; then
	for backing in nullb ram; do
		d0=/dev/${backing}0 d1=/dev/${backing}1 d2=/dev/${backing}2 d3=/dev/${backing}3
		dmsetup create c_lin --table "0 524288 linear $d0 0"
		dmsetup create o_lin --table "0 524288 orion-linear $d0 0"
		s="0 524288 striped 4 128 $d0 0 $d1 0 $d2 0 $d3 0"
		dmsetup create c_str --table "$s"
		dmsetup create o_str --table "$(echo "$s" | sed 's/ striped / orion-striped /')"
		echo
		echo "### linear and striped ($backing)"
		echo
		echo "| job | target | raw | C | orion | orion / raw median (min-max) | ratio median (min-max) | verdict |"
		echo "|-----|--------|-----|---|-------|------------------------------|------------------------|---------|"
		for job in randread-qd1 randwrite-qd1 randread-qd32 randwrite-qd32 seqread-1m; do
			ROW_REF="iops $d0 $job"
			row "$job" linear basic_job lin $job
			row "$job" striped basic_job str $job
			ROW_REF=""
		done
		dmsetup remove c_lin o_lin c_str o_str
	done
	echo
	echo "IOPS, fio ${RUNTIME}s per cell (4 KiB jobs; 1 MiB for seqread), $RUNS runs per cell with"
	echo "the raw device, C and ours interleaved; the ratio is orion / C per run pair."
fi

# Snapshots on brd: an origin of 128 MiB with N persistent snapshots (chunk 4 KiB, as LVM2's
# default), C's on ram0/ram2, ours on ram1/ram3. "first write" writes 32 MiB of 4 KiB
# random blocks once each to a fresh origin (every write copies on write into each
# snapshot); "snapshot read" reads a snapshot whose first 16 MiB were copied. The brd
# devices are written once before the first row (no row pays for brd allocating pages).
snap_up() {
	side=$1 n=$2
	if [ "$side" = o ]; then
		org=/dev/ram1 cowd=/dev/ram3 ot=orion-s-origin st=orion-snapshot
	else
		org=/dev/ram0 cowd=/dev/ram2 ot=snapshot-origin st=snapshot
	fi
	dmsetup create ${side}_org --table "0 262144 $ot $org"
	i=0
	while [ $i -lt "$n" ]; do
		cs=${SNAP_COW_SECTORS:-98304}
		dmsetup create ${side}_cow$i --table "0 $cs linear $cowd $((i * cs))"
		dd if=/dev/zero of=/dev/mapper/${side}_cow$i bs=4k count=1 oflag=direct 2>/dev/null
		dmsetup suspend ${side}_org
		dmsetup create ${side}_snap$i --table "0 262144 $st $org /dev/mapper/${side}_cow$i P 8"
		dmsetup resume ${side}_org
		i=$((i + 1))
	done
}
snap_down() {
	for d in $(dmsetup ls | awk -v p="^$1_" '$1 ~ p && $1 ~ /snap/ { print $1 }'); do dmsetup remove "$d"; done
	dmsetup remove $1_org
	for d in $(dmsetup ls | awk -v p="^$1_cow" '$1 ~ p { print $1 }'); do dmsetup remove "$d"; done
}
# snap_job SIDE NSNAP JOB: one measurement on a fresh stack.
snap_job() {
	snap_up "$1" "$2"
	case "$3" in
	write-qd1) fio --name=b --filename=/dev/mapper/$1_org --direct=1 --rw=randwrite --bs=4k $PIN \
		--size=32M --ioengine=psync --minimal | awk -F';' '{ print $49 }' ;;
	write-qd32) fio --name=b --filename=/dev/mapper/$1_org --direct=1 --rw=randwrite --bs=4k $PIN \
		--size=32M --ioengine=libaio --iodepth=32 --minimal | awk -F';' '{ print $49 }' ;;
	read-qd32)
		dd if=/dev/urandom of=/dev/mapper/$1_org bs=1M count=16 oflag=direct 2>/dev/null
		fio --name=b --filename=/dev/mapper/$1_snap0 --direct=1 --rw=randread --bs=4k --size=32M $PIN \
			--ioengine=libaio --iodepth=32 --time_based --runtime="$RUNTIME" --ramp_time=1 \
			--minimal | awk -F';' '{ print $8 }'
		;;
	esac
	snap_down "$1"
}
# Thin provisioning on brd (devices of 768 MiB in this section), ours beside C's dm-thin,
# 64 KiB blocks. First-write and snapshot-break rows take turns on one pool's devices (768
# MiB of data on ram0, metadata on ram2): "first" rows write a fresh volume of 736 MiB (every
# write provisions a block: 64 KiB sequential writes are whole blocks; 4 KiB random writes
# land on each of the 11776 block starts once, in random order, the rest of each block
# zeroed, or not with skip_block_zeroing); the two-volume row does the same on two volumes of
# 368 MiB; "snapshot break" writes 4 KiB at the 4096 block starts of a provisioned 256 MiB
# origin just snapshotted (each write copies its shared block). A job has a fixed cost of
# about 0.1 s on both sides, whatever its number of writes: in the 0.2 s jobs of the 192 MiB
# volumes of before it was half of ours and pulled the ratios towards 1; in these (ours at
# QD32: 0.5 s) it still pulls them, less. "overwrite" and
# "read" run on 64 MiB volumes of 240 MiB pools, C's on ram0/ram2 and ours on ram1/ram3,
# provisioned in full beforehand. Reference: C's linear on ram4. The data devices are
# written once before the first row, so that no row pays for brd allocating its pages.
# thin_up SIDE ZERO [MIB [VOLUMES]]: a fresh pool with one (or two) thin volumes of MIB
# (default 64) MiB. THIN_DEVS="DATA META" and POOL_SECTORS put the pool elsewhere (both
# sides on the same devices, one after the other).
thin_up() {
	side=$1 zero=$2 mib=${3:-64} vols=${4:-1}
	if [ "$side" = o ]; then
		data=/dev/ram1 meta=/dev/ram3 pt=orion-thin-pool tt=orion-thin
	else
		data=/dev/ram0 meta=/dev/ram2 pt=thin-pool tt=thin
	fi
	if [ -n "${THIN_DEVS:-}" ]; then
		set -- $THIN_DEVS
		data=$1 meta=$2
	fi
	dd if=/dev/zero of=$meta bs=4k count=1 oflag=direct 2>/dev/null
	feat=0
	[ "$zero" = nozero ] && feat="1 skip_block_zeroing"
	dmsetup create ${side}_pool --table "0 ${POOL_SECTORS:-491520} $pt $meta $data 128 0 $feat"
	dmsetup message ${side}_pool 0 "create_thin 0"
	dmsetup create ${side}_thin --table "0 $((mib * 2048)) $tt /dev/mapper/${side}_pool 0"
	if [ "$vols" = 2 ]; then
		dmsetup message ${side}_pool 0 "create_thin 1"
		dmsetup create ${side}_thin1 --table "0 $((mib * 2048)) $tt /dev/mapper/${side}_pool 1"
	fi
}
thin_down() {
	dmsetup remove $1_thin1 2>/dev/null || true
	dmsetup remove $1_thin
	dmsetup remove $1_snap 2>/dev/null || true
	dmsetup remove $1_pool
}
# first_iolog DEV MIB: prints the path of a fio iolog that writes 4 KiB at each block start of
# the first MIB MiB of DEV once, in one shuffled order (fixed seed, the same for both sides):
# fio's own random offsets with --ba repeat blocks. Made once per device and size (awk is
# slow under TCG).
first_iolog() {
	log=/tmp/first-${1##*/}-$2.iolog
	echo "$log"
	[ -s "$log" ] && return 0
	awk -v f="$1" -v n=$(($2 * 16)) 'BEGIN {
		srand(7)
		for (i = 0; i < n; i++) p[i] = i
		for (i = n - 1; i > 0; i--) { j = int(rand() * (i + 1)); x = p[i]; p[i] = p[j]; p[j] = x }
		print "fio version 2 iolog"; print f " add"; print f " open"
		for (i = 0; i < n; i++) print f " write " p[i] * 65536 " 4096"
		print f " close"
	}' >"$log"
}
# first_up SIDE ZERO MIB [VOLUMES]: thin_up on the first-write rows' pool, 768 MiB of data on
# ram0 with metadata on ram2, both sides on the same devices in turn.
first_up() { THIN_DEVS="/dev/ram0 /dev/ram2" POOL_SECTORS=1572864 thin_up "$@"; }
# thin_job SIDE ZERO JOB: one measurement on a fresh pool.
thin_job() {
	side=$1
	case "$3" in
	first-*) mib=736 ;;
	*) mib=256 ;;
	esac
	first_up "$1" "$2" $mib
	t=/dev/mapper/${side}_thin
	log=$(first_iolog $t $mib)
	first="--read_iolog=$log --replay_no_stall=1"
	case "$3" in
	first-seq64k) a="--rw=write --bs=64k --size=${mib}M --ioengine=psync" ;;
	first-rand4k-qd1) a="$first --ioengine=psync" ;;
	first-rand4k-qd32) a="$first --ioengine=libaio --iodepth=32" ;;
	snap-break-qd32) a="$first --ioengine=libaio --iodepth=32" ;;
	esac
	if [ "$3" = snap-break-qd32 ]; then
		# What the origin holds does not matter to the copies (and urandom is slow here).
		dd if=/dev/zero of=$t bs=1M count=$mib oflag=direct 2>/dev/null
		dmsetup suspend ${side}_thin
		dmsetup message ${side}_pool 0 "create_snap 1 0"
		dmsetup resume ${side}_thin
	fi
	fio --name=b --filename=$t --direct=1 $PIN $a --minimal | awk -F';' '{ print $8 + $49 }'
	thin_down "$side"
}
# thin_two SIDE ZERO: first writes to two thin volumes of one pool at once, one fio job of
# QD32 on each (the total IOPS): provisioning on one volume must not wait for the other's.
thin_two() {
	side=$1
	first_up "$1" "$2" 368 2
	log0=$(first_iolog /dev/mapper/${side}_thin 368)
	log1=$(first_iolog /dev/mapper/${side}_thin1 368)
	fio --direct=1 --ioengine=libaio --iodepth=32 --replay_no_stall=1 --group_reporting \
		--name=a --filename=/dev/mapper/${side}_thin --read_iolog=$log0 \
		--name=b --filename=/dev/mapper/${side}_thin1 --read_iolog=$log1 \
		--minimal | awk -F';' '/^3;/ { print $8 + $49 }'
	thin_down "$side"
}
# steady_args JOB: fio's arguments for an overwrite or read job (4 KiB random, short runs).
steady_args() {
	case "$1" in *-qd1) e="--ioengine=psync" ;; *) e="--ioengine=libaio --iodepth=32" ;; esac
	case "$1" in overwrite-*) rw=randwrite ;; *) rw=randread ;; esac
	echo "--direct=1 --rw=$rw --bs=4k --size=64M --time_based --runtime=$STEADY_RUNTIME --ramp_time=500ms $e"
}
# steady_job SIDE JOB: one short run of an overwrite or read job on the standing volume of
# SIDE (c, o, ref: C linear, or aa0/aa1: the noise rows' two C linears).
steady_job() {
	case "$1" in ref) t=/dev/mapper/ref_lin ;; aa*) t=/dev/mapper/$1 ;; *) t=/dev/mapper/$1_thin ;; esac
	fio --name=b --filename=$t $(steady_args "$2") $PIN --minimal | awk -F';' '{ print $8 + $49 }'
}
# Overwrite and read rows run on volumes set up once and provisioned in full (ours, C's, and
# the reference), with short runs in turn (reference, C, ours, ...): this host's speed
# drifts by a third within seconds (C linear alone on brd: 40k-83k IOPS at QD1 in
# consecutive 2 s runs), so the closer in time the runs of a triple, the more their ratio
# says about the targets.
# steady_up [random]: the standing 64 MiB volumes of C and ours, provisioned in full and
# filled with random bytes; with "random", provisioned first in random order (a 4 KiB write
# at each block start, shuffled, as the first-write rows): every block is its own extent,
# scattered over the data device, as on a volume that grew by random writes.
steady_up() {
	for side in c o; do
		thin_up $side zero
		if [ "${1:-}" = random ]; then
			log=$(first_iolog /dev/mapper/${side}_thin 64)
			fio --name=p --filename=/dev/mapper/${side}_thin --direct=1 \
				--read_iolog=$log --replay_no_stall=1 --ioengine=libaio \
				--iodepth=32 >/dev/null
		fi
		dd if=/dev/urandom of=/dev/mapper/${side}_thin bs=1M count=64 oflag=direct 2>/dev/null
	done
}
STEADY_RUNS=${ORION_BENCH_STEADY_RUNS:-9}
STEADY_RUNTIME=${ORION_BENCH_STEADY_RUNTIME:-2}
if want thin; then
	brd_load 768
	warm 768 /dev/ram0
	warm 128 /dev/ram1
	warm 64 /dev/ram4
	warm 16 /dev/ram2 /dev/ram3
	dmsetup create ref_lin --table "0 131072 linear /dev/ram4 0"
	dd if=/dev/urandom of=/dev/mapper/ref_lin bs=1M count=64 oflag=direct 2>/dev/null
	echo
	echo "### thin (brd)"
	echo
	echo "| job | zeroing | C dm-thin | orion | ratio median (min-max) | verdict |"
	echo "|-----|---------|-----------|-------|------------------------|---------|"
	for z in zero nozero; do
		for job in first-seq64k first-rand4k-qd1 first-rand4k-qd32; do
			row "$job" $z thin_job $z $job
		done
	done
	row snap-break-qd32 zero thin_job zero snap-break-qd32
	for z in zero nozero; do
		row first-rand4k-qd32-2thins $z thin_two $z
	done
	echo
	echo "| job | zeroing | C linear (reference) | C dm-thin | orion | orion / C linear median (min-max) | ratio median (min-max) | verdict |"
	echo "|-----|---------|----------------------|-----------|-------|-----------------------------------|------------------------|---------|"
	steady_up
	runs=$RUNS
	RUNS=$STEADY_RUNS
	for job in overwrite-qd1 overwrite-qd32 read-qd1 read-qd32; do
		ROW_REF="steady_job ref $job"
		row "$job" zero steady_job $job
		ROW_REF=""
	done
	thin_down c
	thin_down o
	steady_up random
	for job in overwrite-qd1 read-qd1; do
		ROW_REF="steady_job ref $job"
		row "$job (random-provisioned)" zero steady_job $job
		ROW_REF=""
	done
	RUNS=$runs
	thin_down c
	thin_down o
	dmsetup remove ref_lin
	brd_load 256
	echo
	echo "Thin rows: IOPS; first writes and snapshot break: $RUNS runs per cell on fresh pools,"
	echo "C and ours interleaved; overwrite and read: $STEADY_RUNS runs of ${STEADY_RUNTIME}s per cell on"
	echo "standing volumes (provisioned in order by a dd, or random-provisioned), the reference,"
	echo "C and ours in turn. Ratios are taken per run (goal for overwrite and read: orion / C"
	echo "linear at least 0.9)."
fi
if want snap; then
	warm 256 /dev/ram0 /dev/ram1 /dev/ram2 /dev/ram3
	echo
	echo "### snapshots (brd)"
	echo
	echo "| job | snapshots | C IOPS | orion IOPS | ratio median (min-max) | verdict |"
	echo "|-----|-----------|--------|------------|------------------------|---------|"
	row "first write-qd1" 1 snap_job 1 write-qd1
	row "first write-qd32" 1 snap_job 1 write-qd32
	row "first write-qd32" 4 snap_job 4 write-qd32
	row "snapshot read-qd32" 1 snap_job 1 read-qd32
	echo
	echo "Snapshot rows: $RUNS runs per cell, C and ours interleaved; the ratio is taken per run pair."
fi

# Mirrors: 64 MiB legs, C's at the start of each leg device, ours 64 MiB further on. I/O
# rows use nosync mirrors (no resync running); "resync" is the time a core-log mirror takes
# to become in sync, in MB/s. Legs on brd measure the target's own cost (a brd read is a
# memcpy by the submitting CPU, so spreading reads over legs cannot add throughput); legs on
# "slow" null_blk devices (1 ms per request, at most 8 in flight: a disk's queue) show what
# balancing reads gains when each leg's queue is the limit.
slow_up() {
	mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
	for i in 0 1 2; do
		d=/sys/kernel/config/nullb/slow$i
		mkdir $d
		echo 2 >$d/queue_mode
		echo 2 >$d/irqmode
		echo 1000000 >$d/completion_nsec
		echo 8 >$d/hw_queue_depth
		echo 1024 >$d/size
		echo 1 >$d/power
	done
}
mir_up() {
	side=$1 n=$2 sync=$3 kind=$4
	if [ "$side" = o ]; then off=131072 t=orion-mirror; else off=0 t=mirror; fi
	legs="" i=0
	while [ $i -lt "$n" ]; do
		if [ "$kind" = slow ]; then legs="$legs /dev/slow$i $off"; else legs="$legs /dev/ram$i $off"; fi
		i=$((i + 1))
	done
	if [ "$sync" = nosync ]; then log="core 2 1024 nosync"; else log="core 1 1024"; fi
	dmsetup create ${side}_mir --table "0 131072 $t $log $n$legs"
}
uptime_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
# mir_job SIDE LEGS JOB [slow]
mir_job() {
	ms=$1 kind=${4:-ram}
	case "$3" in
	resync)
		t0=$(uptime_cs)
		mir_up "$1" "$2" sync "$kind"
		while :; do
			set -- $(dmsetup status ${ms}_mir)
			for a; do case $a in */*) st=$a ;; esac; done
			[ "${st%/*}" = "${st#*/}" ] && break
			sleep 0.05
		done
		t1=$(uptime_cs)
		awk -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", 64 * 100 / (t > 0 ? t : 1) }'
		;;
	*)
		mir_up "$1" "$2" nosync "$kind"
		case "$3" in
		write-qd32) a="--rw=randwrite" ;;
		read-qd32) a="--rw=randread" ;;
		esac
		fio --name=b --filename=/dev/mapper/${1}_mir --direct=1 $a --bs=4k --size=64M \
			--ioengine=libaio --iodepth=32 --time_based --runtime="$RUNTIME" --ramp_time=1 \
			--minimal | awk -F';' '{ print $8 + $49 }'
		;;
	esac
	dmsetup remove ${ms}_mir
}
if want mirror || want mirror-slow; then
	warm 128 /dev/ram0 /dev/ram1 /dev/ram2
	slow_up
	echo
	echo "### mirrors"
	echo
	echo "| job | legs | C | orion | ratio median (min-max) | verdict |"
	echo "|-----|------|---|-------|------------------------|---------|"
	if want mirror; then
		for r in "write-qd32 2" "write-qd32 3" "read-qd32 2" "read-qd32 3" "resync 2"; do
			row "brd ${r% *}" ${r#* } mir_job ${r#* } ${r% *}
		done
	fi
	for r in "write-qd32 2" "read-qd32 2" "read-qd32 3"; do
		row "slow ${r% *}" ${r#* } mir_job ${r#* } ${r% *} slow
	done
	echo
	echo "Mirror rows: IOPS (resync: MB/s), $RUNS runs per cell, C and ours interleaved;"
	echo "slow = null_blk legs completing each request after 1 ms with at most 8 in flight."
fi

# The method's own noise: C linear against C linear on two brd devices, by the same
# interleaved runs as every row (ours is not involved). Their spread is what the host's
# drift alone does to a ratio; under instruction counting (ORION_ICOUNT) it should vanish.
aa_job() {
	if [ "$1" = o ]; then steady_job aa1 "$2"; else steady_job aa0 "$2"; fi
}
if want noise; then
	warm 256 /dev/ram0 /dev/ram1
	dmsetup create aa0 --table "0 131072 linear /dev/ram0 0"
	dmsetup create aa1 --table "0 131072 linear /dev/ram1 0"
	echo
	echo "### noise floor: C linear / C linear (brd)"
	echo
	echo "| job | runs | C linear A | C linear B | ratio B / A median (min-max) | verdict |"
	echo "|-----|------|------------|------------|------------------------------|---------|"
	runs=$RUNS
	RUNS=$STEADY_RUNS
	for job in read-qd1 overwrite-qd1 read-qd32; do
		row "$job" $RUNS aa_job $job
	done
	RUNS=$runs
	dmsetup remove aa0 aa1
	echo
	echo "Noise rows: $STEADY_RUNS runs of ${STEADY_RUNTIME}s per cell, A and B in turn, as the thin steady rows."
fi

# Paired runs (ORION_BENCH=paired): the two sides at the same time, both fio jobs pinned to
# the same vCPU, so the scheduler gives them turns of a few milliseconds and whatever the
# host's speed does within a run, it does to both. Where each job keeps its vCPU busy (brd
# completes every I/O in the submitter: the overwrite and read rows), each gets half of its
# time and the IOPS ratio is the inverse ratio of the CPU time an I/O costs, measured in real
# time. A side whose writes wait for kworkers (C's snapshot copies and commits) gets more
# than half: the kworkers are scheduled beside both fio jobs.
# fio_pair ORDER FIO-ARGS -- A B: one fio run with a job on A and one on B (ORDER ab or ba:
# which is started first), the other arguments common; prints "IOPS_A IOPS_B".
fio_pair() {
	order=$1
	shift
	common=""
	while [ "$1" != -- ]; do
		common="$common $1"
		shift
	done
	a=$2 b=$3
	if [ "$order" = ab ]; then first=$a second=$b; else first=$b second=$a; fi
	set -- $(fio $common $PIN --minimal --name=a --filename="$first" --name=b --filename="$second" |
		awk -F';' '{ printf "%s ", $8 + $49 }')
	# A failed fio gives no ratio ("-" in the row), not a made-up one.
	if [ $# != 2 ]; then
		echo "0 0"
	elif [ "$order" = ab ]; then echo "$1 $2"; else echo "$2 $1"; fi
}
# pair_steady JOB A B ORDER: a steady job (as steady_job's) on standing devices
# /dev/mapper/A and B.
pair_steady() {
	fio_pair "$4" $(steady_args "$1") -- /dev/mapper/$2 /dev/mapper/$3
}
# pair_snap JOB ORDER: first writes to the origins (C's, ours) of fresh one-snapshot stacks
# for 1 s (fio's random map: each write lands on a chunk not yet copied), or reads of the
# snapshots. The COW devices (130 MiB) hold an exception for every chunk of the origin, so
# no run can fill one; a snapshot found invalid all the same voids the run.
pair_snap() {
	SNAP_COW_SECTORS=266240 snap_up c 1
	SNAP_COW_SECTORS=266240 snap_up o 1
	case "$1" in
	write-qd1) a="--rw=randwrite --ioengine=psync --runtime=1" ;;
	read-qd32)
		dd if=/dev/urandom of=/dev/mapper/c_org bs=1M count=16 oflag=direct 2>/dev/null
		dd if=/dev/urandom of=/dev/mapper/o_org bs=1M count=16 oflag=direct 2>/dev/null
		a="--rw=randread --ioengine=libaio --iodepth=32 --runtime=$STEADY_RUNTIME --ramp_time=500ms"
		;;
	esac
	case "$1" in write-*) d=org ;; *) d=snap0 ;; esac
	r=$(fio_pair "$2" --direct=1 --bs=4k --size=128M --time_based $a -- /dev/mapper/c_$d /dev/mapper/o_$d)
	if dmsetup status c_snap0 o_snap0 | grep -q Invalid; then echo "0 0"; else echo "$r"; fi
	snap_down c
	snap_down o
}
# pair_row LABEL FN ARGS...: STEADY_RUNS runs (rounded up to even) of `FN ARGS ORDER`
# (ORDER ab, ba, ab ...: each side starts first as often); B / A per run.
pair_row() {
	label=$1
	shift
	as="" bs="" rs=""
	n=$(((STEADY_RUNS + 1) / 2 * 2))
	k=0
	while [ $k -lt "$n" ]; do
		if [ $((k % 2)) = 0 ]; then order=ab; else order=ba; fi
		r=$("$@" $order)
		x=${r% *} y=${r#* }
		as="$as $x" bs="$bs $y" rs="$rs $(ratio "$y" "$x")"
		k=$((k + 1))
	done
	m=$(med $rs)
	ci=$(medci $rs)
	echo "| $label | $n | $(med $as) | $(med $bs) | $m | $(verdict $m)${ci:+, median $ci} |"
}
if want paired; then
	warm 256 /dev/ram0 /dev/ram1 /dev/ram2 /dev/ram3 /dev/ram4
	dmsetup create aa0 --table "0 131072 linear /dev/ram4 0"
	dmsetup create aa1 --table "0 131072 linear /dev/ram4 131072"
	dmsetup create o_lin --table "0 131072 orion-linear /dev/ram4 262144"
	dd if=/dev/urandom of=/dev/mapper/aa0 bs=1M count=64 oflag=direct 2>/dev/null
	dd if=/dev/urandom of=/dev/mapper/aa1 bs=1M count=64 oflag=direct 2>/dev/null
	dd if=/dev/urandom of=/dev/mapper/o_lin bs=1M count=64 oflag=direct 2>/dev/null
	steady_up
	echo
	echo "### paired on one vCPU (brd)"
	echo
	echo "| job: B / A | runs | A | B | B / A median (min-max) | verdict |"
	echo "|------------|------|---|---|-------------------------|---------|"
	for job in read-qd1 overwrite-qd1 read-qd32 overwrite-qd32; do
		pair_row "$job: C linear / C linear (noise)" pair_steady $job aa0 aa1
		pair_row "$job: orion linear / C linear" pair_steady $job aa0 o_lin
		pair_row "$job: orion thin / C linear" pair_steady $job aa1 o_thin
		pair_row "$job: orion thin / C dm-thin" pair_steady $job c_thin o_thin
	done
	thin_down c
	thin_down o
	dmsetup remove aa0 aa1 o_lin
	# Striped over four brd devices, 64 KiB chunks: C's at the start of each, ours 64 MiB on.
	for side in c o; do
		if [ $side = o ]; then off=131072 t=orion-striped; else off=0 t=striped; fi
		dmsetup create ${side}_str --table "0 262144 $t 4 128 /dev/ram0 $off /dev/ram1 $off /dev/ram2 $off /dev/ram3 $off"
		dd if=/dev/urandom of=/dev/mapper/${side}_str bs=1M count=64 oflag=direct 2>/dev/null
	done
	for job in read-qd1 overwrite-qd1 read-qd32 overwrite-qd32; do
		pair_row "$job: orion striped / C striped" pair_steady $job c_str o_str
	done
	dmsetup remove c_str o_str
	pair_row "snapshot read-qd32: orion / C" pair_snap read-qd32
	pair_row "snapshot first write-qd1: orion / C" pair_snap write-qd1
	echo
	echo "Paired rows: $(((STEADY_RUNS + 1) / 2 * 2)) runs of ${STEADY_RUNTIME}s (first writes: 1 s on fresh stacks), A"
	echo "and B at once on one vCPU, the first-started side swapped each run; thin volumes"
	echo "provisioned in full beforehand. Goal for thin / C linear: at least 0.9. In the snapshot"
	echo "write row C's copies and commits run in kworkers beside both jobs (ours run in its job)."
fi

# Profiles (ORION_BENCH=profile only; not part of "all"): where the CPU time goes, ours and
# C's, on the workloads whose goals are missed. Each workload runs alone and `perf record`
# samples every CPU for a second in its middle (fio's start-up under TCG is a large part of
# a short run); the samples go out raw, between markers, for scripts/perf-fold.py.
if case " $sections " in *" profile "*) true ;; *) false ;; esac; then
	echo 0 >/proc/sys/kernel/kptr_restrict
	echo -1 >/proc/sys/kernel/perf_event_paranoid
	# A data device large enough for a first-write run of a few seconds.
	brd_load 768
	warm 768 /dev/ram0
	warm 128 /dev/ram1 /dev/ram2 /dev/ram3
	# sample NAME CMD...: runs CMD in the background and records a second of its middle.
	# Under instruction counting a job's guest time is short (a QD1 snapshot job of 44 MiB
	# lasts 0.33 s) and fio's start-up costs both sides alike: the whole job is recorded.
	# The kernel has no high-resolution timers, so samples come at the tick (250 Hz)
	# whatever -F says.
	sample() {
		name=$1
		shift
		if [ -n "${ICOUNT:-}" ]; then
			perf record -q -a -g -F 2000 -e cpu-clock -o /tmp/perf.data -- "$@" >/tmp/sample.out
		else
			"$@" >/tmp/sample.out &
			sleep 0.6
			perf record -q -a -g -F 2000 -e cpu-clock -o /tmp/perf.data -- sleep 1
			wait
		fi
		echo "#### PROFILE $name: $(cat /tmp/sample.out) IOPS"
		perf script -i /tmp/perf.data -F comm,cpu,ip,sym 2>/dev/null
		echo "#### END"
	}
	# profiled NAME: whether NAME is wanted (ORION_BENCH_PROFILE=word keeps the profiles
	# whose name has it).
	profiled() { case "$1" in *"${ORION_BENCH_PROFILE:-}"*) return 0 ;; esac; return 1; }
	# Each profile runs ORION_BENCH_PROFILE_RUNS times a side, C and ours in turn; the
	# runs pool their samples (under instruction counting the tick, 250 Hz, takes a few
	# hundred samples from a job).
	sides=$(i=0; while [ $i -lt "${ORION_BENCH_PROFILE_RUNS:-1}" ]; do echo c o; i=$((i + 1)); done)
	# thin first writes: one 4 KiB write at each block start of a 736 MiB volume, QD32.
	prof_thin() {
		side=$1 zero=$2
		profiled "thin-first-qd32-$zero" || return 0
		first_up $side $zero 736
		log=$(first_iolog /dev/mapper/${side}_thin 736)
		sample "thin-first-qd32-$zero $side" sh -c "fio --name=b --filename=/dev/mapper/${side}_thin \
			--direct=1 --read_iolog=$log --replay_no_stall=1 --ioengine=libaio \
			--iodepth=32 --minimal | awk -F';' '{ print \$8 + \$49 }'"
		thin_down $side
	}
	for z in zero nozero; do
		for side in $sides; do prof_thin $side $z; done
	done
	# thin first writes of whole blocks: 64 KiB sequential, QD1 (the seq64k rows).
	for side in $sides; do
		profiled thin-first-seq64k-nozero || break
		first_up $side nozero 736
		sample "thin-first-seq64k-nozero $side" sh -c "fio --name=b \
			--filename=/dev/mapper/${side}_thin --direct=1 --rw=write --bs=64k --size=736M \
			--ioengine=psync $PIN --minimal | awk -F';' '{ print \$49 }'"
		thin_down $side
	done
	# thin's map fast path beside C linear (its goal's reference): 4 KiB random reads, QD1,
	# of a 64 MiB thin volume provisioned in full (side c is C linear, not dm-thin).
	for side in $sides; do
		profiled steady-read-qd1 || break
		if [ "$side" = o ]; then
			THIN_DEVS="/dev/ram0 /dev/ram1" thin_up o zero
			t=/dev/mapper/o_thin
		else
			dmsetup create ref_lin --table "0 131072 linear /dev/ram0 0"
			t=/dev/mapper/ref_lin
		fi
		dd if=/dev/urandom of=$t bs=1M count=64 oflag=direct 2>/dev/null
		sample "steady-read-qd1 $side" sh -c "fio --name=b --filename=$t --direct=1 \
			--rw=randread --bs=4k --size=64M --time_based --runtime=3 --ioengine=psync $PIN \
			--minimal | awk -F';' '{ print \$8 }'"
		if [ "$side" = o ]; then thin_down o; else dmsetup remove ref_lin; fi
	done
	# snapshot origin first writes, one snapshot, QD32 and QD1 (44 MiB: a QD1 run lasts past
	# the sampled second and its exceptions fit the 48 MiB COW device).
	for side in $sides; do
		profiled snap-first-qd32 || break
		snap_up $side 1
		sample "snap-first-qd32 $side" sh -c "fio --name=b --filename=/dev/mapper/${side}_org \
			--direct=1 --rw=randwrite --bs=4k --size=32M --ioengine=libaio --iodepth=32 \
			--minimal | awk -F';' '{ print \$49 }'"
		snap_down $side
	done
	for side in $sides; do
		profiled snap-first-qd1 || break
		snap_up $side 1
		sample "snap-first-qd1 $side" sh -c "fio --name=b --filename=/dev/mapper/${side}_org \
			--direct=1 --rw=randwrite --bs=4k --size=44M --ioengine=psync $PIN \
			--minimal | awk -F';' '{ print \$49 }'"
		snap_down $side
	done
fi
