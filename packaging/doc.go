// Package packaging holds no code: this directory is how imdsd is built
// into .deb and .rpm packages (make package). nfpm.yaml describes them for
// nfpm; config.yaml and environment are the example conffiles; scripts/
// are the maintainer scripts (POSIX sh, for dpkg's and rpm's arguments);
// version.sh makes a package version of git describe's; gen/ renders the
// packaged systemd units with imdsd install's code. The tests here build
// the packages and check them with dpkg-deb and rpm.
package packaging
