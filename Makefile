# The README's test command is `make test`; CI (.ci/run) runs exactly that.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build test checks vet fmt-check scripts-check image-check units-check fuzz-check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o bin/reconcile .

# Everything CI checks: formatting, vet, scripts, the image build, the systemd units, and
# every test with the race detector. The Kubernetes tests run against a real
# kube-apiserver and etcd that tools/envtest.sh builds from the Go module proxy the
# first time (several minutes) and caches outside the repository; the Docker tests
# start their own dockerd (Debian's docker.io, which tools/docker.sh installs; root
# needed); the monitoring tests run Debian's promtool and prometheus (tools/prometheus.sh).
# Here a skipped Kubernetes, Docker or monitoring test is a failure.
# It runs with a temporary directory of its own (TMPDIR; mode 0755, as /tmp lets other
# users through: units-check runs node_exporter as its own user) and fails if anything
# is left in it.
test:
	@tmp=$$(mktemp -d) && chmod 0755 "$$tmp"; TMPDIR=$$tmp $(MAKE) --no-print-directory checks; rc=$$?; \
	left=$$(ls -A "$$tmp"); rm -rf "$$tmp"; \
	if [ $$rc -eq 0 ] && [ -n "$$left" ]; then echo "make test left temporary files behind: $$left"; rc=1; fi; \
	exit $$rc

# Each stage says what it does as it starts (==>), with its cost where it is more than
# a few seconds.
checks: fmt-check vet scripts-check image-check units-check
	@echo "==> kube-apiserver and etcd for the Kubernetes tests (tools/envtest.sh: built from the Go module proxy the first time, about 4 minutes; kept in ~/.cache/reconcile)"
	@assets=$$(tools/envtest.sh) && \
	echo "==> the Docker Engine (tools/docker.sh: Debian's docker.io, installed the first time; the tests start their own dockerd)" && \
	tools/docker.sh && \
	echo "==> promtool and prometheus (tools/prometheus.sh: Debian's prometheus, installed the first time)" && \
	tools/prometheus.sh && \
	echo "==> go test -race ./... (about 5 minutes on 2 cores with warm caches; the root package's whole-binary tests end last)" && \
	KUBEBUILDER_ASSETS="$$assets" RECONCILE_REQUIRE_ENVTEST=1 RECONCILE_REQUIRE_DOCKER=1 RECONCILE_REQUIRE_PROMETHEUS=1 \
		$(GO) test -race -count=1 ./...
	@echo "==> fuzz targets, a fixed budget each (about a minute)"
	@$(MAKE) --no-print-directory fuzz-check

# Each fuzz target for a short, fixed budget (its seeds in testdata/ run with every
# `go test`). A crasher found here goes into testdata/fuzz as a regression test.
# Budgets count executions (about 10 s each here), not seconds: with a duration, Go 1.26's
# fuzz coordinator can fail a clean run with "context deadline exceeded" when the time
# runs out mid-input (go.dev/issue/75804, fixed in Go 1.27).
FUZZSCALE ?= 1
fuzz-check:
	$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$$((60000 * $(FUZZSCALE)))x ./reconcile/plan
	$(GO) test -run='^$$' -fuzz='^FuzzRunnerName$$' -fuzztime=$$((200000 * $(FUZZSCALE)))x ./reconcile/plan
	$(GO) test -run='^$$' -fuzz='^FuzzResponses$$' -fuzztime=$$((40000 * $(FUZZSCALE)))x ./ghpoll
	$(GO) test -run='^$$' -fuzz='^FuzzCache$$' -fuzztime=$$((40000 * $(FUZZSCALE)))x ./ghpoll

vet:
	@echo "==> go vet ./..."
	$(GO) vet ./...

fmt-check:
	@echo "==> gofmt"
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Shell scripts: syntax and shellcheck (installed from Debian's packages when missing).
SCRIPTS := manifests/gce/startup.sh tools/envtest.sh tools/docker.sh tools/prometheus.sh tools/units-check.sh .ci/run
scripts-check:
	@echo "==> shell scripts: bash -n and shellcheck (Debian's shellcheck, installed the first time)"
	@for f in $(SCRIPTS); do bash -n $$f || exit 1; done
	@command -v shellcheck >/dev/null || { echo "installing shellcheck"; \
		(apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null; }
	shellcheck $(SCRIPTS)

# The image's build without a registry to pull its base images from: run the
# Dockerfile's own build command, with its flags, and check that the result is static
# and runs. The binary goes to a temporary directory that is removed however the check
# ends; what it prints goes to stdout (not through /dev/stderr, which a redirection to
# a file would truncate).
image-check:
	@echo "==> the image's build command: a static binary that runs"
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
	cmd=$$(sed -n 's/^RUN \(CGO_ENABLED=0 go build .*\)$$/\1/p' Dockerfile | sed "s#/out/#$$out/#") && \
	test -n "$$cmd" || { echo "Dockerfile: no 'RUN CGO_ENABLED=0 go build' line"; exit 1; } && \
	echo "$$cmd" && VERSION=$(VERSION) COMMIT=$(COMMIT) sh -c "$$cmd" && \
	if readelf -l "$$out/reconcile" | grep -q INTERP; then echo "image binary is not static"; exit 1; fi && \
	$(GO) version -m "$$out/reconcile" | grep -q 'CGO_ENABLED=0' && \
	v=$$("$$out/reconcile" version) && echo "$$v" && \
	case "$$v" in "reconcile $(VERSION) (commit $(COMMIT)"*) ;; *) echo "the image binary says $$v"; exit 1 ;; esac

# The systemd units as shipped: systemd-analyze verify, and the timer's metrics file
# published by the unit's own commands and served by Debian's node_exporter as its user
# (systemd and prometheus-node-exporter from Debian's packages when missing).
units-check: build
	@echo "==> systemd units: systemd-analyze verify, and the timer's metrics served by node_exporter (Debian's systemd and prometheus-node-exporter, installed the first time)"
	tools/units-check.sh bin/reconcile

clean:
	rm -rf bin
