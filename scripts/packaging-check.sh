#!/usr/bin/env bash
# Host checks of the Debian packages (Documentation/packaging.md): `make deb` builds both,
# lintian finds nothing that is not overridden with a reason, DKMS builds the module from the
# package's installed source against the cached guest kernel (and skips a kernel without
# Rust), and kmod resolves the package's modprobe.d file to orion_dm for every name dm core
# asks for, and to the C modules without it. The VM selftest `packaging` loads them for real.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok - $*"; }
bad() {
	echo "not ok - $1"
	shift
	printf '%s\n' "$@" | sed 's/^/#   /'
	fail=1
}
# expect DESC WANT_REGEX TEXT: TEXT has a line matching WANT_REGEX.
expect() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then ok "$1"; else bad "$1" "wanted a line matching: $2" "$3"; fi
}

out=$ORION_ROOT/build/deb
ORION_DEB_OUT=$out bash "$ORION_ROOT/scripts/deb.sh" >/dev/null
dkms_deb=$(ls "$out"/orion-dm-dkms_*_all.deb)
tools_deb=$(ls "$out"/orion-dm-tools_*_amd64.deb)
ok "make deb built $(basename "$dkms_deb") and $(basename "$tools_deb")"

# Every tag lintian reports must be overridden, with the reason beside the override.
if lint=$(lintian --fail-on error,warning,info,pedantic --display-info --pedantic "$dkms_deb" "$tools_deb" 2>&1); then
	ok "lintian: no tag left unexplained ($(lintian --show-overrides --display-info "$dkms_deb" "$tools_deb" 2>/dev/null | grep -c '^O: ') overridden)"
else
	bad "lintian" "$lint"
fi

dpkg-deb -x "$dkms_deb" "$tmp/root"
dpkg-deb -x "$tools_deb" "$tmp/root"
version=$(dpkg-deb -f "$dkms_deb" Version)
version=${version%-*}
srcdir=$tmp/root/usr/src/orion-dm-$version
missing=
for f in dkms.conf Kbuild scripts/module-build.sh rust/orion_dm.rs rust/dm_glue.c; do
	[ -f "$srcdir/$f" ] || missing="$missing $f"
done
# Build products of the checkout must not leak into the package.
leaked=$(cd "$srcdir" && find . -name '*.o' -o -name '*.ko' -o -name 'bindings_generated.rs')
if [ -z "$missing$leaked" ]; then
	ok "orion-dm-dkms: the DKMS source tree in /usr/src/orion-dm-$version, no build products"
else
	bad "orion-dm-dkms's DKMS source tree" "missing:$missing" "build products: $leaked"
fi
expect "orion-dm-dkms: /etc/modprobe.d/orion-dm.conf is a conffile" '^/etc/modprobe.d/orion-dm.conf$' \
	"$(dpkg-deb --ctrl-tarfile "$dkms_deb" | tar -xO ./conffiles)"
expect "orion-dm-dkms depends on dkms with BUILD_EXCLUSIVE_CONFIG support" 'dkms \(>= 3' \
	"$(dpkg-deb -f "$dkms_deb" Depends)"
for tool in orion-lvm orion-thin; do
	expect "$tool runs from the package" "^$tool $version\$" "$("$tmp/root/usr/sbin/$tool" --version 2>&1)"
	missing=
	for f in bash-completion/completions/$tool zsh/vendor-completions/_$tool fish/vendor_completions.d/$tool.fish; do
		[ -f "$tmp/root/usr/share/$f" ] || missing="$missing /usr/share/$f"
	done
	if [ -z "$missing" ]; then ok "$tool: bash, zsh and fish completions"; else bad "$tool completions" "missing:$missing"; fi
done
# A page for each tool and each subcommand, as the CLI definitions list them.
pages=$(cd "$tmp/root/usr/share/man/man8" && ls | sed 's/\.8\.gz$//' | sort | tr '\n' ' ')
want=$("$tmp/root/usr/sbin/orion-lvm" --help | awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 } on && $1 != "help" { print "orion-lvm-" $1 }'
	"$tmp/root/usr/sbin/orion-thin" --help | awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 } on && $1 != "help" { print "orion-thin-" $1 }'
	echo orion-lvm orion-thin | tr ' ' '\n')
want=$(echo "$want" | sort | tr '\n' ' ')
if [ "$pages" = "$want" ]; then
	ok "man pages: one for each tool and subcommand ($(echo "$pages" | wc -w))"
else
	bad "man pages for each tool and subcommand" "have: $pages" "want: $want"
fi

# DKMS, as the package's postinst runs it, against the cached guest kernel's build tree. A
# private DKMS tree keeps the host's /var/lib/dkms out of it.
kdir=$(bash "$ORION_ROOT/scripts/build-kernel.sh")
kver=$(cat "$kdir/include/config/kernel.release")
mkdir -p "$tmp/dkms"
dkms_opts=(-m orion-dm -v "$version" --sourcetree "$tmp/root/usr/src" --dkmstree "$tmp/dkms")
if log=$(dkms build "${dkms_opts[@]}" -k "$kver" --kernelsourcedir "$kdir" 2>&1); then
	ko=$tmp/dkms/orion-dm/$version/$kver/x86_64/module/orion_dm.ko
	expect "dkms build against $kdir: orion_dm.ko for $kver" "^vermagic: +$kver " "$(modinfo "$ko" 2>&1)"
	expect "the DKMS module depends on dm-bufio (modprobe loads it first)" '^depends: +dm-bufio$' "$(modinfo "$ko")"
else
	bad "dkms build against $kdir" "$log" "$(cat "$tmp/dkms/orion-dm/$version/build/make.log" 2>/dev/null)"
	ko=
fi
# A kernel without Rust: DKMS skips the build (exit 77, which its kernel hooks take as "not
# for this kernel") and the build script names the missing option.
norust=$tmp/norust
mkdir -p "$norust/include/config"
grep -v '^CONFIG_RUST=' "$kdir/.config" >"$norust/.config"
grep -v '^CONFIG_RUST=' "$kdir/include/config/auto.conf" >"$norust/include/config/auto.conf"
cp "$kdir/include/config/kernel.release" "$norust/include/config/"
set +e
log=$(dkms build "${dkms_opts[@]}" -k "$kver-norust" --kernelsourcedir "$norust" 2>&1)
rc=$?
set -e
if [ "$rc" = 77 ]; then
	ok "dkms skips a kernel without CONFIG_RUST (exit 77: BUILD_EXCLUSIVE)"
else
	bad "dkms skips a kernel without CONFIG_RUST" "exit $rc" "$log"
fi
expect "module-build.sh names the missing option" 'built without CONFIG_RUST\.' \
	"$(bash "$srcdir/scripts/module-build.sh" "$norust" 2>&1)"

# kmod with the package's modprobe.d file, over the guest kernel's modules and the DKMS
# module where the postinst puts it (updates/dkms).
if [ -n "$ko" ]; then
	mods=$tmp/mods
	mkdir -p "$mods/lib"
	cp -a "$kdir/modroot/lib/modules" "$mods/lib/"
	mkdir -p "$mods/lib/modules/$kver/updates/dkms"
	cp "$ko" "$mods/lib/modules/$kver/updates/dkms/"
	depmod -b "$mods" "$kver"
	conf=$tmp/root/etc/modprobe.d/orion-dm.conf
	resolve() { modprobe -d "$mods" -S "$kver" -C "$1" --show-depends "$2" 2>&1; }
	for name in dm-thin-pool dm-snapshot dm-snapshot-origin dm-snapshot-merge dm-mirror; do
		expect "kmod: $name loads orion_dm, C's module only if that fails" \
			'^install /sbin/modprobe orion_dm \|\| /sbin/modprobe --ignore-install dm_' "$(resolve "$conf" "$name")"
	done
	expect "kmod: orion_dm is the DKMS module, after dm-bufio" \
		"dm-bufio\\.ko .*\\|.*updates/dkms/orion_dm\\.ko" "$(resolve "$conf" orion_dm | tr '\n' '|')"
	expect "kmod without the file: dm-thin-pool is C's again" '/dm-thin-pool\.ko $' "$(resolve /dev/null dm-thin-pool)"
fi

exit "$fail"
