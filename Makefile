# dockmove: live migration of Docker containers with CRIU.
# Every target that needs root-level setup does its own (deps, lab).
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin

.PHONY: fault-matrix bench bench-transfer all build deb test-deb deps lab-up lab-up-modern lab-down lab-purge lab-status images test test-unit test-vm test-vm-cgroup1 bench-vm soak vet fuzz demo clean

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

# deb builds dist/dockmove_VERSION_ARCH.deb (scripts/mkdeb, with nfpm,
# a module of its own) from make build's static binaries: the agents, the
# restore runtime, the docker-migrate CLI plugin, migrate-dst's unit and
# config file, man pages and bash completions (which the binaries print:
# generate). For this machine's architecture.
deb: build
	cd scripts/mkdeb && $(GO) run . --bin $(abspath $(BIN)) --version-file $(CURDIR)/internal/version/version.go --out $(CURDIR)/dist

# test-deb builds the package from this tree and reads it back with
# dpkg-deb, installs it into a temporary root with dpkg and removes it.
test-deb:
	cd scripts/mkdeb && $(GO) test -count=1 ./...

deps:
	@bash scripts/deps.sh

lab-up: build
	@bash scripts/lab.sh up
	@bash scripts/images.sh
	@bash scripts/lab-runtime.sh

# lab-up-modern adds the lab's modern hosts (host3, host4): Docker 28,
# containerd 2, runc 1.3 from a Debian testing root (scripts/modern-root.sh,
# about 40 s the first time).
lab-up-modern: lab-up
	@bash scripts/modern-root.sh >/dev/null
	@bash scripts/lab.sh up modern
	@bash scripts/images.sh
	@bash scripts/lab-runtime.sh

lab-down:
	@bash scripts/lab.sh down

lab-purge:
	@bash scripts/lab.sh purge

lab-status:
	@bash scripts/lab.sh status

images:
	@bash scripts/images.sh

# vet: gofmt, go vet and staticcheck (its default checks, pinned in go.mod
# as a tool; the few deliberate exceptions carry a //lint:ignore with the
# reason).
vet:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet ./...
	$(GO) vet -tags vmtest ./predump ./migrate
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags vmtest ./predump ./migrate
	cd scripts/mkdeb && $(GO) vet ./... && $$($(GO) -C $(CURDIR) tool -n staticcheck) ./...

# test runs every test, unit and integration, against the real lab.
# DOCKMOVE_STRICT=1 turns a skip for a missing prerequisite into a failure.
# -p 1: packages share one lab (its agent port, its switch), so they take
# turns. The timeout is generous: the lab tests took 12 minutes on one
# day and 21 on another, on machines of the same kind.
# The tests' results, each failed test's whole output and the slowest
# tests (where CI's time goes), read from go test -json.
test: deps lab-up lab-up-modern vet
	$(GO) build -o $(BIN)/testreport ./scripts/testreport
	set -o pipefail; DOCKMOVE_STRICT=1 $(GO) test -json -p 1 -race -count=1 -timeout 45m ./... | $(BIN)/testreport -slowest 30
	@$(MAKE) -s test-deb
	@$(MAKE) -s fuzz
	@$(MAKE) -s test-vm

# test-vm boots a kernel with soft-dirty page tracking (Debian bookworm's
# cloud kernel) in QEMU, with only the unified cgroup v2 hierarchy mounted
# (what current distributions run; this machine's own kernel has cgroup v1
# mounted), and runs in one boot (scripts/vm.sh): the pre-copy and hybrid
# tests of plain processes (predump), then, on the lab's Docker 28 hosts
# inside, a container's pre-copy and hybrid moves, their failure tests
# (either agent killed during the rounds), and the settings test by lazy
# (the container's limits checked in cgroup v2's files), and a mixed fleet
# on cgroup v2: hybrid moves Docker 20.10 -> 28 and 28 -> 20.10 (host1 and
# host3 inside the VM). Under TCG each
# container move takes about a minute, so the VM runs only what needs its
# kernel (soft-dirty) or cgroup v2: TTY, stop-and-copy, image shipping and
# the rest run on the host lab (on Docker 28 in TestMixedFleet), and
# make test-vm-cgroup1 runs the pre-copy tests on Docker 20.10 with cgroup
# v1 (by hand).
VM_RUNS := host3,host4=^(TestVMDocker.*|TestSettingsTravel)$$/^lazy$$;host1,host3=^TestVMDockerHybrid$$;host3,host1=^TestVMDockerHybrid$$
test-vm: lab-up-modern
	VM_CGROUP=2 VM_MODERN=1 VM_RUN='-test.skip PolicyComparison' VM_DOCKER_RUNS='$(VM_RUNS)' bash scripts/vm.sh

# test-vm-cgroup1 boots the same VM with cgroup v1 hierarchies, as this
# machine's kernel has them, and runs the pre-copy tests on the Docker
# 20.10 pair there (not part of make test).
test-vm-cgroup1: lab-up
	VM_RUN='-test.skip PolicyComparison' bash scripts/vm.sh

# soak moves one container between host1 and host2 100 times (stop-and-copy
# and lazy in turn) while a client stays connected, and checks that the
# agents do not grow (make test runs the same test with 10 moves).
soak: deps lab-up
	DOCKMOVE_SOAK_MOVES=100 $(GO) test -count=1 -timeout 120m -run '^TestSoakBackAndForth$$' -v ./migrate

# bench-vm compares the pre-copy policies in that VM (one migration per
# policy and dirty rate) and writes the table to bench/results/vm-precopy.md.
bench-vm:
	VM_DOCKER=0 VM_RUN='-test.run PolicyComparison' bash scripts/vm.sh
	bash scripts/vm.sh table > bench/results/vm-precopy.md

# test-unit runs what needs neither root nor the lab.
test-unit:
	$(GO) test -race -short ./...

# fuzz runs each fuzz target for a fixed number of inputs, a few seconds
# each here. A count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" at
# the deadline (golang/go#75804, fixed in Go 1.27), which made CI red with
# no failing input. Longer: make fuzz FUZZ_SCALE=100.
FUZZ_SCALE ?= 1
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzControlFrame$$' -fuzztime $$((100000 * $(FUZZ_SCALE)))x ./transfer
	$(GO) test -run '^$$' -fuzz '^FuzzDirStream$$' -fuzztime $$((3000 * $(FUZZ_SCALE)))x ./transfer
	$(GO) test -run '^$$' -fuzz '^FuzzParseBeat$$' -fuzztime $$((200000 * $(FUZZ_SCALE)))x ./internal/workload
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $$((100000 * $(FUZZ_SCALE)))x ./internal/cli

# fault-matrix runs every cell of the fault-injection matrix (CI runs a
# subset) and writes the table to bench/results/fault-matrix.md.
fault-matrix: deps lab-up
	DOCKMOVE_STRICT=1 DOCKMOVE_MATRIX=full DOCKMOVE_MATRIX_OUT=$(CURDIR)/bench/results/fault-matrix.md \
		$(GO) test -count=1 -timeout 60m -run '^TestFaultMatrix$$' -v ./migrate > /tmp/dockmove-fault-matrix.log 2>&1; \
		rc=$$?; grep -E '^ *(---|\||ok|FAIL)' /tmp/dockmove-fault-matrix.log; echo "full log: /tmp/dockmove-fault-matrix.log"; exit $$rc

# bench runs the freeze-time benchmark in the lab and writes the example
# report (JSON, Markdown, plots) to bench/results.
BENCH_FLAGS ?= --reps 2
bench: deps lab-up
	bin/dockmove-bench $(BENCH_FLAGS) --out bench/results

# bench-transfer compares session throughput with bare TLS and raw TCP
# (1 GiB files by default; DOCKMOVE_BENCH_BYTES to change).
bench-transfer:
	$(GO) test -run '^$$' -bench Throughput -benchtime 1x -timeout 30m ./transfer

# demo is the main job: a real migration between the lab's two daemons,
# printing the freeze time.
demo: deps lab-up
	@bash scripts/demo.sh

clean:
	rm -rf $(BIN) dist
