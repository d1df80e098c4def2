#!/usr/bin/env bash
# Host-side checks: formatting of the kernel Rust, the tools workspace (fmt, clippy with
# warnings as errors, tests) when it exists, and the Debian packages (packaging-check.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

orion_log "rustfmt --check (rust/)"
make -s -C "$ORION_ROOT" rustfmtcheck

if [ -f "$ORION_ROOT/tools/Cargo.toml" ]; then
	cd "$ORION_ROOT/tools"
	orion_log "cargo fmt --check (tools/)"
	cargo fmt --all --check
	orion_log "cargo clippy -D warnings (tools/)"
	cargo clippy --quiet --workspace --all-targets -- -D warnings
	orion_log "cargo test (tools/)"
	cargo test --quiet --workspace
fi

orion_log "Debian packages: make deb, lintian, dkms build, modprobe.d resolution"
bash "$ORION_ROOT/scripts/packaging-check.sh"
