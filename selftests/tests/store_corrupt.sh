# Damaged snapshot exception stores and mirror disk logs, loaded by ours and by C: the same
# image damaged the same way on each side (header fields, flipped bytes in the header and
# in exception areas, exceptions pointing past the COW device or the origin, duplicated and
# zeroed entries, torn areas; log headers and bitmaps). Each side must give the same
# verdict, log lines and status, and a snapshot that loads must read the same bytes as C's;
# never a crash, hang or kernel report. ORION_STORE_CASES (kernel command line
# orion.store_cases) sets how many damaged snapshot images (default 120; mirror logs: half).

modprobe dm-snapshot || die "modprobe dm-snapshot failed"
modprobe dm-mirror || die "modprobe dm-mirror failed"
load_orion orion-
ramdisks 8 32
cases=$(sed -n 's/.*orion\.store_cases=\([0-9]*\).*/\1/p' /proc/cmdline)
cases=${cases:-120}
osz=$((16 << 11))
chunk=8

# A small PRNG (the same sequence every run): rnd N prints a number below N.
seed=12345
rnd() {
	seed=$(((seed * 1103515245 + 12345) % 2147483648))
	echo $((seed % $1))
}
# poke FILE OFFSET HEXBYTES: writes bytes (e.g. "ff00") at OFFSET of FILE.
poke() {
	printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
# le32 N / le64 N: little-endian hex of N.
le32() { printf '%08x' "$1" | sed -E 's/(..)(..)(..)(..)/\4\3\2\1/'; }
le64() { printf '%016x' "$1" | sed -E 's/(..)(..)(..)(..)(..)(..)(..)(..)/\8\7\6\5\4\3\2\1/'; }
dm_log() {
	dmesg -c | grep -o 'device-mapper: .*' | sed -E 's/[0-9]+:[0-9]+/M:m/g; s/orion-//g' | sort -u
}

# The base image: C's snapshot of an origin with origin writes (COW) and snapshot writes,
# enough for two exception areas (a 4 KiB chunk holds 256 pairs).
head -c $((osz * 512)) /dev/urandom >/tmp/t.org
dd if=/tmp/t.org of=/dev/ram0 bs=1M oflag=direct 2>/dev/null
dd if=/dev/zero of=/dev/ram2 bs=4k count=1 oflag=direct 2>/dev/null
dm_create t.base "0 $osz snapshot /dev/ram0 /dev/ram2 P $chunk"
i=0
while [ $i -lt 300 ]; do
	dd if=/dev/urandom of=/dev/mapper/t.base bs=4k seek=$(rnd 4096) count=1 oflag=direct 2>/dev/null
	i=$((i + 1))
done
dmsetup remove t.base
dd if=/dev/ram0 of=/tmp/t.orgw bs=1M 2>/dev/null
dd if=/dev/ram2 of=/tmp/t.cow bs=1M count=4 2>/dev/null
cbytes=$((chunk * 512))

# damage_snap KIND FILE: one damage of the kind to the store image.
damage_snap() {
	f=$2
	case $1 in
	magic) poke "$f" $(rnd 4) "$(printf '%02x' $(rnd 256))" ;;
	valid) poke "$f" 4 "$(le32 $(rnd 3))" ;;
	version) poke "$f" 8 "$(le32 $(rnd 4))" ;;
	chunk) poke "$f" 12 "$(le32 $((1 << $(rnd 12))))" ;;
	flip-area) poke "$f" $((cbytes + $(rnd 300) * 16 + $(rnd 16))) "$(printf '%02x' $(rnd 256))" ;;
	new-past-end) poke "$f" $((cbytes + $(rnd 250) * 16 + 8)) "$(le64 $((100000 + $(rnd 1000000))))" ;;
	old-past-origin) poke "$f" $((cbytes + $(rnd 250) * 16)) "$(le64 $((osz / chunk + $(rnd 100000))))" ;;
	new-is-header) poke "$f" $((cbytes + $(rnd 250) * 16 + 8)) "$(le64 $(rnd 2))" ;;
	duplicate) e=$(rnd 250) && dd if="$f" of="$f" bs=16 skip=$((cbytes / 16 + e)) \
		seek=$((cbytes / 16 + e + 1 + $(rnd 5))) count=1 conv=notrunc 2>/dev/null ;;
	zero-area) dd if=/dev/zero of="$f" bs=16 seek=$((cbytes / 16 + $(rnd 256))) count=$((1 + $(rnd 256))) conv=notrunc 2>/dev/null ;;
	torn) dd if=/dev/urandom of="$f" bs=512 seek=$((chunk + $(rnd $chunk))) count=1 conv=notrunc 2>/dev/null ;;
	second-area) poke "$f" $((cbytes * (2 + cbytes / 16) + $(rnd 64) * 16 + $(rnd 16))) "$(printf '%02x' $(rnd 256))" ;;
	esac
}
kinds="magic valid version chunk flip-area new-past-end old-past-origin new-is-header duplicate zero-area torn second-area"
nkinds=12

# load_snap S: loads the damaged store as S's snapshot of the written origin: verdict, log,
# status and a checksum of what the snapshot reads.
load_snap() {
	s=$1
	org=/dev/ram0 cow=/dev/ram2 type=orion-snapshot
	[ "$s" = c ] && org=/dev/ram1 cow=/dev/ram3 type=snapshot
	dd if=/tmp/t.orgw of=$org bs=1M oflag=direct 2>/dev/null
	dd if=/tmp/t.cur of=$cow bs=1M oflag=direct 2>/dev/null
	dmesg -c >/dev/null
	if dmsetup create t.${s}s --table "0 $osz $type $org $cow P $chunk" >/dev/null 2>&1; then
		echo "loaded: $(dmsetup status t.${s}s | cut -d' ' -f4-)"
		echo "reads: $(md5sum </dev/mapper/t.${s}s 2>&1 | cut -c1-32)"
		dmsetup remove t.${s}s
	else
		echo refused
	fi
	dm_log
}

: >/tmp/t.diffs
n=0 loaded=0 refused=0
while [ $n -lt "$cases" ]; do
	kind=$(echo $kinds | cut -d' ' -f$((n % nkinds + 1)))
	cp /tmp/t.cow /tmp/t.cur
	damage_snap $kind /tmp/t.cur
	# Sometimes a second damage of another kind.
	[ $(rnd 3) = 0 ] && damage_snap "$(echo $kinds | cut -d' ' -f$(($(rnd $nkinds) + 1)))" /tmp/t.cur
	load_snap o >/tmp/t.o
	load_snap c >/tmp/t.c
	if ! cmp -s /tmp/t.o /tmp/t.c; then
		{
			echo "case $n ($kind):"
			echo " ours: $(tr '\n' '|' </tmp/t.o)"
			echo " C:    $(tr '\n' '|' </tmp/t.c)"
		} >>/tmp/t.diffs
	fi
	if grep -q '^loaded' /tmp/t.c; then loaded=$((loaded + 1)); else refused=$((refused + 1)); fi
	n=$((n + 1))
done
echo "# snapshot stores: $n damaged images, C loaded $loaded and refused $refused"
check_eq "damaged exception stores ($n): ours gives C's verdict, log, status and data" "" \
	"$(head -c 4000 /tmp/t.diffs)"
check "damaged exception stores: both verdicts occur" test "$loaded" -gt 0 -a "$refused" -gt 0

# Mirror disk logs: a clean log written by C's mirror, damaged (header bytes, region count,
# version, bitmap bits), loaded by each side's mirror over identical legs: the same verdict,
# log and status once the resync (if any) ends.
sz=$((8 << 11))
for i in 4 5 6 7; do dd if=/tmp/t.org of=/dev/ram$i bs=1M count=8 oflag=direct 2>/dev/null; done
dd if=/dev/zero of=/dev/ram2 bs=4k count=2 oflag=direct 2>/dev/null
dm_create t.m "0 $sz mirror disk 2 /dev/ram2 1024 2 /dev/ram4 0 /dev/ram5 0"
i=0
until dmsetup status t.m | grep -q " 16/16 "; do
	i=$((i + 1))
	[ $i -gt 300 ] && die "C's mirror does not resync"
	sleep 0.1
done
dmsetup remove t.m
dd if=/dev/ram2 of=/tmp/t.log bs=4k count=2 2>/dev/null
damage_log() {
	f=$2
	case $1 in
	magic) poke "$f" $(rnd 4) "$(printf '%02x' $(rnd 256))" ;;
	version) poke "$f" 4 "$(le32 $(rnd 4))" ;;
	regions) poke "$f" 8 "$(le64 $(rnd 40))" ;;
	bitmap) poke "$f" $((512 + $(rnd 2))) "$(printf '%02x' $(rnd 256))" ;;
	torn) dd if=/dev/urandom of="$f" bs=512 seek=$(rnd 2) count=1 conv=notrunc 2>/dev/null ;;
	esac
}
load_mirror() {
	s=$1
	log=/dev/ram2 a=/dev/ram4 b=/dev/ram5 type=orion-mirror
	[ "$s" = c ] && log=/dev/ram3 a=/dev/ram6 b=/dev/ram7 type=mirror
	dd if=/tmp/t.lcur of=$log bs=4k oflag=direct 2>/dev/null
	dmesg -c >/dev/null
	if dmsetup create t.${s}m --table "0 $sz $type disk 2 $log 1024 2 $a 0 $b 0" >/dev/null 2>&1; then
		i=0
		until dmsetup status t.${s}m | grep -q " 16/16 "; do
			i=$((i + 1))
			[ $i -gt 50 ] && break
			sleep 0.1
		done
		echo "loaded: $(dmsetup status t.${s}m | cut -d' ' -f4- | sed -E 's/[0-9]+:[0-9]+/M:m/g; s#/dev/ram[0-9]#RAM#g')"
		dmsetup remove t.${s}m
	else
		echo refused
	fi
	dm_log
}
: >/tmp/t.diffs
n=0
mcases=$((cases / 2))
while [ $n -lt $mcases ]; do
	kind=$(echo "magic version regions bitmap torn" | cut -d' ' -f$((n % 5 + 1)))
	cp /tmp/t.log /tmp/t.lcur
	damage_log $kind /tmp/t.lcur
	load_mirror o >/tmp/t.o
	load_mirror c >/tmp/t.c
	if ! cmp -s /tmp/t.o /tmp/t.c; then
		{
			echo "case $n ($kind):"
			echo " ours: $(tr '\n' '|' </tmp/t.o)"
			echo " C:    $(tr '\n' '|' </tmp/t.c)"
		} >>/tmp/t.diffs
	fi
	n=$((n + 1))
done
echo "# mirror logs: $n damaged images"
check_eq "damaged mirror logs ($n): ours gives C's verdict, log and status" "" "$(head -c 4000 /tmp/t.diffs)"
