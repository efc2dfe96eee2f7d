//go:build integration && linux

package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsd/imdsd/install"
	"github.com/imdsd/imdsd/internal/roottest"
)

// Privileged tests of the real binary: `imdsd alias` in a network
// namespace, and install/uninstall in a private mount and network
// namespace with a fake systemctl. Run as root with
//
//	IMDSD_TEST_ROOT=1 go test -tags integration -run 'Netns|Namespace' ./daemon/

// buildImdsd builds the imdsd command (cmd/imdsd, a thin main around this
// package) into dir and returns the binary's path.
func buildImdsd(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "imdsd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/imdsd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAliasCommandInNetns: `ip netns exec NS imdsd alias add` really puts
// the /32 (and /128) on the namespace's lo, twice over, and remove takes
// them off; without CAP_NET_ADMIN it fails with exit status 1 saying why.
func TestAliasCommandInNetns(t *testing.T) {
	roottest.NeedRoot(t)
	bin := buildImdsd(t, t.TempDir())
	ns := roottest.Netns(t)
	lo := func() string { return sh(t, "ip", "-n", ns, "addr", "show", "dev", "lo") }
	imdsd := func(args ...string) (int, string) {
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for i := range 2 {
		if code, out := imdsd("alias", "add"); code != 0 {
			t.Fatalf("alias add #%d: exit %d: %s", i+1, code, out)
		}
		if got := lo(); !strings.Contains(got, "inet 169.254.169.254/32 scope global lo") {
			t.Fatalf("after alias add #%d lo has\n%s", i+1, got)
		}
	}
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	if code, out := imdsd("alias", "add", "169.254.169.254", "fd00:ec2::254"); code != 0 {
		t.Fatalf("alias add both: exit %d: %s", code, out)
	}
	if got := lo(); !strings.Contains(got, "inet6 fd00:ec2::254/128") {
		t.Fatalf("after alias add of both lo has\n%s", got)
	}
	if _, err := exec.LookPath("setpriv"); err == nil {
		cmd := exec.Command("ip", "netns", "exec", ns, "setpriv", "--inh-caps=-all", "--bounding-set=-all", bin, "alias", "remove")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "run as root") {
			t.Errorf("alias remove without CAP_NET_ADMIN: %v: %s; want exit 1 saying run as root", err, out)
		}
	}
	for i := range 2 {
		if code, out := imdsd("alias", "remove", "--ipv6"); code != 0 {
			t.Fatalf("alias remove #%d: exit %d: %s", i+1, code, out)
		}
		if got := lo(); strings.Contains(got, "169.254.169.254") || strings.Contains(got, "fd00:ec2::254") {
			t.Fatalf("after alias remove #%d lo has\n%s", i+1, got)
		}
	}
	// --containers: the container endpoint's addresses too, /32 and /128.
	for i := range 2 {
		if code, out := imdsd("alias", "add", "--containers", "--ipv6"); code != 0 {
			t.Fatalf("alias add --containers #%d: exit %d: %s", i+1, code, out)
		}
		got := lo()
		for _, want := range []string{"inet 169.254.169.254/32", "inet6 fd00:ec2::254/128", "inet 169.254.170.23/32", "inet6 fd00:ec2::23/128"} {
			if !strings.Contains(got, want) {
				t.Fatalf("after alias add --containers --ipv6 #%d lo lacks %q:\n%s", i+1, want, got)
			}
		}
	}
	if code, out := imdsd("alias", "remove", "--containers", "--ipv6"); code != 0 {
		t.Fatalf("alias remove --containers: exit %d: %s", code, out)
	}
	if got := lo(); strings.Contains(got, "169.254.") || strings.Contains(got, "fd00:ec2::") {
		t.Fatalf("after alias remove --containers --ipv6 lo has\n%s", got)
	}
}

const installChildEnv = "IMDSD_TEST_INSTALL_BIN"

// TestInstallInMountNamespace runs the real `imdsd install` and `uninstall`
// in a private mount and network namespace (unshare -m -n), where
// /etc/systemd/system and /usr/local/bin are empty tmpfs, systemctl is a
// fake that records its arguments and the loopback interface is the
// namespace's own. The host's units, binaries and interfaces are never
// touched.
func TestInstallInMountNamespace(t *testing.T) {
	roottest.NeedRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	bin := buildImdsd(t, t.TempDir())
	cmd := exec.Command("unshare", "--mount", "--net", "--propagation", "private",
		os.Args[0], "-test.run=^TestInstallChild$", "-test.v")
	cmd.Env = append(os.Environ(), installChildEnv+"="+bin)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestInstallChild") {
		t.Fatalf("child: %v", err)
	}
}

func TestInstallChild(t *testing.T) {
	src := os.Getenv(installChildEnv)
	if src == "" {
		t.Skip("run by TestInstallInMountNamespace only")
	}
	// /etc as an overlay whose changes land in a scratch directory: the
	// install's /etc/imdsd/environment never reaches the host's /etc.
	scratch := t.TempDir()
	for _, d := range []string{"up", "work"} {
		if err := os.Mkdir(filepath.Join(scratch, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=/etc,upperdir=" + filepath.Join(scratch, "up") + ",workdir=" + filepath.Join(scratch, "work")
	if err := syscall.Mount("overlay", "/etc", "overlay", 0, opts); err != nil {
		t.Fatalf("mount an overlay on /etc: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount("/etc", syscall.MNT_DETACH) })
	for _, dir := range []string{"/etc/systemd/system", "/usr/local/bin"} {
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", dir, err)
		}
	}
	const exe = "/usr/local/bin/imdsd"
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "link", "set", "lo", "up")
	// Fake systemctl, logging its arguments, and rpm-ostree, whose presence
	// makes kardianos choose systemd without a running systemd.
	fake := t.TempDir()
	log := filepath.Join(fake, "systemctl.log")
	for name, script := range map[string]string{
		"systemctl":  "#!/bin/sh\necho \"$*\" >> " + log + "\n",
		"rpm-ostree": "#!/bin/sh\nexit 0\n",
	} {
		if err := os.WriteFile(filepath.Join(fake, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + fake + ":" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	calls := func() []string {
		b, _ := os.ReadFile(log)
		os.Remove(log)
		return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
	}
	imdsd := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(exe, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("imdsd %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, wantCode, out)
		}
		t.Logf("imdsd %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	absent := func(p string) {
		t.Helper()
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists", p)
		}
	}
	// section is the text of a file in dry-run output.
	section := func(out, path string) string {
		t.Helper()
		_, after, ok := strings.Cut(out, "# ---- write "+path+" (mode 0644) ----\n")
		text, _, ok2 := strings.Cut(after, "# ---- end of "+path+" ----\n")
		if !ok || !ok2 {
			t.Fatalf("dry-run output has no section for %s:\n%s", path, out)
		}
		return text
	}

	// The dry run prints exactly the unit kardianos then writes.
	dry := imdsd(0, "install", "--dry-run", "--", "--source", "dev")
	if len(calls()) > 0 {
		t.Error("install --dry-run ran systemctl")
	}
	absent(install.SystemdUnitPath)
	imdsd(0, "install", "--", "--source", "dev")
	unit := read(install.SystemdUnitPath)
	if diff := cmp.Diff(section(dry, install.SystemdUnitPath), unit); diff != "" {
		t.Errorf("installed unit differs from the dry run's (-dry-run +installed):\n%s", diff)
	}
	if !strings.Contains(unit, "\nExecStart=/usr/local/bin/imdsd \"run\" \"--source\" \"dev\" \"--listen\" \"169.254.169.254:80\"\n") {
		t.Errorf("ExecStart of\n%s", unit)
	}
	if fi, err := os.Stat(install.SystemdUnitPath); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("unit mode: %v, %v; want 0644", fi.Mode(), err)
	}
	if diff := cmp.Diff([]string{"enable_imdsd.service", "daemon-reload"}, calls()); diff != "" {
		t.Errorf("systemctl calls of install (-want +got):\n%s", diff)
	}
	if out := imdsd(0, "install", "--", "--source", "dev"); !strings.Contains(out, "nothing changed") {
		t.Errorf("second install: %s", out)
	}
	if c := calls(); len(c) > 0 {
		t.Errorf("second install ran systemctl %q", c)
	}

	// Other flags: replaced, with the socket.
	dry = imdsd(0, "install", "--dry-run", "--ipv6", "--socket-activation", "--", "--source", "dev")
	imdsd(0, "install", "--ipv6", "--socket-activation", "--", "--source", "dev")
	for _, p := range []string{install.SystemdUnitPath, install.SystemdSocketPath} {
		if diff := cmp.Diff(section(dry, p), read(p)); diff != "" {
			t.Errorf("%s differs from the dry run's (-dry-run +installed):\n%s", p, diff)
		}
	}
	want := []string{"disable_imdsd.service", "daemon-reload", "enable_imdsd.service", "daemon-reload", "enable_imdsd.socket"}
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("systemctl calls of the replacing install (-want +got):\n%s", diff)
	}
	imdsd(0, "install", "--ipv6", "--socket-activation", "--", "--source", "dev")
	if c := calls(); len(c) > 0 {
		t.Errorf("same install again ran systemctl %q", c)
	}

	// A command that may carry a secret goes into the environment file
	// (mode 0600, the user's base credentials kept), never the unit; the
	// base credentials there satisfy assume-role's check.
	const base = "AWS_ACCESS_KEY_ID=AKIAINTEGRATION00001\nAWS_SECRET_ACCESS_KEY=integration/secret\n"
	if err := os.MkdirAll("/etc/imdsd", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(install.EnvironmentPath, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	const mfa = `printf '%s' "$(cat /etc/imdsd/totp)" # it's $HOME, 100%`
	imdsd(0, "install", "--ipv6", "--socket-activation", "--", "--source", "assume-role", "--role-arn", "arn:aws:iam::123456789012:role/dev",
		"--mfa-serial", "arn:aws:iam::123456789012:mfa/dev", "--mfa-command", mfa)
	calls()
	if unit := read(install.SystemdUnitPath); strings.Contains(unit, "mfa-command") || strings.Contains(unit, "totp") {
		t.Errorf("the unit holds the MFA command:\n%s", unit)
	}
	envFile := read(install.EnvironmentPath)
	if fi, err := os.Stat(install.EnvironmentPath); err != nil || fi.Mode().Perm() != 0o600 || !strings.HasPrefix(envFile, base) {
		t.Errorf("%s (mode %v, %v):\n%s\nwant mode 0600, the base credentials kept", install.EnvironmentPath, fi.Mode(), err, envFile)
	}
	// Double quotes, only \ and " escaped: systemd expands nothing there
	// (make vmtest reads it back with the real systemd).
	if line := `IMDSD_MFA_COMMAND="printf '%s' \"$(cat /etc/imdsd/totp)\" # it's $HOME, 100%"` + "\n"; !strings.Contains(envFile, "\n"+line) {
		t.Errorf("%s lacks the line %q:\n%s", install.EnvironmentPath, line, envFile)
	}

	// --containers: the unit adds the container endpoint's addresses and
	// serves them; the dry run and the written unit agree.
	conf := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(conf, []byte("source: dev\ncontainer: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dry = imdsd(0, "install", "--dry-run", "--ipv6", "--socket-activation", "--containers", "--", "--config", conf)
	imdsd(0, "install", "--ipv6", "--socket-activation", "--containers", "--", "--config", conf)
	calls()
	for _, p := range []string{install.SystemdUnitPath, install.SystemdSocketPath} {
		if diff := cmp.Diff(section(dry, p), read(p)); diff != "" {
			t.Errorf("%s differs from the dry run's (-dry-run +installed):\n%s", p, diff)
		}
	}
	unit = read(install.SystemdUnitPath)
	for _, l := range []string{
		"ExecStartPre=+/usr/local/bin/imdsd alias add 169.254.169.254 fd00:ec2::254 169.254.170.23 fd00:ec2::23",
		`ExecReload=/usr/local/bin/imdsd reload "--config" "` + conf + `"`,
	} {
		if !strings.Contains(unit, "\n"+l+"\n") {
			t.Errorf("the --containers unit lacks %q:\n%s", l, unit)
		}
	}
	if sock := read(install.SystemdSocketPath); !strings.Contains(sock, "\nListenStream=169.254.170.23:80\nListenStream=[fd00:ec2::23]:80\n") {
		t.Errorf("imdsd.socket of --containers:\n%s", sock)
	}

	// What ExecStartPre= does at start, then uninstall takes it all away.
	imdsd(0, "alias", "add", "169.254.169.254", "fd00:ec2::254", "169.254.170.23", "fd00:ec2::23")
	if lo := sh(t, "ip", "addr", "show", "dev", "lo"); !strings.Contains(lo, "169.254.169.254/32") || !strings.Contains(lo, "fd00:ec2::254/128") ||
		!strings.Contains(lo, "169.254.170.23/32") || !strings.Contains(lo, "fd00:ec2::23/128") {
		t.Fatalf("alias add: lo has\n%s", lo)
	}
	imdsd(0, "uninstall")
	want = []string{"disable_--now_imdsd.socket", "stop_imdsd.service", "disable_imdsd.service", "daemon-reload", "daemon-reload"}
	if env := read(install.EnvironmentPath); env != base {
		t.Errorf("%s after uninstall:\n%s\nwant only the base credentials", install.EnvironmentPath, env)
	}
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("systemctl calls of uninstall (-want +got):\n%s", diff)
	}
	absent(install.SystemdUnitPath)
	absent(install.SystemdSocketPath)
	if lo := sh(t, "ip", "addr", "show", "dev", "lo"); strings.Contains(lo, "169.254.") || strings.Contains(lo, "fd00:ec2::") {
		t.Errorf("uninstall left an alias: lo has\n%s", lo)
	}
	if out := imdsd(0, "uninstall"); !strings.Contains(out, "not installed") {
		t.Errorf("second uninstall: %s", out)
	}
	if c := calls(); len(c) > 0 {
		t.Errorf("second uninstall ran systemctl %q", c)
	}
	// Not installed: start says so.
	if out := imdsd(1, "start"); !strings.Contains(out, "not installed") {
		t.Errorf("start after uninstall: %s", out)
	}
}
