#!/usr/bin/env bash
# Host-side checks: formatting of the kernel Rust, and the tools workspace (fmt, clippy with
# warnings as errors, tests) when it exists.
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
