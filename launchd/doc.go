// Package launchd holds the LaunchDaemon plist imdsd installs on macOS
// (imdsd.plist, embedded) and renders it for one install (Plist). The
// rendered plist is complete: package install hands it to kardianos/service
// as its LaunchdConfig option, whose template engine passes a text without
// "{{" through unchanged.
//
// launchd has no privileged pre-start step, so the plist runs /bin/sh,
// which adds the lo0 aliases (imdsd alias add: the IMDS address, and with
// Containers the container endpoint's) and then execs the daemon;
// the daemon runs as root unless the install names a user. KeepAlive with
// SuccessfulExit=false restarts it after a failure, ThrottleInterval=2
// seconds apart.
//
// It makes no host change and imports nothing beyond the standard library.
// In particular it must not import kardianos/service, install, imds,
// rotator or daemon.
package launchd
