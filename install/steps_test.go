package install_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/install"
)

// fakeService is kardianos's service.Service for a host under root: Install
// writes the unit it was configured with, as kardianos does (it refuses an
// existing one), Uninstall removes it; every call is recorded.
type fakeService struct {
	root      string
	cfg       *service.Config
	calls     *[]string
	fail      map[string]error
	installed bool // Status: the Windows service exists
}

func (f *fakeService) call(name string) error {
	*f.calls = append(*f.calls, name)
	return f.fail[name]
}

func (f *fakeService) unitPath() string {
	if f.cfg.Option["LaunchdConfig"] != nil {
		return f.root + install.LaunchdPlistPath
	}
	return f.root + install.SystemdUnitPath
}

func (f *fakeService) Install() error {
	if err := f.call("Install"); err != nil {
		return err
	}
	text, _ := f.cfg.Option["SystemdScript"].(string)
	if text == "" {
		text, _ = f.cfg.Option["LaunchdConfig"].(string)
	}
	if _, err := os.Stat(f.unitPath()); err == nil {
		return errors.New("Init already exists")
	}
	return os.WriteFile(f.unitPath(), []byte(text), 0o644)
}

func (f *fakeService) Uninstall() error {
	if err := f.call("Uninstall"); err != nil {
		return err
	}
	return os.Remove(f.unitPath())
}

func (f *fakeService) Run() error     { return f.call("Run") }
func (f *fakeService) Start() error   { return f.call("Start") }
func (f *fakeService) Stop() error    { return f.call("Stop") }
func (f *fakeService) Restart() error { return f.call("Restart") }
func (f *fakeService) Status() (service.Status, error) {
	if !f.installed {
		return service.StatusUnknown, service.ErrNotInstalled
	}
	return service.StatusStopped, nil
}
func (f *fakeService) Logger(chan<- error) (service.Logger, error)       { return nil, nil }
func (f *fakeService) SystemLogger(chan<- error) (service.Logger, error) { return nil, nil }
func (f *fakeService) String() string                                    { return "imdsd" }
func (f *fakeService) Platform() string                                  { return "fake" }

// fakeHost is a Linux host with systemd under a temporary root; its Runner
// records argv (and answers "", so no alias is listed).
type fakeHost struct {
	install.Host
	root  string
	calls []string // service calls
	argv  []string // commands run
	fail  map[string]error
	win   bool // the Windows service exists
}

func newFakeHost(t *testing.T, goos string) *fakeHost {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the alias commands asserted are Linux's")
	}
	h := &fakeHost{root: t.TempDir()}
	for _, d := range []string{"etc/systemd/system", "Library/LaunchDaemons"} {
		if err := os.MkdirAll(filepath.Join(h.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.Host = install.Host{
		GOOS:     goos,
		Platform: "linux-systemd",
		Root:     h.root,
		Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
			h.argv = append(h.argv, strings.Join(append([]string{name}, args...), " "))
			return nil, nil
		},
		NewService: func(_ service.Interface, c *service.Config) (service.Service, error) {
			return &fakeService{root: h.root, cfg: c, calls: &h.calls, fail: h.fail, installed: h.win}, nil
		},
	}
	return h
}

func (h *fakeHost) plan(t *testing.T, s install.Spec) *install.Plan {
	t.Helper()
	if s.Exe == "" {
		s.Exe = "/usr/local/bin/imdsd"
	}
	p, err := h.Plan(s)
	if err != nil {
		t.Fatalf("Plan(%+v) = %v", s, err)
	}
	return p
}

func (h *fakeHost) read(t *testing.T, p string) (string, os.FileMode) {
	t.Helper()
	fi, err := os.Stat(h.root + p)
	if err != nil {
		return "", 0
	}
	b, err := os.ReadFile(h.root + p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), fi.Mode().Perm()
}

// firstLines is each step's dry-run text, by its first line.
func firstLines(p *install.Plan) []string {
	var out []string
	for _, s := range p.Steps() {
		first, _, _ := strings.Cut(s.Do.Show, "\n")
		out = append(out, first)
	}
	return out
}

func TestPlanSteps(t *testing.T) {
	env := []install.EnvVar{{Name: "IMDSD_MFA_COMMAND", Value: "oathtool --totp SECRET"}}
	tests := []struct {
		goos string
		spec install.Spec
		want []string
	}{
		{"linux", install.Spec{}, []string{"", "# ---- write /etc/systemd/system/imdsd.service (mode 0644) ----"}},
		{"linux", install.Spec{Env: env, ServiceOptions: install.ServiceOptions{SocketActivation: true}}, []string{
			"",
			"# ---- add to /etc/imdsd/environment (mode 0600; its other lines are kept) ----",
			"# ---- write /etc/systemd/system/imdsd.socket (mode 0644) ----",
			"# ---- write /etc/systemd/system/imdsd.service (mode 0644) ----",
			"systemctl enable imdsd.socket",
		}},
		{"darwin", install.Spec{}, []string{"", "# ---- write /Library/LaunchDaemons/imdsd.plist (mode 0644) ----"}},
		{"windows", install.Spec{Exe: `C:\Program Files\imdsd.exe`, ServiceOptions: install.ServiceOptions{IPv6: true}}, []string{
			`"C:\Program Files\imdsd.exe" alias add 169.254.169.254 fd00:ec2::254`,
			"# ---- register with the service control manager (no file) ----",
		}},
		{"windows", install.Spec{Exe: `C:\imdsd.exe`, ServiceOptions: install.ServiceOptions{Containers: true}}, []string{
			`C:\imdsd.exe alias add 169.254.169.254 169.254.170.23`,
			"# ---- register with the service control manager (no file) ----",
		}},
		{"linux", install.Spec{ServiceOptions: install.ServiceOptions{Containers: true, IPv6: true, SocketActivation: true}}, []string{
			"",
			"# ---- write /etc/systemd/system/imdsd.socket (mode 0644) ----",
			"# ---- write /etc/systemd/system/imdsd.service (mode 0644) ----",
			"systemctl enable imdsd.socket",
		}},
	}
	for _, tc := range tests {
		h := newFakeHost(t, tc.goos)
		p := h.plan(t, tc.spec)
		if diff := cmp.Diff(tc.want, firstLines(p)); diff != "" {
			t.Errorf("%s %+v: steps (-want +got):\n%s", tc.goos, tc.spec, diff)
		}
		for _, s := range p.Steps() {
			if strings.Contains(s.Do.Show, "SECRET") {
				t.Errorf("%s: the dry-run text shows a secret:\n%s", tc.goos, s.Do.Show)
			}
		}
	}
	// The unit's step: the file kardianos writes, then its commands.
	h := newFakeHost(t, "linux")
	unit := h.plan(t, install.Spec{}).Steps()[1].Do.Show
	if !strings.HasSuffix(unit, "# ---- end of /etc/systemd/system/imdsd.service ----\nsystemctl enable imdsd.service\nsystemctl daemon-reload\n") {
		t.Errorf("unit step ends\n%s", unit[max(0, len(unit)-200):])
	}
}

func TestPlanRefuses(t *testing.T) {
	h := newFakeHost(t, "linux")
	for _, tc := range []struct {
		goos string
		spec install.Spec
		want string
	}{
		{"plan9", install.Spec{}, "plan the service for plan9: only linux (systemd), darwin (launchd) and windows are supported"},
		{"linux", install.Spec{Args: []string{"--policy-file", "/p/{{Name}}.json"}}, `plan the service: "{{" in the executable's path or an argument`},
		{"darwin", install.Spec{Exe: "/x/{{Path}}/imdsd"}, `plan the service: "{{" in the executable's path or an argument`},
		{"linux", install.Spec{ServiceOptions: install.ServiceOptions{UserName: "a\nExecStartPre=/bin/evil"}}, "plan the service: a control character"},
		{"darwin", install.Spec{Env: []install.EnvVar{{Name: "IMDSD_MFA_COMMAND", Value: "x"}}}, "IMDSD_MFA_COMMAND: every user can read the service's definition on darwin, which has no environment file; set it in the config file"},
		{"linux", install.Spec{Env: []install.EnvVar{{Name: "IMDSD_MFA_COMMAND", Value: "a\nb"}}}, "IMDSD_MFA_COMMAND: must be one line of UTF-8 text to go in /etc/imdsd/environment; set it in the config file instead"},
		{"linux", install.Spec{Env: []install.EnvVar{{Name: "1X", Value: "a"}}}, `environment variable "1X": not a valid name`},
		{"linux", install.Spec{ServiceOptions: install.ServiceOptions{Groups: []string{"a b"}}}, `plan the service: group "a b": the service's groups are names or IDs`},
		{"linux", install.Spec{ServiceOptions: install.ServiceOptions{Groups: []string{"%i"}}}, `plan the service: group "%i"`},
		{"linux", install.Spec{ServiceOptions: install.ServiceOptions{Groups: []string{"-x"}}}, `plan the service: group "-x"`},
	} {
		h.GOOS = tc.goos
		if tc.spec.Exe == "" {
			tc.spec.Exe = "/usr/local/bin/imdsd"
		}
		if _, err := h.Plan(tc.spec); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Plan(%s, %+v) = %v, want an error starting %q", tc.goos, tc.spec, err, tc.want)
		}
	}
	for _, tc := range []struct{ platform, exe, want string }{
		{"linux-sysv", "/usr/local/bin/imdsd", "no systemd here (service manager: linux-sysv)"},
		{"linux-systemd", "/tmp/imdsd", "/tmp/imdsd: the service cannot run a program under /tmp or /var/tmp (PrivateTmp=yes)"},
		{"linux-systemd", "/root/go/bin/imdsd", "/root/go/bin/imdsd: the service's user cannot reach it (/root is not open to other users)"},
	} {
		h := newFakeHost(t, "linux")
		h.Platform = tc.platform
		if strings.HasPrefix(tc.exe, "/root/") {
			// go install as root: ~/go/bin under a home of mode 0700.
			if err := os.MkdirAll(h.Root+"/root/go/bin", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(h.Root+"/root", 0o700); err != nil {
				t.Fatal(err)
			}
		}
		p := h.plan(t, install.Spec{Exe: tc.exe})
		_, err := p.Install(context.Background())
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(p.DryRun(), "# Note: imdsd install would refuse here: "+tc.want) {
			t.Errorf("%s %s: Install = %v, want %q, also in the dry run:\n%s", tc.platform, tc.exe, err, tc.want, p.DryRun())
		}
		if len(h.calls)+len(h.argv) > 0 {
			t.Errorf("a refused install did %q, ran %q", h.calls, h.argv)
		}
	}
}

// TestInstallForwardsUninstallBackwards: the same install twice changes
// nothing, another one replaces what differs, uninstall undoes everything
// backwards (socket, service, environment, aliases), twice over.
func TestInstallForwardsUninstallBackwards(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t, "linux")
	const userLines = "AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=\"s3cr3t\"\n"
	if err := os.MkdirAll(h.root+"/etc/imdsd", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.root+install.EnvironmentPath, []byte(userLines), 0o644); err != nil {
		t.Fatal(err)
	}
	mfa := []install.EnvVar{{Name: "IMDSD_MFA_COMMAND", Value: `oathtool --totp -b "$(cat key)" %s`}}
	socket := install.ServiceOptions{SocketActivation: true}
	step := func(name string, s install.Spec, want install.Outcome, wantCalls, wantArgv []string) {
		t.Helper()
		h.calls, h.argv = nil, nil
		got, err := h.plan(t, s).Install(ctx)
		if err != nil || got != want {
			t.Fatalf("%s: Install = %v, %v; want %v", name, got, err, want)
		}
		if diff := cmp.Diff(wantCalls, h.calls); diff != "" {
			t.Errorf("%s: service calls (-want +got):\n%s", name, diff)
		}
		if diff := cmp.Diff(wantArgv, h.argv); diff != "" {
			t.Errorf("%s: commands (-want +got):\n%s", name, diff)
		}
	}
	step("first", install.Spec{Args: []string{"--source", "dev"}}, install.Installed, []string{"Install"}, nil)
	step("same again", install.Spec{Args: []string{"--source", "dev"}}, install.Unchanged, nil, nil)
	step("other flags", install.Spec{Args: []string{"--source", "static"}}, install.Replaced, []string{"Uninstall", "Install"}, nil)
	step("socket activation", install.Spec{Args: []string{"--source", "static"}, ServiceOptions: socket}, install.Replaced,
		[]string{"Uninstall", "Install"}, []string{"systemctl enable imdsd.socket"})
	if _, mode := h.read(t, install.SystemdSocketPath); mode != 0o644 {
		t.Errorf("imdsd.socket mode %v, want 0644", mode)
	}
	step("an environment variable", install.Spec{Args: []string{"--source", "static"}, Env: mfa, ServiceOptions: socket}, install.Replaced, nil, nil)
	env, mode := h.read(t, install.EnvironmentPath)
	if !strings.HasPrefix(env, userLines) || mode != 0o600 {
		t.Errorf("environment file, mode %v:\n%s\nwant mode 0600, starting with the user's lines", mode, env)
	}
	if got := install.ParseEnvFileForTest(env)["IMDSD_MFA_COMMAND"]; got != mfa[0].Value {
		t.Errorf("IMDSD_MFA_COMMAND as systemd reads it = %q, want %q", got, mfa[0].Value)
	}
	want := map[string]string{"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
		"STATE_DIRECTORY": "/var/lib/imdsd", "RUNTIME_DIRECTORY": "/run/imdsd"}
	if got, err := h.ServiceEnvironment(); !cmp.Equal(want, got) || err != nil {
		t.Errorf("ServiceEnvironment = %q, %v; want the user's lines and systemd's directories only", got, err)
	}
	unit, _ := h.read(t, install.SystemdUnitPath)
	if strings.Contains(unit, "oathtool") {
		t.Errorf("the unit holds the MFA command:\n%s", unit)
	}
	step("same again, with the variable", install.Spec{Args: []string{"--source", "static"}, Env: mfa, ServiceOptions: socket}, install.Unchanged, nil, nil)
	step("no socket, no variable", install.Spec{Args: []string{"--source", "static"}}, install.Replaced,
		[]string{"Uninstall", "Install"}, []string{"systemctl disable --now imdsd.socket", "systemctl daemon-reload"})
	if env, _ := h.read(t, install.EnvironmentPath); env != userLines {
		t.Errorf("environment file after an install without variables:\n%s\nwant the user's lines only", env)
	}
	if _, mode := h.read(t, install.SystemdSocketPath); mode != 0 {
		t.Error("imdsd.socket stayed after an install without socket activation")
	}

	step("socket and variable again", install.Spec{Args: []string{"--source", "static"}, Env: mfa, ServiceOptions: socket}, install.Replaced,
		[]string{"Uninstall", "Install"}, []string{"systemctl enable imdsd.socket"})
	p := h.plan(t, install.Spec{})
	undo, installed, err := p.Removal()
	var shown []string
	for _, a := range undo {
		shown = append(shown, a.Show)
	}
	wantShown := []string{
		"systemctl disable --now imdsd.socket",
		"systemctl stop imdsd.service\nsystemctl disable imdsd.service\nrm /etc/systemd/system/imdsd.service\nsystemctl daemon-reload",
		"rm /etc/systemd/system/imdsd.socket\nsystemctl daemon-reload",
		"remove imdsd install's lines from /etc/imdsd/environment (its other lines are kept)",
		"imdsd alias remove 169.254.169.254 fd00:ec2::254 169.254.170.23 fd00:ec2::23",
	}
	if diff := cmp.Diff(wantShown, shown); diff != "" || !installed || err != nil {
		t.Errorf("Removal = installed %v, %v; steps (-want +got):\n%s", installed, err, diff)
	}
	h.calls, h.argv = nil, nil
	// Each of the four aliases is listed, found absent, and left so.
	aliasArgv := []string{"ip -o -4 addr show dev lo", "ip -o -6 addr show dev lo", "ip -o -4 addr show dev lo", "ip -o -6 addr show dev lo"}
	if installed, err := p.Uninstall(ctx); !installed || err != nil {
		t.Fatalf("Uninstall = %v, %v", installed, err)
	}
	if diff := cmp.Diff([]string{"Stop", "Uninstall"}, h.calls); diff != "" {
		t.Errorf("uninstall: service calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append([]string{"systemctl disable --now imdsd.socket", "systemctl daemon-reload"}, aliasArgv...), h.argv); diff != "" {
		t.Errorf("uninstall: commands (-want +got):\n%s", diff)
	}
	for _, f := range []string{install.SystemdUnitPath, install.SystemdSocketPath} {
		if _, mode := h.read(t, f); mode != 0 {
			t.Errorf("uninstall left %s", f)
		}
	}
	if env, _ := h.read(t, install.EnvironmentPath); env != userLines {
		t.Errorf("environment file after uninstall:\n%s\nwant the user's lines only", env)
	}
	h.calls, h.argv = nil, nil
	if installed, err := p.Uninstall(ctx); installed || err != nil || len(h.calls) > 0 || !cmp.Equal(aliasArgv, h.argv) {
		t.Errorf("second Uninstall = %v, %v; calls %q, commands %q; want only the alias listing", installed, err, h.calls, h.argv)
	}
}

// TestInstallUndoesOnFailure: when the service manager fails, the files
// this install wrote before it are removed again.
func TestInstallUndoesOnFailure(t *testing.T) {
	h := newFakeHost(t, "linux")
	h.fail = map[string]error{"Install": errors.New("boom")}
	p := h.plan(t, install.Spec{Env: []install.EnvVar{{Name: "IMDSD_MFA_COMMAND", Value: "x"}}, ServiceOptions: install.ServiceOptions{SocketActivation: true}})
	_, err := p.Install(context.Background())
	if err == nil || err.Error() != "install the service (linux-systemd): boom" {
		t.Errorf("Install = %v", err)
	}
	for _, f := range []string{install.SystemdSocketPath, install.EnvironmentPath} {
		if _, mode := h.read(t, f); mode != 0 {
			t.Errorf("a failed install left %s", f)
		}
	}
	if want := []string{"systemctl daemon-reload"}; !cmp.Equal(want, h.argv) {
		t.Errorf("commands %q, want %q", h.argv, want)
	}
}

func TestControl(t *testing.T) {
	h := newFakeHost(t, "linux")
	p := h.plan(t, install.Spec{})
	if err := p.Control("start"); !errors.Is(err, install.ErrNotInstalled) {
		t.Errorf("Control(start) before install = %v, want ErrNotInstalled", err)
	}
	if _, err := p.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.calls = nil
	for _, a := range []string{"start", "stop", "restart"} {
		if err := p.Control(a); err != nil {
			t.Errorf("Control(%s) = %v", a, err)
		}
	}
	if want := []string{"Start", "Stop", "Restart"}; !cmp.Equal(want, h.calls) {
		t.Errorf("service calls %q, want %q", h.calls, want)
	}
}

// TestWindows: the aliases are added at install (Windows keeps them); an
// installed service cannot be compared, so it is kept as it is.
func TestWindows(t *testing.T) {
	t.Run("containers", func(t *testing.T) {
		h := newFakeHost(t, "windows")
		if _, err := h.plan(t, install.Spec{Exe: `C:\imdsd.exe`, ServiceOptions: install.ServiceOptions{Containers: true}}).Install(context.Background()); err != nil {
			t.Fatal(err)
		}
		// AddAlias runs this OS's commands (netsh on Windows: TestWindowsAlias).
		want := []string{"ip -o -4 addr show dev lo", "ip addr add 169.254.169.254/32 dev lo", "ip -o -4 addr show dev lo", "ip addr add 169.254.170.23/32 dev lo"}
		if !cmp.Equal(want, h.argv) {
			t.Errorf("commands %q, want %q", h.argv, want)
		}
	})
	for _, installed := range []bool{false, true} {
		h := newFakeHost(t, "windows")
		h.win = installed
		got, err := h.plan(t, install.Spec{Exe: `C:\imdsd.exe`}).Install(context.Background())
		want, wantCalls := install.Installed, []string{"Install"}
		if installed {
			want, wantCalls = install.Kept, nil
		}
		if err != nil || got != want || !cmp.Equal(wantCalls, h.calls) {
			t.Errorf("installed %v: Install = %v, %v, calls %q; want %v, %q", installed, got, err, h.calls, want, wantCalls)
		}
		// AddAlias runs this OS's commands: the listing, then the add.
		if want := []string{"ip -o -4 addr show dev lo", "ip addr add 169.254.169.254/32 dev lo"}; !cmp.Equal(want, h.argv) {
			t.Errorf("installed %v: commands %q, want %q", installed, h.argv, want)
		}
	}
}
