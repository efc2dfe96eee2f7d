package systemd

import (
	_ "embed"
	"strings"
)

var (
	//go:embed imdsd.service
	serviceTemplate string
	//go:embed imdsd.socket
	socketUnit string
	//go:embed imdsd.plist
	launchdTemplate string
)

// Options selects the variant of the files. The zero value is the default
// install: IPv4 only, CAP_NET_BIND_SERVICE instead of socket activation.
type Options struct {
	// IPv6 also aliases and serves fd00:ec2::254, the IPv6 IMDS endpoint.
	IPv6 bool
	// SocketActivation has systemd bind port 80 (imdsd.socket), and the
	// service runs without any capability.
	SocketActivation bool
}

// Lines of the embedded files that the variants edit; tests check each
// occurs exactly once.
const (
	aliasV6       = " fd00:ec2::254"
	listenV6      = "ListenStream=[fd00:ec2::254]:80\n"
	ambientCap    = "# Port 80 without root.\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
	noCapability  = "# Port 80 comes from imdsd.socket: no capability at all.\nCapabilityBoundingSet=\n"
	aliasCommand  = " alias add 169.254.169.254" + aliasV6
	aliasCommand4 = " alias add 169.254.169.254"
)

// Service returns the kardianos/service template of imdsd.service (the
// SystemdScript option). With socket activation the unit must also be
// ordered after and require imdsd.socket; install adds those lines through
// kardianos's Dependencies.
func Service(o Options) string {
	s := serviceTemplate
	if !o.IPv6 {
		s = strings.Replace(s, aliasCommand, aliasCommand4, 1)
	}
	if o.SocketActivation {
		s = strings.Replace(s, ambientCap, noCapability, 1)
	}
	return s
}

// Socket returns imdsd.socket, a complete unit (not a template).
func Socket(o Options) string {
	if o.IPv6 {
		return socketUnit
	}
	return strings.Replace(socketUnit, listenV6, "", 1)
}

// Launchd returns the kardianos/service template of the LaunchDaemon plist
// (the LaunchdConfig option). Socket activation does not apply to launchd.
func Launchd(o Options) string {
	if o.IPv6 {
		return launchdTemplate
	}
	return strings.Replace(launchdTemplate, aliasCommand, aliasCommand4, 1)
}
