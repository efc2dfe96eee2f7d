package install

import (
	"runtime"
	"strings"

	"github.com/kardianos/service"

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
	// imdsd.socket (systemd.Socket; the caller installs and enables it),
	// and the service runs without CAP_NET_BIND_SERVICE.
	SocketActivation bool
}

// Defaults of ServiceConfig on each OS.
const (
	serviceName        = "imdsd"
	linuxUser          = "imdsd"
	windowsUser        = `NT AUTHORITY\LocalService`
	restartDelay       = "2s"
	windowsResetPeriod = 60 // seconds without failure before Windows forgets earlier ones
	description        = "EC2 instance metadata service (IMDS) emulator: serves AWS credentials it renews from STS"
)

// ServiceConfig is the kardianos/service configuration of the imdsd service
// on this OS: exe run with `run` and args. The systemd unit and launchd plist
// templates come from the systemd package. It does not touch the host.
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
	so := systemd.Options{IPv6: o.IPv6, SocketActivation: o.SocketActivation}
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
		c.Option["LaunchdConfig"] = systemd.Launchd(so)
		c.Option["RunAtLoad"] = true
	default: // linux: systemd. Other init systems get kardianos's own scripts.
		if c.UserName == "" {
			c.UserName = linuxUser
		}
		// Wants= pulls network-online.target in: After= alone only orders.
		c.Dependencies = []string{"Wants=network-online.target", "After=network-online.target"}
		if o.SocketActivation {
			c.Dependencies = append(c.Dependencies, "Requires=imdsd.socket", "After=imdsd.socket")
		}
		c.Arguments = systemdArgs(c.Arguments)
		c.Option["SystemdScript"] = systemd.Service(so)
		c.Option["Restart"] = "on-failure"
	}
	return c
}

// systemdEscaper escapes what systemd would still interpret in an ExecStart=
// word that kardianos's cmd function has put in double quotes (escaping
// only the quote): backslashes (C escapes), % (unit specifiers) and $
// (environment variables), so that an argument such as
// --mfa-command 'date +%s' reaches imdsd run unchanged.
var systemdEscaper = strings.NewReplacer(`\`, `\\`, `%`, `%%`, `$`, `$$`)

func systemdArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = systemdEscaper.Replace(a)
	}
	return out
}
