package daemon

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/install"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite daemon/testdata/*.golden from the current output")

const testExe = "/usr/local/bin/imdsd"

// fakeService is a kardianos service.Service that records the calls made
// to it; Install writes the unit it was configured with under root, as
// kardianos writes the real one, and Uninstall removes it.
type fakeService struct {
	root  string
	unit  string // SystemdScript of the last configuration
	calls []string
	fail  map[string]error
}

func (f *fakeService) call(name string) error {
	f.calls = append(f.calls, name)
	return f.fail[name]
}
func (f *fakeService) Run() error   { return f.call("Run") }
func (f *fakeService) Start() error { return f.call("Start") }
func (f *fakeService) Stop() error  { return f.call("Stop") }
func (f *fakeService) Restart() error {
	return f.call("Restart")
}
func (f *fakeService) Install() error {
	if err := f.call("Install"); err != nil {
		return err
	}
	p := f.root + install.SystemdUnitPath
	if _, err := os.Stat(p); err == nil {
		return errors.New("Init already exists: " + install.SystemdUnitPath)
	}
	return os.WriteFile(p, []byte(f.unit), 0o644)
}
func (f *fakeService) Uninstall() error {
	if err := f.call("Uninstall"); err != nil {
		return err
	}
	return os.Remove(f.root + install.SystemdUnitPath)
}
func (f *fakeService) Logger(chan<- error) (service.Logger, error)       { return nil, nil }
func (f *fakeService) SystemLogger(chan<- error) (service.Logger, error) { return nil, nil }
func (f *fakeService) String() string                                    { return "imdsd" }
func (f *fakeService) Platform() string                                  { return "linux-systemd" }
func (f *fakeService) Status() (service.Status, error) {
	f.calls = append(f.calls, "Status")
	return service.StatusUnknown, service.ErrNotInstalled
}

// recorder is a fake install.Runner: it records argv and answers "" (so
// a loopback listing shows no alias).
type recorder struct {
	mu    sync.Mutex
	calls []string
	reply func(argv string) ([]byte, error)
}

func (r *recorder) run(_ context.Context, name string, args ...string) ([]byte, error) {
	argv := strings.Join(append([]string{name}, args...), " ")
	r.mu.Lock()
	r.calls = append(r.calls, argv)
	r.mu.Unlock()
	if r.reply != nil {
		return r.reply(argv)
	}
	return nil, nil
}

// testEnv is a Linux host with systemd under a temporary Root, as uid
// euid, whose environment file holds base credentials (the STS sources
// need them to validate). The service the commands build is svc.
type testEnv struct {
	install.Host
	svc *fakeService
	rec *recorder
}

const baseCredentials = "AWS_ACCESS_KEY_ID=AKIAEXAMPLEBASE00001\nAWS_SECRET_ACCESS_KEY=base/secret\n"

func newTestEnv(t *testing.T, euid int) *testEnv {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the install commands are tested with Linux's service manager and alias commands")
	}
	root := t.TempDir()
	for _, d := range []string{"etc/systemd/system", "etc/imdsd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, install.EnvironmentPath), []byte(baseCredentials), 0o600); err != nil {
		t.Fatal(err)
	}
	te := &testEnv{svc: &fakeService{root: root}, rec: &recorder{}}
	te.Host = install.Host{
		GOOS:       "linux",
		Platform:   "linux-systemd",
		Root:       root,
		Run:        te.rec.run,
		Euid:       func() int { return euid },
		Executable: func() (string, error) { return testExe, nil },
		NewService: func(_ service.Interface, c *service.Config) (service.Service, error) {
			te.svc.unit, _ = c.Option["SystemdScript"].(string)
			return te.svc, nil
		},
	}
	return te
}

var (
	execStartRE  = regexp.MustCompile(`(?m)^ExecStart=.*$`)
	execReloadRE = regexp.MustCompile(`(?m)^ExecReload=.*$`)
)

func (te *testEnv) cmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return te.cmdEnv(t, func(string) string { return "" }, args...)
}

// cmdEnv runs the service command args[0] through runCommand, with te's
// host and getenv as the shell's environment.
func (te *testEnv) cmdEnv(t *testing.T, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	spec := withHost(serviceSpec(args[0]), te.Host)
	code = runCommand(context.Background(), spec, args[1:], cmdIO{getenv: getenv, stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

// serviceSpec is the spec of the service command name.
func serviceSpec(name string) commandSpec {
	switch name {
	case "install":
		return installSpec
	case "uninstall":
		return uninstallSpec
	case "alias":
		return aliasSpec
	}
	return controlSpec(name)
}

// withHost is spec with its command running on h instead of this host.
func withHost(spec commandSpec, h install.Host) commandSpec {
	newCmd := spec.newCmd
	spec.newCmd = func(cio cmdIO) command {
		switch c := newCmd(cio).(type) {
		case *installCmd:
			c.host = h
			return c
		case *aliasCmd:
			c.host = h
			return c
		case *controlCmd:
			c.host = h
			return c
		default:
			panic("withHost: not a service command")
		}
	}
	return spec
}

// section is the text of a file in dry-run output.
func section(t *testing.T, out, path string) string {
	t.Helper()
	start := strings.Index(out, "# ---- write "+path+" (mode 0644) ----\n")
	end := strings.Index(out, "# ---- end of "+path+" ----\n")
	if start < 0 || end < start {
		t.Fatalf("dry-run output has no section for %s:\n%s", path, out)
	}
	return out[strings.Index(out[start:], "\n")+start+1 : end]
}

func readGolden(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const roleArgs = "--source assume-role --role-arn arn:aws:iam::123456789012:role/dev"

func TestInstallDryRun(t *testing.T) {
	tests := []struct {
		name       string
		own        string // install's own flags
		config     string // a config file, given first in the run flags: --config CONFIG
		args       string // the run flags, after "--"
		wantExec   string
		wantReload string // ExecReload=, when it has arguments
		unitGolden string // the unit of install/testdata with another ExecStart= (and ExecReload=)
		group      string // the unit golden's SupplementaryGroups= instead
		sockGolden string
		wantCmds   string
		wantEnv    bool   // IMDSD_MFA_COMMAND in the environment file
		golden     string // the whole output, in daemon/testdata
	}{
		{
			name:       "default",
			args:       roleArgs,
			wantExec:   `ExecStart=/usr/local/bin/imdsd "run" "--source" "assume-role" "--role-arn" "arn:aws:iam::123456789012:role/dev" "--listen" "169.254.169.254:80"`,
			unitGolden: "linux-imdsd.service.golden",
			wantCmds:   "systemctl enable imdsd.service\nsystemctl daemon-reload\n",
			golden:     "install-dry-run.golden",
		},
		{
			name:       "ipv6 and socket activation",
			own:        "--ipv6 --socket-activation",
			args:       "--source dev",
			wantExec:   `ExecStart=/usr/local/bin/imdsd "run" "--source" "dev" "--listen" "169.254.169.254:80" "--listen" "[fd00:ec2::254]:80"`,
			unitGolden: "linux-ipv6-socket-imdsd.service.golden",
			sockGolden: "linux-ipv6-socket-imdsd.socket.golden",
			wantCmds:   "systemctl enable imdsd.service\nsystemctl daemon-reload\nsystemctl enable imdsd.socket\n",
		},
		{
			name:       "containers, a token group",
			own:        "--containers",
			config:     "source: dev\ncontainer: true\ncontainer_token_group: root\n",
			wantExec:   `ExecStart=/usr/local/bin/imdsd "run" "--config" "CONFIG" "--listen" "169.254.169.254:80" "--container-listen" "169.254.170.23:80"`,
			wantReload: `ExecReload=/usr/local/bin/imdsd reload "--config" "CONFIG"`,
			unitGolden: "linux-containers-imdsd.service.golden",
			group:      "root",
			wantCmds:   "systemctl enable imdsd.service\nsystemctl daemon-reload\n",
		},
		{
			name:   "ipv6, socket activation, containers, several roles",
			own:    "--ipv6 --socket-activation --containers",
			config: "roles:\n  - name: readonly\n    source: dev\n  - name: deploy\n    source: dev\n    container: true\n",
			wantExec: `ExecStart=/usr/local/bin/imdsd "run" "--config" "CONFIG" "--listen" "169.254.169.254:80" "--listen" "[fd00:ec2::254]:80" ` +
				`"--container-listen" "169.254.170.23:80" "--container-listen" "[fd00:ec2::23]:80"`,
			wantReload: `ExecReload=/usr/local/bin/imdsd reload "--config" "CONFIG"`,
			unitGolden: "linux-ipv6-socket-containers-imdsd.service.golden",
			sockGolden: "linux-ipv6-socket-containers-imdsd.socket.golden",
			wantCmds:   "systemctl enable imdsd.service\nsystemctl daemon-reload\nsystemctl enable imdsd.socket\n",
		},
		{
			name:       "listen given, a user, characters systemd would expand",
			own:        "--user alice",
			args:       `--listen 127.0.0.1:8169 --source web-identity --role-arn arn:aws:iam::123456789012:role/dev --web-identity-token-file /run/x"%$HOME\`,
			wantExec:   `ExecStart=/usr/local/bin/imdsd "run" "--listen" "127.0.0.1:8169" "--source" "web-identity" "--role-arn" "arn:aws:iam::123456789012:role/dev" "--web-identity-token-file" "/run/x\"%%$$HOME\\"`,
			unitGolden: "linux-imdsd.service.golden",
			wantCmds:   "systemctl enable imdsd.service\nsystemctl daemon-reload\n",
		},
		{
			name:       "a command that may carry a secret goes to the environment file",
			args:       roleArgs + " --mfa-serial arn:aws:iam::123456789012:mfa/a --mfa-command oathtool-SECRET",
			wantExec:   `ExecStart=/usr/local/bin/imdsd "run" "--source" "assume-role" "--role-arn" "arn:aws:iam::123456789012:role/dev" "--mfa-serial" "arn:aws:iam::123456789012:mfa/a" "--listen" "169.254.169.254:80"`,
			unitGolden: "linux-imdsd.service.golden",
			wantCmds:   "systemctl enable imdsd.service\nsystemctl daemon-reload\n",
			wantEnv:    true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			te := newTestEnv(t, 1000) // --dry-run needs no root
			te.NewService = func(service.Interface, *service.Config) (service.Service, error) {
				t.Fatal("--dry-run built a service")
				return nil, nil
			}
			args := append(append([]string{"install", "--dry-run"}, strings.Fields(tc.own)...), "--")
			config := filepath.Join(t.TempDir(), "config.yaml")
			if tc.config != "" {
				if err := os.WriteFile(config, []byte(tc.config), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", config)
			}
			args = append(args, strings.Fields(tc.args)...)
			code, out, errOut := te.cmd(t, args...)
			dev := strings.Contains(tc.args, "--source dev") || strings.Contains(tc.config, "source: dev")
			if wantErr := devNote(dev); code != exitOK || errOut != wantErr {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, wantErr)
			}
			unit := section(t, out, install.SystemdUnitPath)
			want := readGolden(t, filepath.Join("..", "install", "testdata", tc.unitGolden))
			want = execStartRE.ReplaceAllLiteralString(want, strings.ReplaceAll(tc.wantExec, "CONFIG", config))
			if tc.wantReload != "" {
				want = execReloadRE.ReplaceAllLiteralString(want, strings.ReplaceAll(tc.wantReload, "CONFIG", config))
			}
			if strings.Contains(tc.own, "--user") {
				want = strings.Replace(want, "User=imdsd\n", "User=alice\n", 1)
			}
			if tc.group != "" {
				want = regexp.MustCompile(`(?m)^SupplementaryGroups=.*$`).ReplaceAllLiteralString(want, "SupplementaryGroups="+tc.group)
			}
			if diff := cmp.Diff(want, unit); diff != "" {
				t.Errorf("unit (-want +got):\n%s", diff)
			}
			if tc.sockGolden != "" {
				sock := section(t, out, install.SystemdSocketPath)
				if diff := cmp.Diff(readGolden(t, filepath.Join("..", "install", "testdata", tc.sockGolden)), sock); diff != "" {
					t.Errorf("socket unit (-want +got):\n%s", diff)
				}
			} else if strings.Contains(out, install.SystemdSocketPath) {
				t.Errorf("dry-run without --socket-activation mentions %s", install.SystemdSocketPath)
			}
			cmds := "# ---- end of " + install.SystemdUnitPath + " ----\n" + tc.wantCmds
			if tc.sockGolden != "" {
				cmds = strings.Replace(cmds, "systemctl enable imdsd.socket\n", "\nsystemctl enable imdsd.socket\n", 1)
			}
			if !strings.Contains(out, cmds) {
				t.Errorf("dry-run commands: want\n%s\nin\n%s", cmds, out)
			}
			envLine := "\nIMDSD_MFA_COMMAND=… (not shown: it may carry a secret)\n"
			if strings.Contains(out, envLine) != tc.wantEnv || strings.Contains(out, "SECRET") {
				t.Errorf("dry-run: the environment file's line %q present = %v, want %v, and never the value:\n%s", envLine, !tc.wantEnv, tc.wantEnv, out)
			}
			if len(te.rec.calls) > 0 {
				t.Errorf("dry-run ran %q", te.rec.calls)
			}
			if entries, _ := os.ReadDir(filepath.Join(te.Root, "etc/systemd/system")); len(entries) > 0 {
				t.Errorf("dry-run wrote %v", entries)
			}
			if tc.golden != "" {
				path := filepath.Join("testdata", tc.golden)
				if *updateGolden {
					if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if diff := cmp.Diff(readGolden(t, path), out); diff != "" {
					t.Errorf("%s (-want +got; -update-golden accepts it):\n%s", path, diff)
				}
			}
		})
	}
}

// TestInstallDryRunTouchesNothing runs the dry-run on this host's real
// paths: nothing may appear in /etc/systemd/system.
func TestInstallDryRunTouchesNothing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux paths")
	}
	paths := []string{install.SystemdUnitPath, install.SystemdSocketPath}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists on this host already", p)
		}
	}
	e := install.LocalHost()
	rec := &recorder{}
	e.Run = rec.run
	e.NewService = func(service.Interface, *service.Config) (service.Service, error) {
		t.Fatal("--dry-run built a service")
		return nil, nil
	}
	var out, errOut bytes.Buffer
	args := []string{"--dry-run", "--socket-activation", "--ipv6", "--", "--source", "dev"}
	cio := cmdIO{getenv: func(string) string { return "" }, stdout: &out, stderr: &errOut}
	if code := runCommand(context.Background(), withHost(installSpec, e), args, cio); code != exitOK {
		t.Fatalf("install --dry-run: exit %d: %s", code, errOut.String())
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			os.Remove(p)
			t.Errorf("install --dry-run created %s", p)
		}
	}
	if len(rec.calls) > 0 {
		t.Errorf("install --dry-run ran %q", rec.calls)
	}
}

func TestInstallRefuses(t *testing.T) {
	tests := []struct {
		name string
		euid int
		args []string
		code int
		want string // exact stderr
	}{
		{"not root", 1000, append([]string{"--"}, strings.Fields(roleArgs)...), exitPermission,
			"imdsd install: must run as root (sudo imdsd install …)\n"},
		{"invalid configuration", 0, []string{"--", "--source", "assume-role", "--token-mode", "v1"}, exitUsage,
			"imdsd install: invalid configuration:\n" +
				"  token_mode: must be required or optional (got \"v1\")\n" +
				"  role_arn: required by source assume-role\n"},
		{"invalid configuration, dry run", 1000, []string{"--dry-run", "--", "--listen", "0.0.0.0"}, exitUsage,
			"imdsd install: invalid configuration:\n" +
				"  listen: must be host:port with an IP address or localhost, e.g. 127.0.0.1:8169 or [::1]:8169 (got \"0.0.0.0\")\n"},
		{"socket activation with listen", 0, []string{"--socket-activation", "--", "--listen", "127.0.0.1:80"}, exitUsage,
			"imdsd install: --socket-activation: the service serves what imdsd.socket binds (169.254.169.254:80); drop --listen\n" +
				"Run 'imdsd install --help' for its flags and examples.\n"},
		{"socket activation with container-listen", 0, []string{"--socket-activation", "--containers", "--ipv6", "--", "--container-listen", "127.0.0.1:8170"}, exitUsage,
			"imdsd install: --socket-activation: the service serves what imdsd.socket binds (169.254.170.23:80, [fd00:ec2::23]:80); drop --container-listen\n" +
				"Run 'imdsd install --help' for its flags and examples.\n"},
		// --containers adds container_listen: Validate's "container_listen:
		// no role is served" would name a setting the user never gave.
		{"containers without a container role", 0, []string{"--containers", "--", "--source", "dev"}, exitUsage,
			"imdsd install: invalid configuration:\n" +
				"  --containers: no role is served to containers; set container: true on one in the config file (-- --container for the one role)\n"},
		{"containers without a container role, and another error", 1000, []string{"--dry-run", "--containers", "--", "--source", "assume-role"}, exitUsage,
			"imdsd install: invalid configuration:\n" +
				"  --containers: no role is served to containers; set container: true on one in the config file (-- --container for the one role)\n" +
				"  role_arn: required by source assume-role\n"},
		{"container role, no such token group", 0, []string{"--containers", "--", "--source", "dev", "--container", "--container-token-group", "no-such-group-imdsd"}, exitUsage,
			"imdsd install: invalid configuration:\n" +
				"  container_token_group: no such group on this host; create it (groupadd no-such-group-imdsd) or name another (got \"no-such-group-imdsd\")\n"},
		{"stray argument", 0, []string{"dev"}, exitUsage,
			"imdsd install: unexpected argument \"dev\": the run flags after \"--\" are flags only\n" +
				"Run 'imdsd install --help' for its flags and examples.\n"},
		{"run flag before --", 0, []string{"--source", "dev"}, exitUsage,
			"imdsd install:\n" +
				"  --source: unknown flag; imdsd run's flags go after \"--\", e.g. imdsd install -- --source …\n" +
				"  unexpected argument \"dev\": the run flags after \"--\" are flags only\n" +
				"Run 'imdsd install --help' for its flags and examples.\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			te := newTestEnv(t, tc.euid)
			code, out, errOut := te.cmd(t, append([]string{"install"}, tc.args...)...)
			if code != tc.code || errOut != tc.want {
				t.Errorf("exit %d, stderr\n%s\nwant exit %d, stderr\n%s", code, errOut, tc.code, tc.want)
			}
			if out != "" || len(te.svc.calls) > 0 || len(te.rec.calls) > 0 {
				t.Errorf("stdout %q, service calls %q, commands %q; want none", out, te.svc.calls, te.rec.calls)
			}
		})
	}
}

// TestInstallServiceSettings: ExecReload= gets the run flags'
// --admin-socket and --config, in any form; the container tokens' group
// becomes a supplementary group; a token directory the service cannot
// write is noted.
func TestInstallServiceSettings(t *testing.T) {
	config := filepath.Join(t.TempDir(), "imdsd.yaml")
	if err := os.WriteFile(config, []byte("source: dev\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args       string
		wantReload string
		wantGroups string // the SupplementaryGroups= line, or ""
		wantErr    string // after the dev source's note
	}{
		{args: "--source dev", wantReload: `ExecReload=/usr/local/bin/imdsd reload`},
		{args: "--source dev --admin-socket /srv/imdsd/admin.sock",
			wantReload: `ExecReload=/usr/local/bin/imdsd reload "--admin-socket" "/srv/imdsd/admin.sock"`},
		{args: "-config=" + config + " --admin-socket=/srv/imdsd/a%b.sock",
			wantReload: `ExecReload=/usr/local/bin/imdsd reload "--admin-socket" "/srv/imdsd/a%%b.sock" "--config" "` + config + `"`},
		{args: "--source dev --container --container-listen 127.0.0.1:8170 --container-token-group root",
			wantReload: `ExecReload=/usr/local/bin/imdsd reload`, wantGroups: "SupplementaryGroups=root"},
		{args: "--source dev --container --container-listen 127.0.0.1:8170 --container-token-dir /srv/tokens",
			wantReload: `ExecReload=/usr/local/bin/imdsd reload`,
			wantErr: "imdsd install: note: container_token_dir /srv/tokens: the service can keep files only under /var/lib/imdsd (ProtectSystem=strict); " +
				"leave it unset for /var/lib/imdsd/container-tokens, or allow it in a drop-in (systemctl edit imdsd: ReadWritePaths=)\n"},
		// The group of a configuration that serves no container is no
		// business of the service's.
		{args: "--source dev --container-token-group root", wantReload: `ExecReload=/usr/local/bin/imdsd reload`},
	}
	for _, tc := range tests {
		te := newTestEnv(t, 1000)
		code, out, errOut := te.cmd(t, append([]string{"install", "--dry-run", "--"}, strings.Fields(tc.args)...)...)
		if code != exitOK || errOut != devNote(true)+tc.wantErr {
			t.Errorf("install -- %s: exit %d, stderr %q; want 0, %q", tc.args, code, errOut, devNote(true)+tc.wantErr)
			continue
		}
		unit := section(t, out, install.SystemdUnitPath)
		if got := execReloadRE.FindString(unit); got != tc.wantReload {
			t.Errorf("install -- %s: %s, want %s", tc.args, got, tc.wantReload)
		}
		if got := regexp.MustCompile(`(?m)^SupplementaryGroups=.*$`).FindString(unit); got != tc.wantGroups {
			t.Errorf("install -- %s: SupplementaryGroups line %q, want %q", tc.args, got, tc.wantGroups)
		}
	}
}

func TestInstallIgnoresShellEnvironment(t *testing.T) {
	te := newTestEnv(t, 0)
	env := map[string]string{"IMDSD_SOURCE": "assume-role", "IMDSD_ROLE_ARN": "arn:aws:iam::123456789012:role/dev"}
	// Valid with the variables, but the service would not see them: it
	// would run the dev source. Install validates what the service runs.
	code, out, errOut := te.cmdEnv(t, func(k string) string { return env[k] }, "install", "--dry-run")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "imdsd install: ignoring IMDSD_SOURCE, IMDSD_ROLE_ARN: the service does not inherit this shell's environment; use flags or the config file\n" + devNote(true); errOut != want {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
	if strings.Contains(out, "assume-role") {
		t.Errorf("the planned unit uses the shell's IMDSD_SOURCE:\n%s", out)
	}
}

// TestInstallUninstallIdempotent: the same install twice changes nothing,
// another one replaces the unit, uninstall removes everything twice over.
func TestInstallUninstallIdempotent(t *testing.T) {
	te := newTestEnv(t, 0)
	unitPath := filepath.Join(te.Root, install.SystemdUnitPath)
	sockPath := filepath.Join(te.Root, install.SystemdSocketPath)
	step := func(wantCode int, wantOut, wantCalls string, wantCmds []string, args ...string) {
		t.Helper()
		te.svc.calls, te.rec.calls = nil, nil
		code, out, errOut := te.cmd(t, args...)
		if code != wantCode || !strings.Contains(out, wantOut) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q", args, code, out, errOut, wantCode, wantOut)
		}
		if got := strings.Join(te.svc.calls, " "); got != wantCalls {
			t.Errorf("%v: service calls %q, want %q", args, got, wantCalls)
		}
		if diff := cmp.Diff(wantCmds, te.rec.calls); diff != "" {
			t.Errorf("%v: commands (-want +got):\n%s", args, diff)
		}
	}
	unit := func() string { return readGolden(t, unitPath) }

	step(0, "installed the imdsd service (/etc/systemd/system/imdsd.service)", "Install", nil, "install", "--", "--source", "dev")
	first := unit()
	if !strings.Contains(first, `"run" "--source" "dev" "--listen" "169.254.169.254:80"`) {
		t.Errorf("installed unit:\n%s", first)
	}
	step(0, "installed already with these settings; nothing changed", "", nil, "install", "--", "--source", "dev")
	step(0, "replaced the imdsd service", "Uninstall Install", []string{"systemctl enable imdsd.socket"},
		"install", "--socket-activation", "--", "--source", "dev")
	if unit() == first {
		t.Error("install with other flags left the unit as it was")
	}
	if _, err := os.Stat(sockPath); err != nil {
		t.Errorf("socket activation: %v", err)
	}
	step(0, "nothing changed", "", nil, "install", "--socket-activation", "--", "--source", "dev")
	// Back without socket activation: the socket goes.
	step(0, "replaced", "Uninstall Install", []string{"systemctl disable --now imdsd.socket", "systemctl daemon-reload"},
		"install", "--", "--source", "dev")
	if _, err := os.Stat(sockPath); err == nil {
		t.Error("imdsd.socket stayed after an install without socket activation")
	}
	step(0, "replaced", "Uninstall Install", []string{"systemctl enable imdsd.socket"}, "install", "--socket-activation", "--", "--source", "dev")

	aliasCmds := []string{"ip -o -4 addr show dev lo", "ip -o -6 addr show dev lo", "ip -o -4 addr show dev lo", "ip -o -6 addr show dev lo"}
	step(0, "removed the imdsd service and the loopback aliases", "Stop Uninstall",
		append([]string{"systemctl disable --now imdsd.socket", "systemctl daemon-reload"}, aliasCmds...), "uninstall")
	for _, p := range []string{unitPath, sockPath} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("uninstall left %s", p)
		}
	}
	step(0, "imdsd was not installed", "", aliasCmds, "uninstall")
}

func TestUninstallDryRun(t *testing.T) {
	te := newTestEnv(t, 1000)
	if err := os.WriteFile(filepath.Join(te.Root, install.SystemdUnitPath), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(te.Root, install.SystemdSocketPath), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := te.cmd(t, "uninstall", "--dry-run")
	want := `# imdsd uninstall --dry-run: nothing was changed. As root, imdsd uninstall would:
systemctl disable --now imdsd.socket
systemctl stop imdsd.service
systemctl disable imdsd.service
rm /etc/systemd/system/imdsd.service
systemctl daemon-reload
rm /etc/systemd/system/imdsd.socket
systemctl daemon-reload
imdsd alias remove 169.254.169.254 fd00:ec2::254 169.254.170.23 fd00:ec2::23
`
	if code != exitOK || out != want {
		t.Errorf("exit %d, stdout\n%s\nstderr %s\nwant\n%s", code, out, errOut, want)
	}
	if len(te.svc.calls) > 0 || len(te.rec.calls) > 0 {
		t.Errorf("dry run called %q, ran %q", te.svc.calls, te.rec.calls)
	}
	if code, _, errOut := te.cmd(t, "uninstall"); code != exitPermission || errOut != "imdsd uninstall: must run as root (sudo imdsd uninstall)\n" {
		t.Errorf("uninstall as uid 1000: exit %d, %q", code, errOut)
	}
}

func TestControl(t *testing.T) {
	te := newTestEnv(t, 0)
	if code, _, errOut := te.cmd(t, "start"); code != exitError || errOut != "imdsd start: imdsd is not installed: sudo imdsd install first\n" {
		t.Errorf("start, not installed: exit %d, %q", code, errOut)
	}
	if code, _, errOut := te.cmd(t, "install", "--", "--source", "dev"); code != exitOK {
		t.Fatalf("install: %s", errOut)
	}
	for _, action := range []string{"start", "stop", "restart"} {
		te.svc.calls = nil
		code, out, _ := te.cmd(t, action)
		if code != exitOK || !strings.HasPrefix(out, "imdsd "+action+": ") {
			t.Errorf("%s: exit %d, %q", action, code, out)
		}
		if want := strings.ToUpper(action[:1]) + action[1:]; strings.Join(te.svc.calls, " ") != want {
			t.Errorf("%s: service calls %q, want %q", action, te.svc.calls, want)
		}
	}
	te.svc.fail = map[string]error{"Start": errors.New(`"systemctl start imdsd.service" failed: exit status 1, Job for imdsd.service failed`)}
	code, _, errOut := te.cmd(t, "start")
	want := "imdsd start: \"systemctl start imdsd.service\" failed: exit status 1, Job for imdsd.service failed\n  see: journalctl -u imdsd, and imdsd status\n"
	if code != exitError || errOut != want {
		t.Errorf("failed start: exit %d, stderr\n%s\nwant\n%s", code, errOut, want)
	}
	if code, _, _ := te.cmd(t, "stop", "now"); code != exitUsage {
		t.Errorf("stop now: exit %d, want %d", code, exitUsage)
	}
}

// TestInstallArgs: install's own flags come before "--", the run flags
// after it; a run flag's value that looks like an install flag stays a
// value, and a run flag before "--" is refused with the fix.
func TestInstallArgs(t *testing.T) {
	tests := []struct {
		args     string
		code     int
		wantExec string // a part of ExecStart=
		wantErr  string
	}{
		{args: "--dry-run --ipv6 -- --source dev", wantExec: `"run" "--source" "dev" "--listen" "169.254.169.254:80" "--listen" "[fd00:ec2::254]:80"`},
		{args: "--dry-run --user=bob -- --source=dev", wantExec: `"run" "--source=dev" "--listen"`},
		{args: "--dry-run -- --role-session-name --user " + roleArgs, wantExec: `"run" "--role-session-name" "--user" "--source" "assume-role"`},
		{args: "--dry-run -- --allow-short-duration --ipv6", code: exitUsage, wantErr: "run flags: --ipv6: unknown flag"},
		{args: "--dry-run --source dev", code: exitUsage, wantErr: `--source: unknown flag; imdsd run's flags go after "--"`},
		{args: "--dry-run --socket-activation=true --user alice -- --source dev", wantExec: `"run" "--source" "dev" "--listen" "169.254.169.254:80"`},
	}
	for _, tc := range tests {
		te := newTestEnv(t, 1000)
		code, out, errOut := te.cmd(t, append([]string{"install"}, strings.Fields(tc.args)...)...)
		if code != tc.code || !strings.Contains(errOut, tc.wantErr) || (tc.wantErr == "") != (errOut == "" || errOut == devNote(true)) {
			t.Errorf("install %s: exit %d, stderr %q; want exit %d, stderr with %q", tc.args, code, errOut, tc.code, tc.wantErr)
		}
		if tc.wantExec != "" && !strings.Contains(out, "\nExecStart=/usr/local/bin/imdsd "+tc.wantExec) {
			t.Errorf("install %s: no ExecStart=… %s in\n%s", tc.args, tc.wantExec, out)
		}
	}
}

func TestServiceCommandsHelp(t *testing.T) {
	for _, args := range [][]string{
		{"install", "--help"}, {"uninstall", "--help"}, {"alias", "--help"}, {"alias", "add", "-h"},
		{"start", "--help"}, {"stop", "--help"}, {"restart", "--help"},
	} {
		code, out, errOut := runArgs(args...)
		if code != exitOK || !strings.Contains(out+errOut, "Examples:") {
			t.Errorf("%v: exit %d, output %q", args, code, out+errOut)
		}
	}
	code, out, _ := runArgs("install", "--help")
	if code != exitOK || !strings.Contains(out, "--dry-run") || !strings.Contains(out, "-- --source") {
		t.Errorf("install --help shows neither its flags nor where the run flags go: %q", out)
	}
}

// TestProgramStartStop runs the real imdsd run as a kardianos program:
// Start returns at once, the endpoint serves, Stop drains it within
// programStopWait and run ends with exit status 0.
func TestProgramStartStop(t *testing.T) {
	var stderr syncBuffer
	endpoints := make(chan string, 1)
	stdout := writerFunc(func(p []byte) (int, error) {
		if _, after, ok := strings.Cut(string(p), "AWS_EC2_METADATA_SERVICE_ENDPOINT="); ok {
			endpoints <- strings.TrimSpace(after)
		}
		return len(p), nil
	})
	args := []string{"--source", "dev", "--listen", "127.0.0.1:0", "--admin-socket", filepath.Join(t.TempDir(), "admin.sock"), "--log-format", "json"}
	// Start must return at once, without waiting for run: run waits for
	// release, which only comes after Start has returned.
	release := make(chan struct{})
	p := newProgram(func(ctx context.Context) int {
		<-release
		return runCommand(ctx, runSpec, args, cmdIO{getenv: func(string) string { return "" }, stdout: stdout, stderr: &stderr})
	}, programStopWait)
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	close(release)
	var endpoint string
	select {
	case endpoint = <-endpoints:
	case <-p.done:
		t.Fatalf("run ended before printing the endpoint; log:\n%s", stderr.String())
	}
	req, _ := http.NewRequest(http.MethodPut, endpoint+"latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token PUT: %s", resp.Status)
	}
	// Stop reports an error if run still drains after programStopWait.
	if err := p.Stop(nil); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if code := p.exitCode(); code != exitOK {
		t.Errorf("exit code %d, want 0; log:\n%s", code, stderr.String())
	}
	host := strings.TrimSuffix(strings.TrimPrefix(endpoint, "http://"), "/")
	if c, err := net.Dial("tcp", host); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", host)
	}
}

// TestProgramStopBounded: Stop returns after stopWait even when run does
// not end, and says so.
func TestProgramStopBounded(t *testing.T) {
	release := make(chan struct{})
	p := newProgram(func(ctx context.Context) int {
		<-ctx.Done()
		<-release // a drain that takes too long
		return exitOK
	}, 50*time.Millisecond)
	if err := p.Stop(nil); err != nil {
		t.Errorf("Stop before Start = %v, want nil", err)
	}
	_ = p.Start(nil)
	start := time.Now()
	err := p.Stop(nil)
	if err == nil || !strings.Contains(err.Error(), "still draining") {
		t.Errorf("Stop = %v, want a still-draining error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Stop took %s", d)
	}
	if code := p.exitCode(); code != exitError {
		t.Errorf("exitCode while running = %d, want %d", code, exitError)
	}
	close(release)
	<-p.done
	if code := p.exitCode(); code != exitOK {
		t.Errorf("exitCode = %d, want 0", code)
	}
}

// fakeRunService is the service manager of runProgram: Run calls Start,
// waits for the stop request, then calls Stop, as kardianos's Run does.
type fakeRunService struct {
	fakeService
	p    *program
	stop chan struct{}
}

func (f *fakeRunService) Run() error {
	if err := f.p.Start(f); err != nil {
		return err
	}
	<-f.stop
	return f.p.Stop(f)
}

func TestRunProgram(t *testing.T) {
	t.Run("stopped by the manager", func(t *testing.T) {
		p := newProgram(func(ctx context.Context) int { <-ctx.Done(); return exitOK }, time.Second)
		f := &fakeRunService{p: p, stop: make(chan struct{})}
		close(f.stop)
		if code := runProgram(p, func(*program) (service.Service, error) { return f, nil }, io.Discard); code != exitOK {
			t.Errorf("exit %d, want 0", code)
		}
	})
	t.Run("run ends by itself", func(t *testing.T) {
		p := newProgram(func(context.Context) int { return exitUsage }, time.Second)
		f := &fakeRunService{p: p, stop: make(chan struct{})} // never stopped
		if code := runProgram(p, func(*program) (service.Service, error) { return f, nil }, io.Discard); code != exitUsage {
			t.Errorf("exit %d, want %d", code, exitUsage)
		}
		close(f.stop)
	})
}

// devNote is what install says when the service would run the dev source.
func devNote(dev bool) string {
	if !dev {
		return ""
	}
	return "imdsd install: note: the service will serve the dev source's made-up credentials, which AWS refuses; " +
		"give a real source (-- --source assume-role --role-arn …, see imdsd run --help) or set source in " + defaultConfigPath() + "\n"
}

// TestSplitSecrets: the *-command flags of imdsd run leave the unit's
// arguments, in any form, and a value that looks like one stays a value;
// each becomes the variable imdsd run reads it from.
func TestSplitSecrets(t *testing.T) {
	tests := []struct {
		args, kept string
		env        []install.EnvVar
	}{
		{"--source dev", "--source dev", nil},
		{"--mfa-command x --source dev", "--source dev", []install.EnvVar{{Name: "IMDSD_MFA_COMMAND", Value: "x"}}},
		{"-mfa-command=x=y --allow-short-duration --saml-assertion-command z", "--allow-short-duration",
			[]install.EnvVar{{Name: "IMDSD_MFA_COMMAND", Value: "x=y"}, {Name: "IMDSD_SAML_ASSERTION_COMMAND", Value: "z"}}},
		{"--external-id --mfa-command --allow-short-duration=true --", "--external-id --mfa-command --allow-short-duration=true --", nil},
		{"--web-identity-token-command a --web-identity-token-command b", "",
			[]install.EnvVar{{Name: "IMDSD_WEB_IDENTITY_TOKEN_COMMAND", Value: "a"}, {Name: "IMDSD_WEB_IDENTITY_TOKEN_COMMAND", Value: "b"}}},
	}
	for _, tc := range tests {
		var rf runFlags
		fs := flag.NewFlagSet("imdsd run", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		rf.register(fs)
		if _, err := parseArgs(fs, strings.Fields(tc.args)); err != nil {
			t.Fatalf("parse %q: %v", tc.args, err)
		}
		kept, env := install.SplitSecrets(fs, strings.Fields(tc.args))
		if strings.Join(kept, " ") != tc.kept || !cmp.Equal(tc.env, env) {
			t.Errorf("SplitSecrets(%q) = %q, %v; want %q, %v", tc.args, kept, env, tc.kept, tc.env)
		}
	}
	var rf runFlags
	fs := flag.NewFlagSet("imdsd run", flag.ContinueOnError)
	rf.register(fs)
	for _, s := range settings {
		if !strings.HasSuffix(s.flag, "-command") {
			continue
		}
		_, env := install.SplitSecrets(fs, []string{"--" + s.flag, "x"})
		if want := []install.EnvVar{{Name: envName(s.key), Value: "x"}}; !cmp.Equal(want, env) {
			t.Errorf("SplitSecrets(--%s x) = %v, want %v", s.flag, env, want)
		}
	}
}

// TestInstallChecksServiceEnvironment: install validates with the IMDSD_*
// variables of the service's environment file, which the service will
// have, and not with the lines an earlier install wrote there.
func TestInstallChecksServiceEnvironment(t *testing.T) {
	te := newTestEnv(t, 0)
	envFile := filepath.Join(te.Root, install.EnvironmentPath)
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(envFile, []byte(baseCredentials+extra), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("IMDSD_SOURCE=assume-role\nIMDSD_ROLE_ARN=arn:aws:iam::123456789012:role/fromfile\n")
	code, out, errOut := te.cmd(t, "install", "--dry-run")
	if code != exitOK || errOut != "" || !strings.Contains(out, `ExecStart=/usr/local/bin/imdsd "run" "--listen" "169.254.169.254:80"`) {
		t.Errorf("exit %d, stderr %q; want the file's assume-role accepted, no dev note:\n%s", code, errOut, out)
	}
	write("IMDSD_TOKEN_MODE=v1\n")
	code, _, errOut = te.cmd(t, "install", "--dry-run", "--", "--source", "dev")
	if want := "imdsd install: invalid configuration:\n  token_mode: must be required or optional (got \"v1\")\n"; code != exitUsage || errOut != want {
		t.Errorf("exit %d, stderr %q; want %d, %q", code, errOut, exitUsage, want)
	}
	// An earlier install's lines are replaced, so they do not count: the
	// dev source refuses an MFA command.
	write("")
	args := append([]string{"install", "--"}, strings.Fields(roleArgs)...)
	if code, _, errOut := te.cmd(t, append(args, "--mfa-serial", "arn:aws:iam::123456789012:mfa/a", "--mfa-command", "x")...); code != exitOK {
		t.Fatalf("install with --mfa-command: exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(envFile); !strings.Contains(string(b), "\nIMDSD_MFA_COMMAND=\"x\"\n") {
		t.Fatalf("environment file:\n%s", b)
	}
	if code, _, errOut := te.cmd(t, "install", "--dry-run", "--", "--source", "dev"); code != exitOK || errOut != devNote(true) {
		t.Errorf("exit %d, stderr %q; want the earlier install's MFA command ignored", code, errOut)
	}
}

// TestInstallSecretsElsewhere: where the service has no environment file
// (macOS, Windows), a command that may carry a secret is refused with the
// fix, since every user can read the service's definition.
func TestInstallSecretsElsewhere(t *testing.T) {
	te := newTestEnv(t, 0)
	te.GOOS = "darwin"
	code, out, errOut := te.cmd(t, "install", "--dry-run", "--", "--source", "web-identity", "--role-arn", "arn:aws:iam::123456789012:role/dev",
		"--web-identity-token-command", "gh-oidc-token")
	want := "imdsd install: IMDSD_WEB_IDENTITY_TOKEN_COMMAND: every user can read the service's definition on darwin, which has no environment file; " +
		"set it in the config file (readable by the service only) instead\n"
	if code != exitUsage || errOut != want || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", code, out, errOut, exitUsage, want)
	}
}
