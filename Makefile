# cfguard: a thin index of what can be done here. `make help` lists it.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
UNITDIR ?= /etc/systemd/system
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
GO      ?= go
# Pinned linters, run through the module proxy (no install step).
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK ?= $(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB      ?= https://vuln.go.dev

.PHONY: help build test lint vuln fuzz-smoke demo bench bench-watch install uninstall clean deb

help:
	@echo "make build    build bin/cfguard"
	@echo "make lint     gofmt, go vet, go mod tidy -diff and staticcheck"
	@echo "make vuln     govulncheck (skipped, with one line, when its database is unreachable)"
	@echo "make test     lint, every test (kernel and web-server tests need root), each fuzz target briefly"
	@echo "make demo     cfguard's main job in a throwaway network namespace (needs root)"
	@echo "make bench    Go benchmarks and whole-command timings (needs root)"
	@echo "make bench-watch  recovery times of watch --recover vs systemd and monit, in a sandbox (needs root)"
	@echo "make fuzz-smoke  each fuzz target for $(FUZZTIME) (FUZZTIME=1m for longer)"
	@echo "make install  install the binary, the systemd units and /etc/default/cfguard"
	@echo "make deb      build dist/cfguard_<version>_<arch>.deb (docs/packaging.md)"

build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/cfguard ./cmd/cfguard

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(STATICCHECK) ./...
	cd internal/cmd/mkdeb && $(GO) vet ./... && $(GO) mod tidy -diff

vuln:
	@if curl -fsS -m 10 -o /dev/null $(VULNDB)/index/db.json 2>/dev/null; then $(GOVULNCHECK) ./...; else echo "govulncheck skipped: $(VULNDB) is unreachable"; fi

test: lint
	$(GO) test -count=1 -timeout 25m ./...
	cd internal/cmd/mkdeb && $(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz-smoke

demo: build
	./scripts/demo.sh

bench: build
	mkdir -p bench-results
	$(GO) test -run '^$$' -bench . -benchmem ./... | tee bench-results/go.txt
	./scripts/bench.sh

# Each fuzz target on its own (go test -fuzz takes one target per run).
FUZZTIME ?= 3s
FUZZ_TARGETS = \
	FuzzParseAnswer:./cfranges \
	FuzzLoad:./cfranges \
	FuzzParsePorts:./cmd/cfguard \
	FuzzParseAllow:./cmd/cfguard \
	FuzzParseMaxAge:./cmd/cfguard \
	FuzzString:./internal/textsafe \
	FuzzJSON:./internal/textsafe \
	FuzzClassify:./verify/backend/logs \
	FuzzFind:./verify/probemark \
	FuzzParseDump:./verify/backend/nginxconf \
	FuzzParseDuration:./verify/backend/nginxconf \
	FuzzParse:./verify/backend/apacheconf \
	FuzzParse:./verify/backend/fpm \
	FuzzParseFPMStatus:./verify/backend \
	FuzzCgroup:./verify/backend \
	FuzzFollower:./verify/watch \
	FuzzParseRuleMsg:./firewall/sim \
	FuzzSame:./cfranges/realip \
	FuzzWebSaid:./internal/guard \
	FuzzParseEdgeAnswer:./verify/cloudflare \
	FuzzParseRuleset:./verify/cloudflare \
	FuzzParseEdge:./internal/cmd/cfapi-standin \
	FuzzParse:./verify/rules \
	FuzzEsc:./internal/manpage \
	FuzzFirstErrorLine:./systemd/recovery

fuzz-smoke:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done
	@echo "== FuzzDebVersion (./internal/cmd/mkdeb, its own module, $(FUZZTIME))"
	@cd internal/cmd/mkdeb && $(GO) test -run '^$$' -fuzz '^FuzzDebVersion$$' -fuzztime $(FUZZTIME) .

bench-watch:
	./scripts/bench-watch.sh
	./scripts/bench-watch-hosts.sh

install: build
	install -D -m 0755 bin/cfguard $(DESTDIR)$(BINDIR)/cfguard
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for u in cfguard-sync.service cfguard-sync.timer cfguard-restore.service cfguard-watch.service; do \
		sed 's#@BINDIR@#$(BINDIR)#g' systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	[ -e $(DESTDIR)/etc/default/cfguard ] || install -D -m 0644 systemd/cfguard.default $(DESTDIR)/etc/default/cfguard
	[ -e $(DESTDIR)/etc/cfguard/api-token ] || install -D -m 0600 /dev/null $(DESTDIR)/etc/cfguard/api-token
	@echo "installed. Next: systemctl daemon-reload && systemctl enable --now cfguard-restore.service cfguard-sync.timer && cfguard sync && cfguard status"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cfguard
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,cfguard-sync.service cfguard-sync.timer cfguard-restore.service cfguard-watch.service)

# The package's binary is a static PIE (CGO_ENABLED=0, -buildmode=pie):
# it depends on no libc and gets ASLR, as Debian builds Go.
# mkdeb is a module of its own, so nfpm never reaches cfguard's go.mod.
deb:
	mkdir -p dist
	CGO_ENABLED=0 $(GO) build -buildmode=pie -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o dist/cfguard ./cmd/cfguard
	cd internal/cmd/mkdeb && $(GO) run . -root $(CURDIR) -bin $(CURDIR)/dist/cfguard -out $(CURDIR)/dist $(if $(DEB_VERSION),-version $(DEB_VERSION))

clean:
	rm -rf bin dist
