# cfguard: a thin index of what can be done here. `make help` lists it.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
UNITDIR ?= /etc/systemd/system
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
GO      ?= go

.PHONY: help build test lint demo bench install uninstall clean deb

help:
	@echo "make build    build bin/cfguard"
	@echo "make test     gofmt, go vet and every test (kernel and web-server tests need root)"
	@echo "make demo     cfguard's main job in a throwaway network namespace (needs root)"
	@echo "make bench    Go benchmarks and whole-command timings (needs root)"
	@echo "make install  install the binary, the systemd units and /etc/default/cfguard"
	@echo "make deb      build dist/cfguard_<version>_<arch>.deb (docs/packaging.md)"

build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/cfguard ./cmd/cfguard

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd internal/cmd/mkdeb && $(GO) vet ./...

test: lint
	$(GO) test -count=1 -timeout 25m ./...

demo: build
	./scripts/demo.sh

bench: build
	mkdir -p bench-results
	$(GO) test -run '^$$' -bench . -benchmem ./... | tee bench-results/go.txt
	./scripts/bench.sh

install: build
	install -D -m 0755 bin/cfguard $(DESTDIR)$(BINDIR)/cfguard
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for u in cfguard-sync.service cfguard-sync.timer cfguard-restore.service; do \
		sed 's#@BINDIR@#$(BINDIR)#g' systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	[ -e $(DESTDIR)/etc/default/cfguard ] || install -D -m 0644 systemd/cfguard.default $(DESTDIR)/etc/default/cfguard
	[ -e $(DESTDIR)/etc/cfguard/api-token ] || install -D -m 0600 /dev/null $(DESTDIR)/etc/cfguard/api-token
	@echo "installed. Next: systemctl daemon-reload && systemctl enable --now cfguard-restore.service cfguard-sync.timer && cfguard sync && cfguard status"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cfguard
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,cfguard-sync.service cfguard-sync.timer cfguard-restore.service)

# The package's binary is a static PIE (CGO_ENABLED=0, -buildmode=pie):
# it depends on no libc and gets ASLR, as Debian builds Go.
# mkdeb is a module of its own, so nfpm never reaches cfguard's go.mod.
deb:
	mkdir -p dist
	CGO_ENABLED=0 $(GO) build -buildmode=pie -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o dist/cfguard ./cmd/cfguard
	cd internal/cmd/mkdeb && $(GO) run . -root $(CURDIR) -bin $(CURDIR)/dist/cfguard -out $(CURDIR)/dist $(if $(DEB_VERSION),-version $(DEB_VERSION))

clean:
	rm -rf bin dist
