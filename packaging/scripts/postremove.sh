#!/bin/sh
# imdsd package: after its files are removed. dpkg: postrm
# remove|purge|upgrade|failed-upgrade|abort-*|disappear; rpm: %postun with
# $1 = 0 (erase) or 1 (upgrade). Purge removes the configuration
# (/etc/imdsd, the config file, the environment file and anything added
# there) and the service's state (container tokens). The account imdsd
# stays, as Debian policy asks: files elsewhere may still belong to it.
# rpm has no purge: it keeps a changed config file as .rpmsave itself.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
if [ "$1" = purge ]; then
	rm -rf /etc/imdsd /var/lib/imdsd /var/lib/private/imdsd
fi
exit 0
