package install

import (
	"net/netip"
	"runtime"

	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/launchd"
	"github.com/imdsd/imdsd/systemd"
)

// ServiceOptions are the choices an install makes. The zero value is the
// default install on every OS.
type ServiceOptions struct {
	// UserName is the account the daemon runs as; "" picks the OS default:
	// imdsd on Linux (a DynamicUser unless such an account exists), root on
	// macOS (launchd has no privileged pre-start step for the alias, and
	// binding a port below 1024 on a given address needs root there), and
	// NT AUTHORITY\LocalService on Windows (the alias is persistent, added
	// at install). A real user's name lets the daemon read that user's
	// profile (ProtectHome=read-only).
	UserName string
	// IPv6 also aliases (and, with socket activation, listens on)
	// fd00:ec2::254.
	IPv6 bool
	// SocketActivation (Linux) has systemd bind port 80 through
	// imdsd.socket (systemd.Socket, written and enabled by the install's
	// steps), and the service runs without CAP_NET_BIND_SERVICE.
	SocketActivation bool
}

// Defaults of ServiceConfig on each OS.
const (
	serviceName        = "imdsd"
	linuxUser          = "imdsd"
	windowsUser        = `NT AUTHORITY\LocalService`
	restartDelay       = "2s" // Windows; the unit and plist say the same
	windowsResetPeriod = 60   // seconds without failure before Windows forgets earlier ones
	description        = "EC2 instance metadata service (IMDS) emulator: serves AWS credentials it renews from STS"
)

// ServiceConfig is the kardianos/service configuration of the imdsd service
// on this OS: exe run with `run` and args. On Linux and macOS it carries
// the unit or plist fully rendered (packages systemd and launchd), which
// kardianos's template engine passes through unchanged: what --dry-run
// prints is what kardianos writes. It does not touch the host.
func ServiceConfig(exe string, args []string, o ServiceOptions) *service.Config {
	return serviceConfig(runtime.GOOS, exe, args, o)
}

// serviceConfig is ServiceConfig for any goos, so that the golden tests of
// every OS run on Linux.
func serviceConfig(goos, exe string, args []string, o ServiceOptions) *service.Config {
	c := &service.Config{
		Name:        serviceName,
		DisplayName: serviceName,
		Description: description,
		Executable:  exe,
		Arguments:   append([]string{"run"}, args...),
		UserName:    o.UserName,
		Option:      service.KeyValue{},
	}
	switch goos {
	case "windows":
		if c.UserName == "" {
			c.UserName = windowsUser
		}
		// The keys and values of kardianos's service_windows.go, whose
		// constants exist only in Windows builds.
		c.Option["StartType"] = "automatic"
		c.Option["OnFailure"] = "restart"
		c.Option["OnFailureDelayDuration"] = restartDelay
		c.Option["OnFailureResetPeriod"] = windowsResetPeriod
	case "darwin":
		c.Option["LaunchdConfig"] = launchd.Plist(launchd.Daemon{Exe: exe, Args: c.Arguments, User: c.UserName, IPv6: o.IPv6})
	default: // linux: systemd. Install refuses other init systems.
		if c.UserName == "" {
			c.UserName = linuxUser
		}
		c.Option["SystemdScript"] = systemd.Service(systemd.Unit{
			Exe: exe, Args: c.Arguments, User: c.UserName,
			Options: systemd.Options{IPv6: o.IPv6, SocketActivation: o.SocketActivation},
		})
	}
	return c
}

// ListenAddrs are the addresses the installed service serves unless told
// otherwise: port 80 of the IMDS addresses, as imdsd.socket binds them.
func ListenAddrs(o ServiceOptions) []string {
	addrs := []string{netip.AddrPortFrom(IMDSv4, 80).String()}
	if o.IPv6 {
		addrs = append(addrs, netip.AddrPortFrom(IMDSv6, 80).String())
	}
	return addrs
}
