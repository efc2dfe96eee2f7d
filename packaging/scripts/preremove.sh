#!/bin/sh
# imdsd package: before its files are removed. dpkg: prerm remove|upgrade
# NEW|deconfigure|failed-upgrade; rpm: %preun with $1 = 0 (erase) or 1
# (upgrade). On removal: stop and disable the service and its socket, and
# take the endpoints' addresses off the loopback interface (the unit adds
# 169.254.169.254 before each start and leaves it when stopping). An
# upgrade leaves the service running; postinst restarts it.
set -e
case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl stop imdsd.socket imdsd.service || true
fi
if command -v systemctl >/dev/null; then
	systemctl disable --quiet imdsd.socket imdsd.service || true
fi
# All four addresses, as imdsd uninstall removes them; an absent one counts
# as removed.
/usr/bin/imdsd alias remove --ipv6 --containers >/dev/null ||
	echo "imdsd: could not remove the loopback addresses; see: ip addr show lo" >&2
exit 0
