# The README's test command is `make test`; CI (.ci/run) runs exactly that.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test vet fmt-check scripts-check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/reconcile .

# Everything CI checks: formatting, vet, the build, and every test with the race detector.
# The Kubernetes tests run against a real kube-apiserver and etcd that tools/envtest.sh
# builds from the Go module proxy the first time (several minutes) and caches outside the
# repository; here a skipped Kubernetes test is a failure.
test: fmt-check vet scripts-check build
	@assets=$$(tools/envtest.sh) && \
	KUBEBUILDER_ASSETS="$$assets" RECONCILE_REQUIRE_ENVTEST=1 $(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Shell scripts: syntax and shellcheck (installed from Debian's packages when missing).
SCRIPTS := manifests/gce/startup.sh tools/envtest.sh .ci/run
scripts-check:
	@for f in $(SCRIPTS); do bash -n $$f || exit 1; done
	@command -v shellcheck >/dev/null || { echo "installing shellcheck"; \
		(apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null; }
	shellcheck $(SCRIPTS)

clean:
	rm -rf bin
