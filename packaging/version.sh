#!/bin/sh
# packaging/version.sh DESCRIBE prints the package version of a
# `git describe --tags --always --dirty` output (the Makefile's VERSION):
# Debian and RPM versions start with a digit and hold no "-", and must sort
# in the order of the commits they were built from.
#
#   v1.2.0                  1.2.0
#   v1.2.0-rc1              1.2.0~rc1              (~ sorts before 1.2.0)
#   v1.2.0-3-g1a2b3c4       1.2.0+3.g1a2b3c4       (3 commits after v1.2.0)
#   v1.2.0-3-g1a2b3c4-dirty 1.2.0+3.g1a2b3c4.dirty
#   v1.2.0-dirty            1.2.0+dirty
#   1a2b3c4 (no tag)        0.0.0+g1a2b3c4
#   1a2b3c4-dirty           0.0.0+g1a2b3c4.dirty
#   dev (no git)            0.0.0+dev
set -eu
v=${1#v}
dirty=
case $v in *-dirty) dirty=dirty v=${v%-dirty} ;; esac
post=
# git describe --always names an untagged commit by its abbreviated hash.
if printf '%s\n' "$v" | grep -Eqx '[0-9a-f]{7,40}'; then
	post=g$v v=0.0.0
fi
case $v in
0.0.0) ;;
[0-9]*)
	# TAG-N-gSHA: N commits after TAG.
	if n=$(printf '%s\n' "$v" | sed -n -E 's/^.*-([0-9]+)-g([0-9a-f]+)$/\1.g\2/p') && [ -n "$n" ]; then
		post=$n v=${v%-*-g*}
	fi
	v=$(printf '%s' "$v" | tr - '~')
	;;
dev | '') post=dev v=0.0.0 ;;
*) post=g$v v=0.0.0 ;;
esac
[ -n "$dirty" ] && post=${post:+$post.}$dirty
out=$v${post:++$post}
case $out in *[!0-9A-Za-z.+~]*)
	echo "packaging/version.sh: cannot make a package version of \"$1\" (got \"$out\")" >&2
	exit 1
	;;
esac
printf '%s\n' "$out"
