#!/bin/sh
# imdsd package: before its files are unpacked. dpkg: preinst install|upgrade
# [OLD]; rpm: %pre with $1 = 1 (install) or 2 (upgrade).
#
# The service's account, static: the unit's User=imdsd with DynamicUser=yes
# uses an account of that name when one exists, and the package gives
# /etc/imdsd/config.yaml (mode 0640) to its group, which a dynamic user
# could not be given before it exists. Created here, before the files, so
# that dpkg and rpm find the group the file belongs to.
set -e
if ! getent group imdsd >/dev/null; then
	groupadd --system imdsd
fi
if ! getent passwd imdsd >/dev/null; then
	useradd --system --gid imdsd --home-dir /nonexistent --no-create-home \
		--shell /usr/sbin/nologin --comment "imdsd service" imdsd
fi
exit 0
