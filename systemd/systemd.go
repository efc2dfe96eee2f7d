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
)

// Options selects the variant of the units. The zero value is the default
// install: IPv4 only, CAP_NET_BIND_SERVICE instead of socket activation.
type Options struct {
	// IPv6 also aliases and serves fd00:ec2::254, the IPv6 IMDS endpoint.
	IPv6 bool
	// SocketActivation has systemd bind port 80 (imdsd.socket), and the
	// service runs without any capability.
	SocketActivation bool
}

// Unit is what one install puts in imdsd.service.
type Unit struct {
	// Exe is the absolute path of the imdsd executable.
	Exe string
	// Args are the arguments of ExecStart=, "run" first. Each is written
	// as one double-quoted word that systemd passes on unchanged: no
	// specifier (%), variable ($) or escape (\) expansion.
	Args []string
	// User is the account of User=; "" leaves the line out.
	User string
	Options
}

// Lines of imdsd.service that the variants edit; tests check each occurs
// exactly once.
const (
	aliasV6       = " fd00:ec2::254"
	listenV6      = "ListenStream=[fd00:ec2::254]:80\n"
	ambientCap    = "# Port 80 without root.\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
	noCapability  = "# Port 80 comes from imdsd.socket: no capability at all.\nCapabilityBoundingSet=\n"
	aliasCommand  = " alias add 169.254.169.254" + aliasV6
	aliasCommand4 = " alias add 169.254.169.254"
	afterNetwork  = "After=network-online.target\n"
	socketDeps    = "Requires=imdsd.socket\nAfter=imdsd.socket\n"
)

// The placeholders of imdsd.service. A line holding {{UserName}} is left
// out when there is no user.
const (
	keyPath = "{{Path}}"
	keyArgs = "{{Arguments}}"
	keyUser = "{{UserName}}"
)

// execQuoter makes one double-quoted ExecStart= word of an argument:
// systemd would otherwise unescape \, expand % (specifiers) and $
// (variables), end the word at ", and end the line at a newline.
var execQuoter = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`, "\n", `\n`, "\r", `\r`)

// Service renders imdsd.service for u: the complete unit, with nothing left
// for a template engine to expand. The executable's path is written as
// kardianos/service wrote it (a space as \x20); install refuses a path with
// a control character.
func Service(u Unit) string {
	s := serviceTemplate
	if !u.IPv6 {
		s = strings.Replace(s, aliasCommand, aliasCommand4, 1)
	}
	if u.SocketActivation {
		s = strings.Replace(s, ambientCap, noCapability, 1)
		s = strings.Replace(s, afterNetwork, afterNetwork+socketDeps, 1)
	}
	var args strings.Builder
	for _, a := range u.Args {
		args.WriteString(` "` + execQuoter.Replace(a) + `"`)
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if u.User == "" && strings.Contains(line, keyUser) {
			continue
		}
		b.WriteString(line)
	}
	return strings.NewReplacer(
		keyPath, strings.ReplaceAll(u.Exe, " ", `\x20`),
		keyArgs, args.String(),
		keyUser, u.User,
	).Replace(b.String())
}

// Socket returns imdsd.socket, a complete unit.
func Socket(o Options) string {
	if o.IPv6 {
		return socketUnit
	}
	return strings.Replace(socketUnit, listenV6, "", 1)
}
