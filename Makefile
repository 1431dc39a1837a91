# Two entry points, each installing what it needs on a fresh machine:
#   make check   build the kernel with the series, boot it, run the suite and the peer
#                suites, write reports/
#   make test    lint, host unit tests and the VM integration tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLAVOUR ?= default
WORKERS ?= 1
BASE ?= 6.12
# make test also runs the checks the product is named for (muse_pid, partitioning,
# refcounted teardown, UBI attach) and the harness's own VM tests on the other base.
OTHER_BASE ?= 6.1
OTHER_TESTS := tests/integration/test_muse_basic.py tests/integration/test_partitions.py \
	tests/integration/test_teardown.py tests/integration/test_ubi_jffs2.py \
	tests/integration/test_harness_vm.py tests/integration/test_harness_plugin.py
OTHER_K := not test_connect_disconnect_cycles and not test_jffs2_on_muse_nor
# make test keeps the teardown soak short; make check runs the full 100 cycles.
TEST_CYCLES ?= 20
# make test stays within its budget on a cold machine: no debug kernel build
# (tests marked for the debug flavour run in make check and make bugs).
TEST_FLAVOURS ?= $(FLAVOUR),partmaster
TOOLCHAIN ?= gcc
# A flavour that needs clang (kernel/flavours.toml: kmsan) builds with it whatever
# TOOLCHAIN says; deps installs clang for it too, and for make bugs (a KMSAN bug test).
HARNESS_ARGS := --base $(BASE) --flavour $(FLAVOUR) --toolchain $(TOOLCHAIN)
# What the guests' idle CPUs do (README, "Guest CPUs under TCG"): halt, or poll
# (faster MUSE requests, slower suite on this 2-core host), or auto.
GUEST_IDLE ?= auto
VM_ARGS := --guest-idle $(GUEST_IDLE)
APT_PACKAGES := linux-source-6.1 linux-source-6.12 qemu-system-x86 qemu-utils mmdebstrap ccache flex bison \
	libelf-dev libssl-dev bc cpio rsync e2fsprogs openssh-client python3-venv git \
	build-essential kmod perl $(if $(filter clang,$(TOOLCHAIN))$(filter kmsan,$(FLAVOUR))$(filter bugs,$(MAKECMDGOALS)),clang lld llvm)

.PHONY: check test deps venv lint unit prepare series-check mutate bench bugs clean torture \
	powercut-repro matrix coverage mutate-generated peer

# ... and then the peer run: mtd-utils' suites on MUSE and its controls (make peer),
# its table in reports/peer/peer.md. PEER= leaves it out.
PEER ?= 1
check: deps venv
	@status=0; keep() { rc=$$?; [ $$status -ne 0 ] || status=$$rc; }; \
	set -x; \
	$(BIN)/muse-harness check $(HARNESS_ARGS) $(VM_ARGS) -n $(WORKERS) || keep; \
	$(if $(PEER),$(BIN)/muse-harness peer $(HARNESS_ARGS) $(VM_ARGS) --reports reports/peer || keep;) \
	exit $$status

# Every kernel make test needs is built before its first test.
test: deps venv lint
	$(BIN)/muse-harness prepare $(HARNESS_ARGS) --flavours $(TEST_FLAVOURS)
	$(BIN)/muse-harness prepare --base $(OTHER_BASE) --flavour default --toolchain $(TOOLCHAIN)
	@# Both bases run and the page is written even when one fails; the first failure's
	@# status is make test's.
	@status=0; keep() { rc=$$?; [ $$status -ne 0 ] || status=$$rc; }; \
	set -x; \
	$(BIN)/python -m pytest tests -ra --junitxml=reports/test-junit.xml --reports=reports \
		$(HARNESS_ARGS) $(VM_ARGS) --muse-cycles=$(TEST_CYCLES) --flavours=$(TEST_FLAVOURS) \
		$(if $(filter-out 1,$(WORKERS)),-n $(WORKERS) --dist worksteal) || keep; \
	$(BIN)/python -m pytest $(OTHER_TESTS) -k '$(OTHER_K)' -ra \
		--junitxml=reports/$(OTHER_BASE)/test-junit.xml --reports=reports/$(OTHER_BASE) \
		--base $(OTHER_BASE) --flavour default --flavours=default $(VM_ARGS) || keep; \
	$(BIN)/muse-harness report reports || keep; \
	exit $$status

unit: venv
	$(BIN)/python -m pytest tests/unit -q

lint: venv
	$(BIN)/ruff check harness guest tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows ci/github/workflows-muse.yml

prepare: deps venv
	$(BIN)/muse-harness prepare $(HARNESS_ARGS)

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing Debian packages:" $$missing "(install them, or run as root)"; exit 1; \
		fi; \
		echo "installing:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

venv: $(VENV)/.stamp

$(VENV)/.stamp: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

clean:
	rm -rf reports $(VENV)

# The suite on every base x flavour, one table: reports/matrix.md and matrix.json.
BASES ?= 6.1,6.12
FLAVOURS ?= default,partmaster
matrix: deps venv
	$(BIN)/muse-harness matrix --bases $(BASES) --flavours $(FLAVOURS)

# Slower, documented target: checkpatch --strict on every patch and a build
# after each one (bisectability), plus the whole series with MUSE built in; the
# diagnostics each patch adds with W=1 and sparse (TOOLCHAIN=gcc or clang).
series-check: APT_PACKAGES += sparse
series-check: deps venv
	$(BIN)/muse-harness series-check --base $(BASE) --toolchain $(TOOLCHAIN)

# Coverage of the series' code (gcov, coverage flavour): reports/coverage/html/index.html,
# summary.json (per file and per patch), tests.json (which tests run each line).
coverage: deps venv
	$(BIN)/muse-harness coverage --base $(BASE)

# mtd-utils' suites (mtd-tests, ubi-tests, built from Debian's source into the guest
# image) on MUSE devices and on nandsim/mtdram: reports/peer.md and peer.json.
peer: deps venv
	$(BIN)/muse-harness peer $(HARNESS_ARGS)

# Generated mutants of muse.c: a seeded sample (SAMPLE, SEED); SAMPLE= runs them all.
# Each is judged by the tests that run its line when a coverage run left its map
# (COVERAGE, default reports/ after `make coverage`), else by the four product checks.
SAMPLE ?= 100
COVERAGE ?= $(if $(wildcard reports/coverage/tests.json),reports)
mutate-generated: deps venv
	$(BIN)/muse-harness mutate --generate --base $(BASE) $(if $(SAMPLE),--sample $(SAMPLE)) \
		--seed $(SEED) --timeout 900 $(if $(COVERAGE),--coverage $(COVERAGE))

# Mutation check: each kernel/mutations/$(BASE)/*.patch must make its tests fail.
mutate: deps venv
	$(BIN)/muse-harness mutate $(HARNESS_ARGS)

# Bug tests (tests/integration/test_bugs.py) on the series as posted and with its
# fixes, default and debug flavours: reports/bugs.md, non-zero unless every bug
# test failed as posted and passed with the fixes.
bugs: deps venv
	$(BIN)/muse-harness bugs --base $(BASE)

# Benchmark (not a test): MUSE against nandsim and mtdram, boot time; writes
# reports/bench.json and reports/bench.png and prints the goals.
bench: deps venv
	$(BIN)/muse-harness bench $(HARNESS_ARGS)

# Power-cut torture (tests/integration/test_powercut.py) with many cycles: live
# cuts on MUSE, twice as many replayed cut points, and the nandsim control.
# Figures go to reports/powercut.json. make test runs it with 2 cycles.
CYCLES ?= 50
SEED ?= 1
torture: deps venv
	$(BIN)/python -m pytest tests/integration/test_powercut.py -ra --reports=reports \
		$(HARNESS_ARGS) --powercut-cycles=$(CYCLES) --powercut-seed=$(SEED)

# Recheck one cut of a failed torture run from its saved oplog: a failing cut
# prints this command with all its values (guest/muse/FAULTS.md, "Power-cut torture").
powercut-repro: venv
	@test -n "$(ART)" -a -n "$(LOG)" -a -n "$(REC)" -a -n "$(SESSION)" -a -n "$(CUT)" || \
		{ echo "usage: make powercut-repro ART=FILE.tar.gz LOG=X.oplog REC=DIR SESSION=K CUT=N SEED=S TORN=MODE"; exit 1; }
	mkdir -p reports && cat $(ART) > reports/.powercut-repro.tmp && \
		mv reports/.powercut-repro.tmp reports/.powercut-repro.tar.gz
	$(BIN)/muse-harness run $(HARNESS_ARGS) -- sh -c 'rm -rf /tmp/pc && mkdir -p /tmp/pc && \
		tar xzf /mnt/harness/reports/.powercut-repro.tar.gz -C /tmp/pc && \
		python3 -m guest.workloads cutcheck --oplog /tmp/pc/$(LOG) --record /tmp/pc/$(REC) \
		--session $(SESSION) --cut $(CUT) --seed $(SEED) --torn $(TORN)'
