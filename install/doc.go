// Package install makes the host changes of a service install, each
// reversible and idempotent, and owns them as one ordered list of steps:
//
//   - Host.Plan lists the steps that install a Spec (the executable, imdsd
//     run's flags, the environment variables kept out of the unit, the
//     options): the loopback alias (Windows), the service's environment
//     file (Linux), imdsd.socket (socket activation), the service through
//     kardianos/service, and enabling the socket. Each Step has the text
//     --dry-run prints and the action the real run performs, both ways:
//     Plan.Install runs them forwards (doing only what is missing or
//     differs, so the same install twice changes nothing), Plan.Uninstall
//     backwards (the socket first, the aliases last);
//   - the endpoints' addresses on the loopback interface (AddAlias,
//     RemoveAlias): IMDS's 169.254.169.254/32 and, when asked,
//     fd00:ec2::254/128, and with Containers the container credentials
//     endpoint's 169.254.170.23/32 (and fd00:ec2::23/128), never a wider
//     prefix; one file per OS (alias_linux.go: ip, alias_darwin.go:
//     ifconfig lo0, alias_windows.go: netsh on the loopback
//     pseudo-interface), all built from pure argv builders in alias.go so
//     that every OS's commands are tested on any OS;
//   - the service definition handed to kardianos/service (ServiceConfig):
//     the unit and plist rendered in full by packages systemd and launchd,
//     which kardianos's template engine passes through unchanged, so that
//     --dry-run prints exactly what is written;
//   - the service's environment file on Linux (EnvironmentPath, mode
//     0600, read by systemd as root), where the settings that may carry
//     secrets go instead of the world-readable unit, written as systemd
//     parses it (parseEnvFile mirrors systemd's parser).
//
// Every command goes through a Runner and every path imdsd touches is under
// Host.Root, so tests assert the argv, script the answers and use a
// temporary root; ExecRunner runs the commands for real. Adding an address
// needs root (CAP_NET_ADMIN) or an elevated prompt; finding it already
// there does not.
//
// It may import kardianos/service, os/exec, packages systemd and launchd,
// and internal/endpoint (the addresses). It must never import imds, rotator or daemon: it knows nothing
// of credentials or HTTP, and the daemon calls it, never the reverse.
package install
