# imdsd — see README.md. `make run` and `make test` are the quick start.
SHELL := /bin/bash
# The Go release imdsd is built and tested with, fetched by the go command
# from the module proxy on first use (a few seconds): 1.26.8, which a new
# machine has, carries net/http, crypto/tls and crypto/x509 vulnerabilities
# that make vuln reports, fixed in 1.26.9 and 1.26.10.
export GOTOOLCHAIN := go1.26.10
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell git log -1 --format=%cI 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/imdsd/imdsd/daemon.version=$(VERSION) \
	-X github.com/imdsd/imdsd/daemon.commit=$(COMMIT) -X github.com/imdsd/imdsd/daemon.buildDate=$(BUILD_DATE)
STATICCHECK_VERSION := v0.8.2
# make test shows each package as it finishes, the failures in full, and a
# summary line (gotestsum, pinned, from the module proxy).
GOTESTSUM_VERSION := v1.13.0
GOTESTSUM := $(GO) run gotest.tools/gotestsum@$(GOTESTSUM_VERSION) --format pkgname-and-test-fails --format-hide-empty-pkg
# govulncheck, and the vulnerability database it reads: the golang.org/x/vulndb
# snapshot served by the Go module proxy (this network reaches no other
# source), indexed locally once per version. Bump VULNDB_VERSION to refresh.
GOVULNCHECK_VERSION := v1.9.0
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB_DIR ?= $(HOME)/.cache/imdsd/vulndb-$(VULNDB_VERSION)
# Root installs packages directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FUZZTIME ?= 30s

.PHONY: all build install dist package run deps deps-vm vmtest test check fmt-check vet staticcheck vuln tidy-check fuzz bench load cross clean image image-archive

all: build

# A static binary: no libc to match on the target (service installs), and
# 1.3 MiB less resident memory than the cgo build (BENCHMARKS.md).
build:
	@[ -x bin/imdsd ] || echo "building bin/imdsd (the first build downloads Go $(GOTOOLCHAIN:go%=%) and the modules: it may take a few minutes)"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/imdsd ./cmd/imdsd

# imdsd on PATH, as every example writes it: PREFIX/bin/imdsd (root, or
# sudo, for /usr/local). The service is installed by imdsd install.
PREFIX ?= /usr/local
install: build
	$(SUDO) install -D -m 0755 bin/imdsd $(DESTDIR)$(PREFIX)/bin/imdsd
	@echo "installed $(DESTDIR)$(PREFIX)/bin/imdsd; next: sudo imdsd install -- --source …  (imdsd install --help)"

# Quick start 1: the daemon on its built-in dev source, in the foreground.
run: build
	bin/imdsd run --source dev --listen 127.0.0.1:8169

# What the suite drives, installed only when missing: AWS CLI v2 and boto3
# from Debian (absolute paths: a pyenv `aws`/`python3` on PATH may be other
# versions), wrk for `make load`, iproute2 for the network-namespace tests,
# systemd-analyze to verify the units, rpm to check the .rpm (make
# package), curl and setpriv for the tests that run clients as other users,
# the JS SDK v3 from e2e/js/package-lock.json.
deps:
	@missing=""; \
	[ -x /usr/bin/aws ] || missing="$$missing awscli"; \
	/usr/bin/python3 -c 'import boto3' 2>/dev/null || missing="$$missing python3-boto3"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v rpm >/dev/null || missing="$$missing rpm"; \
	[ -x /usr/bin/curl ] || missing="$$missing curl"; \
	command -v setpriv >/dev/null || missing="$$missing util-linux"; \
	{ [ -x /usr/bin/podman ] && [ -x /usr/sbin/runc ]; } || missing="$$missing podman runc"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@if [ ! -d e2e/js/node_modules ] || [ e2e/js/package-lock.json -nt e2e/js/node_modules/.package-lock.json ]; then \
		npm ci --prefix e2e/js --no-audit --no-fund; \
	fi

# What the VM test needs: qemu, debootstrap and a kernel to boot.
deps-vm:
	@missing=""; \
	command -v qemu-system-x86_64 >/dev/null || missing="$$missing qemu-system-x86"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	ls /boot/vmlinuz-* >/dev/null 2>&1 || missing="$$missing linux-image-amd64"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# imdsd installed as a service in a Debian VM with real systemd (root),
# then the .deb of make package (amd64) installed, used and removed.
vmtest: deps-vm build
	@rm -rf bin/vmtest-package
	$(MAKE) --no-print-directory package PACKAGE_ARCHS=amd64 PACKAGE_DIR=bin/vmtest-package
	IMDSD_BIN=$(CURDIR)/bin/imdsd IMDSD_DEB=$$(echo $(CURDIR)/bin/vmtest-package/imdsd_*_amd64.deb) e2e/vm/run.sh

# Quick start 2: the whole suite, real clients included. As root it also
# runs the privileged tests (loopback aliases and a service install, each
# inside namespaces the tests create; the host is never changed).
test: deps build
	IMDSD_BIN=$(CURDIR)/bin/imdsd $(GOTESTSUM) -- -race -count=1 ./...
	@if [ "$$(id -u)" = 0 ]; then \
		echo "IMDSD_TEST_ROOT=1 go test -tags integration ./install ./daemon"; \
		IMDSD_TEST_ROOT=1 IMDSD_BIN=$(CURDIR)/bin/imdsd $(GOTESTSUM) -- -race -count=1 -tags integration ./install ./daemon; \
	else echo "not root: privileged tests (alias, install) skipped"; fi

check: fmt-check vet staticcheck vuln test tidy-check

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./install ./daemon

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Known vulnerabilities in the code paths imdsd uses (module, stdlib).
vuln:
	@if [ ! -f $(VULNDB_DIR)/index/db.json ]; then \
		echo "indexing the vulnerability database $(VULNDB_VERSION) (once; about a minute)"; \
		mkdir -p $(dir $(VULNDB_DIR)) && tmp=$$(mktemp -d $(VULNDB_DIR).XXXXXX) && \
		src=$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p') && \
		$(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) -vulns "$$src/data/osv" -out "$$tmp/db" && \
		{ mv -T "$$tmp/db" $(VULNDB_DIR) 2>/dev/null || true; } && rm -rf "$$tmp"; \
	fi
	$(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db file://$(VULNDB_DIR) ./...

tidy-check:
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

# Each fuzz target for FUZZTIME; seeds live in each package's testdata/fuzz/.
fuzz:
	$(GO) test ./imds -run '^$$' -fuzz '^FuzzParseTTL$$' -fuzztime $(FUZZTIME)
	$(GO) test ./imds -run '^$$' -fuzz '^FuzzTokenValid$$' -fuzztime $(FUZZTIME)
	$(GO) test ./imds -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME)
	$(GO) test ./daemon -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rotator -run '^$$' -fuzz '^FuzzDefaultRoleSessionName$$' -fuzztime $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 10 ./imds ./rotator

load: deps build
	IMDSD_BIN=$(CURDIR)/bin/imdsd e2e/load/run.sh

# Release archives: for each platform an archive with the binary, LICENSE,
# README.md and the service files (imdsd install renders them for the
# host; these are its templates), the .deb and .rpm packages (make
# package), SHA256SUMS over everything, and a
# CycloneDX SBOM of the binary's modules (cyclonedx-gomod, pinned, from the
# module proxy). The version is git describe's (VERSION).
DIST_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
CYCLONEDX_VERSION := v1.10.0
dist:
	@rm -rf dist && mkdir -p dist
	@set -e; for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; name=imdsd-$(VERSION)-$$os-$$arch; dir=dist/$$name; exe=imdsd; \
		[ $$os = windows ] && exe=imdsd.exe; \
		echo "building $$name"; \
		mkdir -p $$dir/units; \
		GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$dir/$$exe ./cmd/imdsd; \
		cp LICENSE README.md $$dir/; \
		cp systemd/imdsd.service systemd/imdsd.socket launchd/imdsd.plist $$dir/units/; \
		if [ $$os = windows ]; then \
			(cd dist && python3 -m zipfile -c $$name.zip $$name); \
		else \
			tar -C dist --owner=0 --group=0 --numeric-owner -czf dist/$$name.tar.gz $$name; \
		fi; \
		rm -rf $$dir; \
	done
	@$(MAKE) --no-print-directory package PACKAGE_DIR=dist
	$(GO) run github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$(CYCLONEDX_VERSION) app -json -licenses=false -main cmd/imdsd -output dist/imdsd-$(VERSION).cdx.json .
	cd dist && sha256sum imdsd[-_]* > SHA256SUMS && sha256sum -c --quiet SHA256SUMS
	@ls -l dist

# The OCI image (image/Containerfile, README "Container image"): FROM
# scratch, the static linux binary, the host's CA bundle, a non-root user,
# tagged imdsd:$(VERSION) and imdsd:latest in podman's storage (Debian's
# podman, installed when missing as make deps does). No base image is
# pulled and nothing runs at build time, so no OCI runtime is involved.
# image-archive also saves it as an OCI archive in dist/.
IMAGE ?= imdsd
image:
	@[ -x /usr/bin/podman ] || { echo "installing: podman runc"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq podman runc; }
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/image/imdsd ./cmd/imdsd
	IMDSD_BINARY=bin/image/imdsd IMAGE=$(IMAGE) VERSION=$(VERSION) REVISION=$(COMMIT) CREATED=$(BUILD_DATE) image/build.sh
	/usr/bin/podman image inspect $(IMAGE):latest --format '{{.Id}} {{.Size}} bytes, user {{.Config.User}}, entrypoint {{.Config.Entrypoint}}'

image-archive: image
	@mkdir -p dist
	rm -f dist/imdsd-$(VERSION)-image.oci.tar
	/usr/bin/podman save --format oci-archive -o dist/imdsd-$(VERSION)-image.oci.tar $(IMAGE):latest
	@ls -l dist/imdsd-$(VERSION)-image.oci.tar

# Debian and RPM packages for linux/amd64 and arm64 (nfpm, pinned, from the
# module proxy; packaging/nfpm.yaml), into PACKAGE_DIR: /usr/bin/imdsd, the
# units packaging/gen renders with imdsd install's code, the example config
# and environment file (conffiles), the maintainer scripts of
# packaging/scripts. The version is git describe's, as packaging/version.sh
# makes it a package version. PACKAGE_WORK holds the binaries and units.
NFPM_VERSION := v2.45.2
PACKAGE_ARCHS ?= amd64 arm64
PACKAGE_DIR ?= dist
PACKAGE_WORK ?= bin/package
package:
	@set -e; pv=$$(packaging/version.sh '$(VERSION)'); mkdir -p $(PACKAGE_DIR); \
	$(GO) run ./packaging/gen -out $(PACKAGE_WORK)/units; \
	for arch in $(PACKAGE_ARCHS); do \
		echo "packaging imdsd $$pv for linux/$$arch"; \
		GOOS=linux GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(PACKAGE_WORK)/linux-$$arch/imdsd ./cmd/imdsd; \
		for p in deb rpm; do \
			PKG_ARCH=$$arch PKG_VERSION=$$pv PKG_BIN=$(PACKAGE_WORK)/linux-$$arch/imdsd PKG_UNITS=$(PACKAGE_WORK)/units \
				$(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION) package --config packaging/nfpm.yaml --packager $$p --target $(PACKAGE_DIR)/; \
		done; \
	done

cross:
	GOOS=windows $(GO) build ./...
	GOOS=darwin $(GO) build ./...

clean:
	rm -rf bin dist
