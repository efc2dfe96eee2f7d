package systemd

import (
	_ "embed"
	"net"
	"strings"
)

var (
	//go:embed imdsd.service
	serviceTemplate string
	//go:embed imdsd.socket
	socketTemplate string
)

// Options selects the variant of the units. The zero value is the default
// install: IPv4 only, the IMDS endpoint only, CAP_NET_BIND_SERVICE instead
// of socket activation.
type Options struct {
	// IPv6 also aliases and serves fd00:ec2::254, the IPv6 IMDS endpoint
	// (and fd00:ec2::23 with Containers).
	IPv6 bool
	// SocketActivation has systemd bind port 80 (imdsd.socket), and the
	// service runs without any capability.
	SocketActivation bool
	// Containers also aliases and, with SocketActivation, binds port 80 of
	// 169.254.170.23 (and fd00:ec2::23 with IPv6): the container
	// credentials endpoint's addresses that the SDKs accept over plain
	// HTTP besides loopback.
	Containers bool
}

// addrs are the addresses the units put on the loopback interface and,
// with socket activation, bind port 80 of, in order: the IMDS ones, then
// the container endpoint's.
func (o Options) addrs() []string {
	addrs := []string{imdsV4}
	if o.IPv6 {
		addrs = append(addrs, imdsV6)
	}
	if o.Containers {
		addrs = append(addrs, containerV4)
		if o.IPv6 {
			addrs = append(addrs, containerV6)
		}
	}
	return addrs
}

// The endpoints' addresses.
const (
	imdsV4      = "169.254.169.254"
	imdsV6      = "fd00:ec2::254"
	containerV4 = "169.254.170.23"
	containerV6 = "fd00:ec2::23"
)

// Unit is what one install puts in imdsd.service.
type Unit struct {
	// Exe is the absolute path of the imdsd executable.
	Exe string
	// Args are the arguments of ExecStart=, "run" first. Each is written
	// as one double-quoted word that systemd passes on unchanged: no
	// specifier (%), variable ($) or escape (\) expansion.
	Args []string
	// ReloadArgs follow "reload" in ExecReload=, written as Args are: the
	// --admin-socket and --config of Args, so that systemctl reload finds
	// the socket the service listens on.
	ReloadArgs []string
	// User is the account of User=; "" leaves the line out.
	User string
	// Groups are the service's supplementary groups (SupplementaryGroups=,
	// names or numeric IDs): the container tokens' group, which imdsd
	// gives the token files to and must be a member of. None leaves the
	// line out. The caller checks each is a plain name: the line is not
	// quoted.
	Groups []string
	Options
}

// Lines of imdsd.service that the variants edit; tests check each occurs
// exactly once.
const (
	aliasCommand = " alias add " + imdsV4 + " " + imdsV6 + "\n"
	ambientCap   = "# Port 80 without root.\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
	noCapability = "# Port 80 comes from imdsd.socket: no capability at all.\nCapabilityBoundingSet=\n"
	afterNetwork = "After=network-online.target\n"
	socketDeps   = "Requires=imdsd.socket\nAfter=imdsd.socket\n"
	dynamicUser  = "DynamicUser=yes\n"
	groupsLines  = "# container_token_group: imdsd gives the container token files to this\n" +
		"# group, which it may do only as a member.\nSupplementaryGroups="
	denyPrivileged = "SystemCallFilter=~@privileged @resources\n"
	allowChown     = "# chown(2), in @privileged, gives the container token files to the group.\n" +
		"SystemCallFilter=@chown\n"
	// listenLines are imdsd.socket's listeners, which Socket replaces.
	listenLines = "ListenStream=169.254.169.254:80\nListenStream=[fd00:ec2::254]:80\n"
)

// The placeholders of imdsd.service. A line holding {{UserName}} is left
// out when there is no user.
const (
	keyPath       = "{{Path}}"
	keyArgs       = "{{Arguments}}"
	keyReloadArgs = "{{ReloadArguments}}"
	keyUser       = "{{UserName}}"
)

// execQuoter makes one double-quoted ExecStart= word of an argument:
// systemd would otherwise unescape \, expand % (specifiers) and $
// (variables), end the word at ", and end the line at a newline.
var execQuoter = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`, "\n", `\n`, "\r", `\r`)

// execWords is args as double-quoted Exec*= words, each after a space.
func execWords(args []string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(` "` + execQuoter.Replace(a) + `"`)
	}
	return b.String()
}

// Service renders imdsd.service for u: the complete unit, with nothing left
// for a template engine to expand. The executable's path is written as
// kardianos/service wrote it (a space as \x20); install refuses a path with
// a control character.
func Service(u Unit) string {
	s := strings.Replace(serviceTemplate, aliasCommand, " alias add "+strings.Join(u.addrs(), " ")+"\n", 1)
	if u.SocketActivation {
		s = strings.Replace(s, ambientCap, noCapability, 1)
		s = strings.Replace(s, afterNetwork, afterNetwork+socketDeps, 1)
	}
	if len(u.Groups) > 0 {
		s = strings.Replace(s, dynamicUser, dynamicUser+groupsLines+strings.Join(u.Groups, " ")+"\n", 1)
		s = strings.Replace(s, denyPrivileged, denyPrivileged+allowChown, 1)
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if u.User == "" && strings.Contains(line, keyUser) {
			continue
		}
		b.WriteString(line)
	}
	// One pass: a value is never read again as a placeholder.
	return strings.NewReplacer(
		keyPath, strings.ReplaceAll(u.Exe, " ", `\x20`),
		keyArgs, execWords(u.Args),
		keyReloadArgs, execWords(u.ReloadArgs),
		keyUser, u.User,
	).Replace(b.String())
}

// Socket returns imdsd.socket, a complete unit: a listener on port 80 of
// each of o's addresses.
func Socket(o Options) string {
	var b strings.Builder
	for _, a := range o.addrs() {
		b.WriteString("ListenStream=" + net.JoinHostPort(a, "80") + "\n")
	}
	return strings.Replace(socketTemplate, listenLines, b.String(), 1)
}
