package systemd_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/imdsd/imdsd/systemd"
)

func variants() map[string]systemd.Options {
	return map[string]systemd.Options{
		"default":    {},
		"ipv6":       {IPv6: true},
		"socket":     {SocketActivation: true},
		"both":       {IPv6: true, SocketActivation: true},
		"containers": {Containers: true},
		"all":        {IPv6: true, SocketActivation: true, Containers: true},
	}
}

func hasLine(text, line string) bool {
	return slices.Contains(strings.Split(text, "\n"), line)
}

// TestServiceComplete: every placeholder is filled in, so that
// kardianos/service's template engine has nothing to expand.
func TestServiceComplete(t *testing.T) {
	for name, o := range variants() {
		for _, user := range []string{"", "imdsd"} {
			s := systemd.Service(systemd.Unit{Exe: "/usr/bin/imdsd", Args: []string{"run"}, User: user, Options: o})
			if strings.Contains(s, "{{") || strings.Contains(s, "}}") {
				t.Errorf("%s, user %q: a placeholder is left:\n%s", name, user, s)
			}
			if got := hasLine(s, "User=imdsd"); got != (user != "") {
				t.Errorf("%s, user %q: User= line present = %v", name, user, got)
			}
		}
	}
}

func TestServiceVariants(t *testing.T) {
	always := []string{
		"Type=notify",
		"DynamicUser=yes",
		"NoNewPrivileges=yes",
		"LimitCORE=0",
		"EnvironmentFile=-/etc/imdsd/environment",
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
		"Restart=on-failure",
		"Wants=network-online.target",
		"After=network-online.target",
		"ExecReload=/usr/bin/imdsd reload",
	}
	for name, o := range variants() {
		t.Run(name, func(t *testing.T) {
			s := systemd.Service(systemd.Unit{Exe: "/usr/bin/imdsd", Args: []string{"run"}, User: "imdsd", Options: o})
			for _, l := range always {
				if !hasLine(s, l) {
					t.Errorf("Service(%+v) lacks line %q", o, l)
				}
			}
			pre := "ExecStartPre=+/usr/bin/imdsd alias add 169.254.169.254"
			if o.IPv6 {
				pre += " fd00:ec2::254"
			}
			if o.Containers {
				pre += " 169.254.170.23"
			}
			if o.Containers && o.IPv6 {
				pre += " fd00:ec2::23"
			}
			if !hasLine(s, pre) {
				t.Errorf("Service(%+v) lacks line %q", o, pre)
			}
			for _, l := range []string{"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"} {
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
			for _, l := range []string{"Requires=imdsd.socket", "After=imdsd.socket"} {
				if hasLine(s, l) != o.SocketActivation {
					t.Errorf("Service(%+v): line %q present = %v, want %v", o, l, !o.SocketActivation, o.SocketActivation)
				}
			}
			if strings.Contains(s, "SupplementaryGroups=") || hasLine(s, "SystemCallFilter=@chown") {
				t.Errorf("Service(%+v) without groups has SupplementaryGroups= or allows chown", o)
			}
		})
	}
}

// TestServiceGroupsAndReload: the container tokens' group becomes the
// service's supplementary group, and ExecReload= gets the run flags'
// --admin-socket and --config, quoted as ExecStart='s words are.
func TestServiceGroupsAndReload(t *testing.T) {
	s := systemd.Service(systemd.Unit{Exe: "/usr/bin/imdsd", Args: []string{"run"}, User: "imdsd",
		Groups: []string{"imdsd-tokens", "1234"}, ReloadArgs: []string{"--admin-socket", "/run/x %i/admin.sock", "--config", "/etc/imdsd/a.yaml"}})
	for _, l := range []string{
		"SupplementaryGroups=imdsd-tokens 1234",
		"SystemCallFilter=@chown",
		`ExecReload=/usr/bin/imdsd reload "--admin-socket" "/run/x %%i/admin.sock" "--config" "/etc/imdsd/a.yaml"`,
	} {
		if !hasLine(s, l) {
			t.Errorf("Service lacks line %q:\n%s", l, s)
		}
	}
	if i, j := strings.Index(s, "\nDynamicUser=yes\n"), strings.Index(s, "\nSupplementaryGroups="); i < 0 || j < i {
		t.Errorf("SupplementaryGroups= is not after DynamicUser=yes:\n%s", s)
	}
	// Only after the deny list: systemd applies SystemCallFilter= lines in
	// order, so @chown comes back after ~@privileged took it away.
	if i, j := strings.Index(s, "\nSystemCallFilter=~@privileged"), strings.Index(s, "\nSystemCallFilter=@chown\n"); i < 0 || j < i {
		t.Errorf("SystemCallFilter=@chown is not after ~@privileged:\n%s", s)
	}
}

// TestServiceExecStart: each argument is one double-quoted word that
// systemd passes on unchanged, and the path is written as kardianos wrote
// it. systemd-analyze verify checks the result (install's
// TestSystemdAnalyzeVerify).
func TestServiceExecStart(t *testing.T) {
	u := systemd.Unit{Exe: "/opt/my imdsd/imdsd", Args: []string{"run", "--tag", `a b"c`, `%h $HOME \n` + "\nx"}}
	s := systemd.Service(u)
	want := `ExecStart=/opt/my\x20imdsd/imdsd "run" "--tag" "a b\"c" "%%h $$HOME \\n\nx"`
	if !hasLine(s, want) {
		t.Errorf("Service lacks line %q:\n%s", want, s)
	}
	if !hasLine(s, `ConditionFileIsExecutable=/opt/my\x20imdsd/imdsd`) {
		t.Errorf("Service lacks the escaped path in ConditionFileIsExecutable=:\n%s", s)
	}
	// A value is never read again as a placeholder.
	s = systemd.Service(systemd.Unit{Exe: "/x", Args: []string{"{{UserName}}"}, User: "u"})
	if !hasLine(s, `ExecStart=/x "{{UserName}}"`) {
		t.Errorf("placeholder text in an argument was expanded:\n%s", s)
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
			if got := hasLine(s, "ListenStream=169.254.170.23:80"); got != o.Containers {
				t.Errorf("Socket(%+v): container listener present = %v, want %v", o, got, o.Containers)
			}
			if got, want := hasLine(s, "ListenStream=[fd00:ec2::23]:80"), o.Containers && o.IPv6; got != want {
				t.Errorf("Socket(%+v): IPv6 container listener present = %v, want %v", o, got, want)
			}
			if strings.Contains(s, "{{") {
				t.Errorf("Socket(%+v) has a placeholder", o)
			}
		})
	}
}
