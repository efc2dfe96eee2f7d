package launchd

import (
	_ "embed"
	"strings"
)

//go:embed imdsd.plist
var plistTemplate string

// Path is where the LaunchDaemon's plist goes (kardianos/service v1.3.0's
// getServiceFilePath for a system service named imdsd).
const Path = "/Library/LaunchDaemons/imdsd.plist"

// Daemon is what one install puts in the plist.
type Daemon struct {
	// Exe is the absolute path of the imdsd executable.
	Exe string
	// Args are its arguments, "run" first, one <string> each.
	Args []string
	// User is the account of UserName; "" leaves the key out (root).
	User string
	// IPv6 also aliases fd00:ec2::254 (and fd00:ec2::23 with Containers)
	// before the daemon starts.
	IPv6 bool
	// Containers also aliases 169.254.170.23, the container credentials
	// endpoint's address.
	Containers bool
}

// aliases are the addresses the plist puts on lo0, in the order of
// imdsd.service's ExecStartPre=: the IMDS ones, then the container
// endpoint's.
func (d Daemon) aliases() string {
	addrs := "169.254.169.254"
	if d.IPv6 {
		addrs += " fd00:ec2::254"
	}
	if d.Containers {
		addrs += " 169.254.170.23"
		if d.IPv6 {
			addrs += " fd00:ec2::23"
		}
	}
	return addrs
}

// The parts of imdsd.plist that Plist fills in or leaves out; tests check
// each occurs exactly once.
const (
	argLine      = "\t\t<string>{{Arguments}}</string>\n"
	userLines    = "\t<key>UserName</key>\n\t<string>{{UserName}}</string>\n"
	aliasCommand = " alias add 169.254.169.254 fd00:ec2::254 "
)

// xmlEscaper escapes a value for XML text as kardianos/service's html
// template function did.
var xmlEscaper = strings.NewReplacer(`&`, "&amp;", `'`, "&#39;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;")

// Plist renders the LaunchDaemon plist for d: the complete file, with
// nothing left for a template engine to expand.
func Plist(d Daemon) string {
	s := strings.Replace(plistTemplate, aliasCommand, " alias add "+d.aliases()+" ", 1)
	var args strings.Builder
	for _, a := range d.Args {
		args.WriteString("\t\t<string>" + xmlEscaper.Replace(a) + "</string>\n")
	}
	users := userLines
	if d.User == "" {
		users = ""
	}
	// One pass: a value is never read again as a placeholder.
	return strings.NewReplacer(
		argLine, args.String(),
		userLines, strings.Replace(users, "{{UserName}}", xmlEscaper.Replace(d.User), 1),
		"{{Path}}", xmlEscaper.Replace(d.Exe),
	).Replace(s)
}
