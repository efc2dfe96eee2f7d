package systemd_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/imdsd/imdsd/systemd"
)

// The keys kardianos/service v1.3.0 passes to each template (the data maps
// of (*systemd).Install and (*darwinLaunchdService).Install) and the
// pipeline functions it offers. A key outside these fails at install time
// with "unknown template key".
var (
	systemdKeys = []string{"Description", "Path", "Name", "Dependencies", "Arguments", "ChRoot",
		"WorkingDirectory", "UserName", "ReloadSignal", "PIDFile", "LogDirectory",
		"OutputFileSupport", "LimitNOFILE", "Restart", "SuccessExitStatus", "EnvVars", "."}
	systemdFuncs = []string{"cmd", "cmdEscape"}
	launchdKeys  = []string{"Name", "Path", "Arguments", "ChRoot", "UserName", "WorkingDirectory",
		"KeepAlive", "RunAtLoad", "SessionCreate", "StandardOutPath", "StandardErrorPath", "EnvVars", "."}
	launchdFuncs = []string{"html"}
)

var action = regexp.MustCompile(`\{\{-?\s*(.*?)\s*-?\}\}`)

// checkKeys fails on any action kardianos could not render.
func checkKeys(t *testing.T, name, tmpl string, keys, funcs []string) {
	t.Helper()
	for _, m := range action.FindAllStringSubmatch(tmpl, -1) {
		parts := strings.Split(m[1], "|")
		words := strings.Fields(parts[0])
		switch {
		case len(words) == 1 && (words[0] == "end" || words[0] == "else"):
			continue
		case len(words) == 2 && (words[0] == "if" || words[0] == "range"):
			words = words[1:]
		case len(words) != 1:
			t.Errorf("%s: action %q: want one key", name, m[0])
			continue
		}
		if !slices.Contains(keys, words[0]) {
			t.Errorf("%s: action %q: key %q is not one kardianos provides", name, m[0], words[0])
		}
		for _, f := range parts[1:] {
			if !slices.Contains(funcs, strings.TrimSpace(f)) {
				t.Errorf("%s: action %q: function %q is not one kardianos provides", name, m[0], f)
			}
		}
	}
}

func variants() map[string]systemd.Options {
	return map[string]systemd.Options{
		"default": {},
		"ipv6":    {IPv6: true},
		"socket":  {SocketActivation: true},
		"both":    {IPv6: true, SocketActivation: true},
	}
}

func TestTemplatesUseKardianosKeys(t *testing.T) {
	for name, o := range variants() {
		checkKeys(t, name+" imdsd.service", systemd.Service(o), systemdKeys, systemdFuncs)
		checkKeys(t, name+" imdsd.plist", systemd.Launchd(o), launchdKeys, launchdFuncs)
		if s := systemd.Socket(o); strings.Contains(s, "{{") {
			t.Errorf("%s imdsd.socket: is a plain unit, has a template action", name)
		}
	}
}

// hasLine reports whether line is a whole line of text, once the {{end}}
// closing the previous line's conditional is dropped.
func hasLine(text, line string) bool {
	return slices.Contains(strings.Split(strings.ReplaceAll(text, "{{end}}", ""), "\n"), line)
}

func TestServiceVariants(t *testing.T) {
	always := []string{
		"Type=notify",
		"DynamicUser=yes",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=read-only",
		"PrivateTmp=yes",
		"PrivateDevices=yes",
		"ProtectKernelTunables=yes",
		"ProtectKernelModules=yes",
		"ProtectKernelLogs=yes",
		"ProtectControlGroups=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"SystemCallFilter=@system-service",
		"SystemCallFilter=~@privileged @resources",
		"SystemCallErrorNumber=EPERM",
		"SystemCallArchitectures=native",
		"LockPersonality=yes",
		"MemoryDenyWriteExecute=yes",
		"RestrictNamespaces=yes",
		"RestrictRealtime=yes",
		"RestrictSUIDSGID=yes",
		"RuntimeDirectory=imdsd",
		"RuntimeDirectoryMode=0750",
		"RestartSec=2",
		"Restart={{Restart}}",
	}
	for name, o := range variants() {
		t.Run(name, func(t *testing.T) {
			s := systemd.Service(o)
			for _, l := range always {
				if !hasLine(s, l) {
					t.Errorf("Service(%+v) lacks line %q", o, l)
				}
			}
			pre := "ExecStartPre=+{{Path | cmdEscape}} alias add 169.254.169.254"
			if o.IPv6 {
				pre += " fd00:ec2::254"
			}
			if !hasLine(s, pre) {
				t.Errorf("Service(%+v) lacks line %q", o, pre)
			}
			capLines := []string{"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"}
			for _, l := range capLines {
				if hasLine(s, l) == o.SocketActivation {
					t.Errorf("Service(%+v): line %q present = %v, want %v", o, l, !o.SocketActivation, !o.SocketActivation)
				}
			}
			if got := hasLine(s, "CapabilityBoundingSet="); got != o.SocketActivation {
				t.Errorf("Service(%+v): empty CapabilityBoundingSet= present = %v, want %v", o, got, o.SocketActivation)
			}
			if strings.Contains(s, "AmbientCapabilities=") && o.SocketActivation {
				t.Errorf("Service(%+v) grants an ambient capability", o)
			}
		})
	}
}

func TestSocket(t *testing.T) {
	for name, o := range variants() {
		t.Run(name, func(t *testing.T) {
			s := systemd.Socket(o)
			for _, l := range []string{"ListenStream=169.254.169.254:80", "FreeBind=yes", "Service=imdsd.service", "WantedBy=sockets.target"} {
				if !hasLine(s, l) {
					t.Errorf("Socket(%+v) lacks line %q", o, l)
				}
			}
			if got := hasLine(s, "ListenStream=[fd00:ec2::254]:80"); got != o.IPv6 {
				t.Errorf("Socket(%+v): IPv6 listener present = %v, want %v", o, got, o.IPv6)
			}
		})
	}
}

func TestLaunchd(t *testing.T) {
	for name, o := range variants() {
		t.Run(name, func(t *testing.T) {
			s := systemd.Launchd(o)
			want := `"$0" alias add 169.254.169.254 &amp;&amp; exec "$0" "$@"`
			if o.IPv6 {
				want = `"$0" alias add 169.254.169.254 fd00:ec2::254 &amp;&amp; exec "$0" "$@"`
			}
			if !strings.Contains(s, "<string>"+want+"</string>") {
				t.Errorf("Launchd(%+v) lacks the alias wrapper %q", o, want)
			}
		})
	}
}
