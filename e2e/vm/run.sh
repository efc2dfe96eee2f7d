#!/usr/bin/env bash
# e2e/vm/run.sh (make vmtest): the service test with a real systemd. It boots
# a minimal Debian in qemu, installs bin/imdsd as a service there as a user
# would (imdsd install, start), and checks from inside (guest.sh) that an
# SDK with no configuration at all gets region and assume-role credentials
# from 169.254.169.254, then reloads, stops and uninstalls; then the same
# with the .deb (IMDSD_DEB): dpkg -i, configure, start, dpkg -r, dpkg -P. STS is the fake
# one (rotator/ststest) on the host's loopback, reached through a qemu
# guestfwd; the VM's network is otherwise restricted: no packet leaves it
# for anywhere else. Root only; bounded to a few minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${IMDSD_BIN:-$PWD/bin/imdsd}
WORK=${VMTEST_DIR:-/var/tmp/imdsd-vmtest}
TIMEOUT=${VMTEST_TIMEOUT:-420}

[ "$(id -u)" = 0 ] || { echo "vmtest: needs root (debootstrap, the VM's disk)" >&2; exit 1; }
for c in qemu-system-x86_64 debootstrap mkfs.ext4 debugfs; do
	command -v "$c" >/dev/null || { echo "vmtest: $c is missing: run make deps-vm" >&2; exit 1; }
done
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$KERNEL" ] || { echo "vmtest: no kernel in /boot: run make deps-vm" >&2; exit 1; }
INITRD=/boot/initrd.img-${KERNEL#/boot/vmlinuz-}
[ -x "$BIN" ] || { echo "vmtest: $BIN missing: run make build" >&2; exit 1; }
# The amd64 .deb of make package, which the guest installs after the rest.
DEB=${IMDSD_DEB:-}
[ -f "$DEB" ] || { echo "vmtest: IMDSD_DEB (the amd64 .deb of make package) missing: run make vmtest" >&2; exit 1; }

mkdir -p "$WORK"
# $WORK/rootfs is the cache: a Debian base system, built once and never
# changed after. Each run works on its own copy in a directory of its own,
# removed at the end, so two runs at once do not clash.
CACHE=$WORK/rootfs
exec 9>"$WORK/.lock"
flock 9
if [ ! -x "$CACHE/lib/systemd/systemd" ]; then
	echo "vmtest: downloading a Debian base system (debootstrap, about 100 MB; once: later runs reuse $CACHE)"
	rm -rf "$CACHE"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,iproute2,curl,udev,dbus,ca-certificates \
		bookworm "$CACHE" > "$WORK/debootstrap.log" 2>&1 || { tail -n 20 "$WORK/debootstrap.log"; exit 1; }
fi
flock -u 9
RUN=$(mktemp -d "$WORK/run.XXXXXX")
STS_PID=
trap '[ -n "$STS_PID" ] && kill $STS_PID 2>/dev/null; rm -rf "$RUN"' EXIT
ROOT=$RUN/rootfs
cp -a "$CACHE" "$ROOT"

# What the guest runs at boot, and a DHCP client for the (restricted) NIC.
install -m 0755 "$BIN" "$ROOT/usr/local/bin/imdsd"
install -m 0755 e2e/vm/guest.sh "$ROOT/root/guest.sh"
install -m 0644 "$DEB" "$ROOT/root/imdsd.deb"
CGO_ENABLED=0 go build -o "$ROOT/root/sdkclient" ./e2e/vm/sdkclient
CGO_ENABLED=0 go build -o "$RUN/fakests" ./e2e/vm/fakests
rm -f "$ROOT/root/vmtest.log" "$ROOT/etc/systemd/system/imdsd.service"
cat > "$ROOT/etc/systemd/system/vmtest.service" <<'UNIT'
[Unit]
Description=imdsd service test
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/root/guest.sh

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants" "$ROOT/etc/systemd/system/network-online.target.wants" "$ROOT/etc/systemd/network"
ln -sf /etc/systemd/system/vmtest.service "$ROOT/etc/systemd/system/multi-user.target.wants/vmtest.service"
ln -sf /lib/systemd/system/systemd-networkd.service "$ROOT/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
ln -sf /lib/systemd/system/systemd-networkd-wait-online.service "$ROOT/etc/systemd/system/network-online.target.wants/"
ln -sf /dev/null "$ROOT/etc/systemd/system/serial-getty@ttyS0.service"
for t in apt-daily apt-daily-upgrade; do ln -sf /dev/null "$ROOT/etc/systemd/system/$t.timer"; done
printf '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n' > "$ROOT/etc/systemd/network/20-dhcp.network"
echo imdsd-vmtest > "$ROOT/etc/hostname"

IMG=$RUN/disk.img
rm -f "$IMG"
truncate -s 2G "$IMG"
mkfs.ext4 -q -d "$ROOT" "$IMG"

"$RUN/fakests" > "$RUN/fakests.out" 2>&1 &
STS_PID=$!
for _ in $(seq 50); do grep -q '^http' "$RUN/fakests.out" && break; sleep 0.1; done
PORT=$(head -n 1 "$RUN/fakests.out" | sed 's/.*://')

echo "vmtest: booting (software emulation; about a minute)"
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" -append "root=/dev/vda rw console=ttyS0 loglevel=4" \
	-drive "file=$IMG,format=raw,if=virtio" \
	-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:9000-tcp:127.0.0.1:$PORT" \
	-device virtio-net-pci,netdev=n0 > "$RUN/console.log" 2>&1 || echo "vmtest: qemu ended with status $?"

debugfs -R "cat /root/vmtest.log" "$IMG" 2>/dev/null > "$RUN/vmtest.log" || true
grep -E '^(CHECK|VMTEST)' "$RUN/vmtest.log" || { echo "vmtest: the guest wrote no result; console:"; tail -n 40 "$RUN/console.log"; exit 1; }
if ! grep -q '^VMTEST PASS' "$RUN/vmtest.log"; then
	echo "--- guest log"; cat "$RUN/vmtest.log"
	exit 1
fi
