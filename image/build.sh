#!/usr/bin/env bash
# Builds the imdsd image from image/Containerfile with podman (make image;
# e2e/image_test.go runs it too, into its private storage).
#
#   image/build.sh [PODMAN GLOBAL FLAGS...]
#
# Environment:
#   IMDSD_BINARY  the static linux binary to ship (required)
#   VERSION, REVISION, CREATED  the labels' version, commit and date (make
#                 passes git's, as for make dist)
#   IMAGE         the repository to tag (default imdsd): IMAGE:VERSION and
#                 IMAGE:latest
#   CA_BUNDLE     the CA certificates (default /etc/ssl/certs/ca-certificates.crt,
#                 Debian's ca-certificates)
#   PODMAN        podman (default /usr/bin/podman, else podman on PATH)
#
# The image is FROM scratch and built with --pull=never: no base image is
# pulled, and nothing runs at build time (no RUN), so no OCI runtime is
# needed to build it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
: "${IMDSD_BINARY:?set IMDSD_BINARY to the static linux imdsd binary}"
VERSION="${VERSION:-dev}"
REVISION="${REVISION:-unknown}"
CREATED="${CREATED:-unknown}"
IMAGE="${IMAGE:-imdsd}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
PODMAN="${PODMAN:-$(command -v /usr/bin/podman podman 2>/dev/null | head -n1)}"
if [ -z "$PODMAN" ]; then
	echo "image/build.sh: podman not found; install it (make deps, or apt-get install podman runc)" >&2
	exit 1
fi
if [ ! -s "$CA_BUNDLE" ]; then
	echo "image/build.sh: no CA bundle at $CA_BUNDLE; install Debian's ca-certificates or set CA_BUNDLE" >&2
	exit 1
fi
# A static binary only: a scratch image has no libc or loader.
if [ "$(head -c4 "$IMDSD_BINARY" 2>/dev/null | tail -c3)" != ELF ]; then
	echo "image/build.sh: $IMDSD_BINARY is not an ELF binary; build it with CGO_ENABLED=0 GOOS=linux" >&2
	exit 1
fi
# A tag is [A-Za-z0-9_.-], at most 128 characters, not starting with . or -.
tag="$(printf '%s' "$VERSION" | tr -c 'A-Za-z0-9_.-' '-' | cut -c1-128)"
tag="${tag#[.-]}"

ctx="$(mktemp -d "${TMPDIR:-/tmp}/imdsd-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/root"
mkdir -p "$root/etc/ssl/certs" "$root/run/imdsd" "$root/var/lib/imdsd/container-tokens"
install -m 0755 "$IMDSD_BINARY" "$root/imdsd"
install -m 0644 "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\nimdsd:x:65532:65532:imdsd:/var/lib/imdsd:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nimdsd:x:65532:\n' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chmod 0755 "$root/etc" "$root/etc/ssl" "$root/etc/ssl/certs" "$root/run" "$root/var" "$root/var/lib"
chmod 0700 "$root/run/imdsd" "$root/var/lib/imdsd"
chmod 0750 "$root/var/lib/imdsd/container-tokens"

# The layer: root owns everything but imdsd's three directories. File
# times are the commit's, so the layer depends on the inputs only.
mtime="@$(date -d "$CREATED" +%s 2>/dev/null || echo 0)"
tarflags=(--numeric-owner --mtime="$mtime" --no-recursion --format=posix
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$root")
tar --create --file "$ctx/rootfs.tar" --owner=0 --group=0 "${tarflags[@]}" \
	imdsd etc etc/passwd etc/group etc/ssl etc/ssl/certs etc/ssl/certs/ca-certificates.crt run var var/lib
tar --append --file "$ctx/rootfs.tar" --owner=65532 --group=65532 "${tarflags[@]}" \
	run/imdsd var/lib/imdsd var/lib/imdsd/container-tokens
rm -rf "$root"

"$PODMAN" "$@" build --pull=never --layers=false --quiet \
	--file "$here/Containerfile" \
	--build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" --build-arg CREATED="$CREATED" \
	--tag "$IMAGE:$tag" --tag "$IMAGE:latest" \
	"$ctx"
echo "built $IMAGE:$tag and $IMAGE:latest" >&2
