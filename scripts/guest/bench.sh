#!/bin/sh
# Benchmarks inside the VM: fio on linear and striped, ours beside C on identical backing
# devices (null_blk without memory, and brd), with the raw device as the limit. Prints a
# markdown table of IOPS and the ratio ours / C. Under TCG only the ratios mean anything.
set -e
export DM_DISABLE_UDEV=1
RUNTIME=${ORION_BENCH_RUNTIME:-4}

modprobe dm-bufio
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
