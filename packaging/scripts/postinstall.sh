#!/bin/sh
# imdsd package: after its files are in place. dpkg: postinst configure
# [OLD] (OLD empty on a first install), or abort-*; rpm: %post with $1 = 1
# (install) or 2 (upgrade).
#
# A first install enables and starts the service only when the config file
# names a real credential source (imdsd check-config --no-dev, as the
# service's user, with its environment file): the example config sets none,
# and the built-in dev source's made-up credentials must not be served by
# surprise. An upgrade restarts the service only if it was running. Without
# a running systemd (a container, a chroot, an image build) nothing is
# started.
set -e
CONFIG=/etc/imdsd/config.yaml
case "$1" in
configure) upgrade=${2:+yes} ;; # dpkg (also a reinstall after dpkg -r)
1) upgrade= ;;                    # rpm install
2) upgrade=yes ;;                 # rpm upgrade
*) exit 0 ;;
esac
HINT="set a credential source in $CONFIG (base credentials in /etc/imdsd/environment), then: sudo systemctl enable --now imdsd"
if [ ! -d /run/systemd/system ]; then
	[ -n "$upgrade" ] || echo "imdsd: installed, not started (systemd is not running here); $HINT"
	exit 0
fi
systemctl daemon-reload
if [ -n "$upgrade" ]; then
	systemctl try-restart --no-block imdsd.service
	systemctl is-enabled --quiet imdsd.service || echo "imdsd: the service is not enabled; $HINT"
	exit 0
fi
# check-config as the service runs: its user and environment file, none of
# this shell's IMDSD_* variables.
if systemd-run --quiet --wait --pipe --collect --uid=imdsd --gid=imdsd \
	-p EnvironmentFile=-/etc/imdsd/environment \
	/usr/bin/imdsd check-config --no-dev --config "$CONFIG" </dev/null >/dev/null 2>&1; then
	systemctl enable imdsd.service
	# --no-block: the unit waits (Type=notify) for the first credentials,
	# which an unreachable STS must not turn into a failed install.
	systemctl start --no-block imdsd.service
	echo "imdsd: starting the service with $CONFIG (imdsd status shows its credentials)"
else
	echo "imdsd: installed, not started: $HINT"
fi
exit 0
