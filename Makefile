# SPDX-License-Identifier: GPL-2.0 OR MIT
# Entry points. `make` builds orion_dm.ko against KDIR (default: the cached guest kernel,
# built on first use). `make check` runs every test; `make demo` boots a VM and shows
# volumes working; `make bench` runs the benchmarks.

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
KMAKE_FLAGS := LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc BINDGEN=bindgen CLIPPY_DRIVER=/usr/bin/clippy-driver
export PATH := $(HOME)/.cargo/bin:$(PATH)

ifeq ($(KDIR),)
KDIR_CMD = $$(bash $(ROOT)/scripts/build-kernel.sh)
else
KDIR_CMD = $(KDIR)
endif

.PHONY: all modules clean setup kernel check host-check vm-check demo rustfmt rustfmtcheck clippy bench

all: modules

setup:
	@bash $(ROOT)/scripts/setup.sh

kernel: setup
	@bash $(ROOT)/scripts/build-kernel.sh

modules: setup
	@kdir=$(KDIR_CMD) && $(MAKE) -C "$$kdir" M=$(ROOT) $(KMAKE_FLAGS) $(if $(CLIPPY),CLIPPY=1) modules

clippy:
	@$(MAKE) -s clean
	@$(MAKE) CLIPPY=1 modules

clean:
	@kdir=$(KDIR_CMD) && $(MAKE) -C "$$kdir" M=$(ROOT) $(KMAKE_FLAGS) clean
	@rm -f $(ROOT)/rust/dm/bindings_generated.rs

# The kernel's own `make rustfmt` skips M= trees, so format ours with its config.
RUSTFMT_CFG := $(ROOT)/.rustfmt.toml
rustfmt:
	@find $(ROOT)/rust -name '*.rs' ! -name 'bindings_generated.rs' | xargs rustfmt --edition 2021 --config-path $(RUSTFMT_CFG)

rustfmtcheck:
	@find $(ROOT)/rust -name '*.rs' ! -name 'bindings_generated.rs' | xargs rustfmt --edition 2021 --check --config-path $(RUSTFMT_CFG)

host-check:
	@bash $(ROOT)/scripts/host-check.sh

vm-check: modules
	@bash $(ROOT)/scripts/vm-test.sh $(TEST)

check: setup
	@bash $(ROOT)/scripts/check.sh

demo: modules
	@bash $(ROOT)/scripts/demo.sh

bench: modules
	@bash $(ROOT)/scripts/bench.sh

# Installing on a machine (Documentation/packaging.md). These build against KDIR, by default
# the running kernel's build directory (not the cached guest kernel that `make` uses), with
# that kernel's own toolchain: scripts/module-build.sh checks it and says what is missing.
# INSTALL_MOD_PATH (or DESTDIR) installs under another root.
.PHONY: modules_install install deb dkms-source
INSTALL_KDIR = $(or $(KDIR),/lib/modules/$(shell uname -r)/build)
INSTALL_ROOT = $(or $(INSTALL_MOD_PATH),$(DESTDIR))

# orion_dm.ko into <root>/lib/modules/<kernel>/updates, then depmod (kbuild's own install).
modules_install:
	@bash $(ROOT)/scripts/module-build.sh "$(INSTALL_KDIR)" modules
	@bash $(ROOT)/scripts/module-build.sh "$(INSTALL_KDIR)" modules_install INSTALL_MOD_PATH=$(INSTALL_ROOT)

# The module and the modprobe.d configuration that loads it in place of the C targets.
install: modules_install
	install -D -m 644 $(ROOT)/packaging/modprobe/orion-dm.conf $(INSTALL_ROOT)/etc/modprobe.d/orion-dm.conf

# build/deb/orion-dm-dkms_*.deb and orion-dm-tools_*.deb.
deb:
	@bash $(ROOT)/scripts/deb.sh

# build/dkms/orion-dm-<version>: the DKMS source tree (what orion-dm-dkms puts in /usr/src),
# for `dkms add` on distributions without the Debian package.
dkms-source:
	@bash $(ROOT)/scripts/dkms-source.sh

# Robustness runs (fuzzing vs C, power cuts, failing devices): build/reliability/report.md.
.PHONY: reliability
reliability: modules
	@bash $(ROOT)/scripts/reliability.sh
