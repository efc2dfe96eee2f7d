package install

import (
	"fmt"
	"net/netip"
	"path"
	"runtime"
	"strings"

	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/internal/endpoint"
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
	// Containers also aliases 169.254.170.23 (and, with IPv6,
	// fd00:ec2::23), the container credentials endpoint's addresses, and
	// with SocketActivation has imdsd.socket bind their port 80 too. The
	// caller passes the matching --container-listen in the run flags
	// (Listeners).
	Containers bool
	// Groups (Linux) are the service's supplementary groups: the container
	// tokens' group (container_token_group), which imdsd gives the token
	// files to and so must be a member of. Each is a group name or
	// numeric ID. launchd has no such setting (the daemon runs as root
	// there unless UserName says otherwise), nor Windows.
	Groups []string
	// ReloadArgs (Linux) follow "imdsd reload" in the unit's ExecReload=:
	// the run flags' --admin-socket and --config, so that systemctl reload
	// reaches the admin socket the service listens on.
	ReloadArgs []string
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
		c.Option["LaunchdConfig"] = launchd.Plist(launchd.Daemon{Exe: exe, Args: c.Arguments, User: c.UserName, IPv6: o.IPv6, Containers: o.Containers})
	default: // linux: systemd. Install refuses other init systems.
		if c.UserName == "" {
			c.UserName = linuxUser
		}
		c.Option["SystemdScript"] = systemd.Service(systemd.Unit{
			Exe: exe, Args: c.Arguments, ReloadArgs: o.ReloadArgs, User: c.UserName, Groups: o.Groups,
			Options: o.systemd(),
		})
	}
	return c
}

// The directories the Linux service may write (the unit's StateDirectory=
// and RuntimeDirectory=, under ProtectSystem=strict), whose paths systemd
// gives it as $STATE_DIRECTORY and $RUNTIME_DIRECTORY.
const (
	StateDirectory   = "/var/lib/" + serviceName
	RuntimeDirectory = "/run/" + serviceName
)

// CheckTokenDir says why the Linux service cannot keep its container
// tokens under dir; nil when dir is under StateDirectory. The service
// writes nowhere else that lasts: ProtectSystem=strict leaves it only its
// StateDirectory and RuntimeDirectory, which systemd removes when it stops.
func CheckTokenDir(dir string) error {
	if c := path.Clean(dir); c == StateDirectory || strings.HasPrefix(c, StateDirectory+"/") {
		return nil
	}
	return fmt.Errorf("%s: the service can keep files only under %s (ProtectSystem=strict); leave it unset for %[2]s/container-tokens, or allow it in a drop-in (systemctl edit imdsd: ReadWritePaths=)",
		dir, StateDirectory)
}

// systemd is the variant of the units o selects.
func (o ServiceOptions) systemd() systemd.Options {
	return systemd.Options{IPv6: o.IPv6, SocketActivation: o.SocketActivation, Containers: o.Containers}
}

// A Listener is a run flag of the installed service's listeners and the
// addresses it gets unless the run flags set it.
type Listener struct {
	Flag  string // "listen", "container-listen"
	Addrs []string
}

// Listeners are the listeners of the installed service, in order: --listen
// on port 80 of the IMDS addresses, and --container-listen on port 80 of
// the container endpoint's with Containers (none without). With
// SocketActivation, imdsd.socket binds exactly these.
func (o ServiceOptions) Listeners() []Listener {
	imds, containers := []netip.Addr{endpoint.IMDSv4}, []netip.Addr{endpoint.ContainerV4}
	if o.IPv6 {
		imds, containers = append(imds, endpoint.IMDSv6), append(containers, endpoint.ContainerV6)
	}
	if !o.Containers {
		containers = nil
	}
	port80 := func(addrs []netip.Addr) []string {
		var out []string
		for _, a := range addrs {
			out = append(out, netip.AddrPortFrom(a, 80).String())
		}
		return out
	}
	return []Listener{{"listen", port80(imds)}, {"container-listen", port80(containers)}}
}
