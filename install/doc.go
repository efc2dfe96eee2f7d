// Package install makes the host changes a service install needs, each
// reversible and idempotent:
//
//   - the IMDS address on the loopback interface (AddAlias, RemoveAlias):
//     169.254.169.254/32 and, when asked, fd00:ec2::254/128, never a wider
//     prefix; one file per OS (alias_linux.go: ip, alias_darwin.go:
//     ifconfig lo0, alias_windows.go: netsh on the loopback
//     pseudo-interface), all built from pure argv builders in alias.go so
//     that every OS's commands are tested on any OS;
//   - the service definition handed to kardianos/service (ServiceConfig),
//     with the unit and plist templates of package systemd.
//
// Every command goes through a Runner, so tests assert the argv and script
// the answers; ExecRunner runs them for real. Adding an address needs root
// (CAP_NET_ADMIN) or an elevated prompt; finding it already there does not.
//
// It may import kardianos/service, os/exec and package systemd. It must
// never import imds, rotator or daemon: it knows nothing of credentials or
// HTTP, and the daemon calls it, never the reverse.
package install
