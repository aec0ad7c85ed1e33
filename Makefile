# plugs — the two set-up commands are `make run` and `make test`.
GO       ?= go
BIN      := bin/plugs
PKGS     := ./...
FUZZTIME ?= 20s

.PHONY: all build run test test-deps vet fmt-check fuzz bench chaos screenshots clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/plugs

# The main job on the embedded defaults: build the example plugins, then run
# the root plugs.hcl with the embedded MQTT broker and metrics on 127.0.0.1:9469.
run: build
	@scripts/test-deps.sh --run
	$(BIN) build -f plugs.hcl
	$(BIN) run -f plugs.hcl

test-deps:
	@scripts/test-deps.sh

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: test-deps vet fmt-check
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# Each fuzz target for a short while; FUZZTIME=5m make fuzz for longer.
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

bench:
	@scripts/bench.sh

chaos:
	$(GO) test -v -race -count=1 -timeout 30m -tags chaos ./chaos/...

# The dashboard's screenshots in docs/ui, from a real daemon in headless Chromium.
screenshots:
	@scripts/test-deps.sh
	PLUGS_UI_SCREENSHOTS=$(CURDIR)/docs/ui $(GO) test -count=1 -run TestScreenshots ./ui

clean:
	rm -rf bin
