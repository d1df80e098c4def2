#!/bin/sh
# Benchmarks inside the VM: fio on linear and striped, ours beside C on identical backing
# devices (null_blk without memory, and brd), with the raw device as the limit. Prints a
# markdown table of IOPS and the ratio ours / C. Under TCG only the ratios mean anything.
set -e
export DM_DISABLE_UDEV=1
RUNTIME=${ORION_BENCH_RUNTIME:-4}

modprobe dm-bufio
modprobe dm-snapshot
modprobe dm-mirror
insmod /lib/modules/$(uname -r)/extra/orion_dm.ko prefix=orion-
modprobe null_blk nr_devices=4 gb=1 queue_mode=2 memory_backed=0 >/dev/null
modprobe brd rd_nr=4 rd_size=262144 max_part=0

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
		--ramp_time=1 --minimal $a | awk -F';' '{ print $8 + $49 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

for backing in nullb ram; do
	d0=/dev/${backing}0 d1=/dev/${backing}1 d2=/dev/${backing}2 d3=/dev/${backing}3
	dmsetup create c_lin --table "0 524288 linear $d0 0"
	dmsetup create o_lin --table "0 524288 orion-linear $d0 0"
	s="0 524288 striped 4 128 $d0 0 $d1 0 $d2 0 $d3 0"
	dmsetup create c_str --table "$s"
	dmsetup create o_str --table "$(echo "$s" | sed 's/ striped / orion-striped /')"
	echo
	echo "### backing: $backing"
	echo
	echo "| job | raw | linear C | linear orion | ratio | striped C | striped orion | ratio |"
	echo "|-----|-----|----------|--------------|-------|-----------|---------------|-------|"
	for job in randread-qd1 randwrite-qd1 randread-qd32 randwrite-qd32 seqread-1m; do
		raw=$(iops $d0 $job)
		cl=$(iops /dev/mapper/c_lin $job)
		ol=$(iops /dev/mapper/o_lin $job)
		cs=$(iops /dev/mapper/c_str $job)
		os=$(iops /dev/mapper/o_str $job)
		echo "| $job | $raw | $cl | $ol | $(ratio "$ol" "$cl") | $cs | $os | $(ratio "$os" "$cs") |"
	done
	dmsetup remove c_lin o_lin c_str o_str
done
echo
echo "IOPS from one fio run of ${RUNTIME}s per cell (4 KiB jobs; 1 MiB for seqread); ratio = orion / C."

# Snapshots on brd: an origin of 64 MiB with N persistent snapshots (chunk 4 KiB, as LVM2's
# default), C's on ram0/ram2, ours on ram1/ram3. "first write" writes 16 MiB of 4 KiB
# random blocks once each to a fresh origin (every write copies on write into each
# snapshot); "snapshot read" reads a snapshot whose first 16 MiB were copied.
SNAP_RUNS=${ORION_BENCH_SNAP_RUNS:-3}
snap_up() {
	side=$1 n=$2
	if [ "$side" = o ]; then
		org=/dev/ram1 cowd=/dev/ram3 ot=orion-s-origin st=orion-snapshot
	else
		org=/dev/ram0 cowd=/dev/ram2 ot=snapshot-origin st=snapshot
	fi
	dmsetup create ${side}_org --table "0 131072 $ot $org"
	i=0
	while [ $i -lt "$n" ]; do
		dmsetup create ${side}_cow$i --table "0 49152 linear $cowd $((i * 49152))"
		dd if=/dev/zero of=/dev/mapper/${side}_cow$i bs=4k count=1 oflag=direct 2>/dev/null
		dmsetup suspend ${side}_org
		dmsetup create ${side}_snap$i --table "0 131072 $st $org /dev/mapper/${side}_cow$i P 8"
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
	write-qd1) fio --name=b --filename=/dev/mapper/$1_org --direct=1 --rw=randwrite --bs=4k \
		--size=16M --ioengine=psync --minimal | awk -F';' '{ print $49 }' ;;
	write-qd32) fio --name=b --filename=/dev/mapper/$1_org --direct=1 --rw=randwrite --bs=4k \
		--size=16M --ioengine=libaio --iodepth=32 --minimal | awk -F';' '{ print $49 }' ;;
	read-qd32)
		dd if=/dev/urandom of=/dev/mapper/$1_org bs=1M count=16 oflag=direct 2>/dev/null
		fio --name=b --filename=/dev/mapper/$1_snap0 --direct=1 --rw=randread --bs=4k --size=32M \
			--ioengine=libaio --iodepth=32 --time_based --runtime="$RUNTIME" --ramp_time=1 \
			--minimal | awk -F';' '{ print $8 }'
		;;
	esac
	snap_down "$1"
}
# row LABEL FN N JOB: SNAP_RUNS runs of `FN c N JOB` and `FN o N JOB`, interleaved; the
# table row with the medians, the median ratio (per run pair) with its spread, and whether
# the spread stays on one side of 1.
row() {
	label=$1 fn=$2 n=$3 job=$4
	cs="" os="" rs=""
	k=0
	while [ $k -lt "$SNAP_RUNS" ]; do
		c=$($fn c "$n" "$job")
		o=$($fn o "$n" "$job")
		cs="$cs $c" os="$os $o" rs="$rs $(ratio "$o" "$c")"
		k=$((k + 1))
	done
	m=$(med $rs)
	lo=${m#*(}
	lo=${lo%-*}
	hi=${m##*-}
	hi=${hi%)}
	verdict=$(awk -v l="$lo" -v h="$hi" 'BEGIN { if (l >= 1) print "faster"; else if (h < 1) print "slower"; else print "inconclusive" }')
	echo "| $label | $n | $(med $cs) | $(med $os) | $m | $verdict |"
}
# median of the arguments, and their min-max.
med() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
echo
echo "### snapshots (brd)"
echo
echo "| job | snapshots | C IOPS | orion IOPS | ratio median (min-max) | verdict |"
echo "|-----|-----------|--------|------------|------------------------|---------|"
row "first write-qd1" snap_job 1 write-qd1
row "first write-qd32" snap_job 1 write-qd32
row "first write-qd32" snap_job 4 write-qd32
row "snapshot read-qd32" snap_job 1 read-qd32
echo
echo "Snapshot rows: $SNAP_RUNS runs per cell, C and ours interleaved; the ratio is taken per run pair."

# Mirrors on brd: 64 MiB legs, C's at the start of ram0-ram2, ours 64 MiB further on the
# same ramdisks. I/O rows use nosync mirrors (no resync running); "resync" is the time a
# core-log mirror takes to become in sync, in MB/s.
mir_up() {
	side=$1 n=$2 sync=$3
	if [ "$side" = o ]; then off=131072 t=orion-mirror; else off=0 t=mirror; fi
	legs="" i=0
	while [ $i -lt "$n" ]; do
		legs="$legs /dev/ram$i $off"
		i=$((i + 1))
	done
	if [ "$sync" = nosync ]; then log="core 2 1024 nosync"; else log="core 1 1024"; fi
	dmsetup create ${side}_mir --table "0 131072 $t $log $n$legs"
}
uptime_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
mir_job() {
	ms=$1
	case "$3" in
	resync)
		t0=$(uptime_cs)
		mir_up "$1" "$2" sync
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
		mir_up "$1" "$2" nosync
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
echo
echo "### mirrors (brd)"
echo
echo "| job | legs | C | orion | ratio median (min-max) | verdict |"
echo "|-----|------|---|-------|------------------------|---------|"
for r in "write-qd32 2" "write-qd32 3" "read-qd32 2" "read-qd32 3" "resync 2"; do
	row ${r% *} mir_job ${r#* } ${r% *}
done
echo
echo "Mirror rows: IOPS (resync: MB/s), $SNAP_RUNS runs per cell, C and ours interleaved."
