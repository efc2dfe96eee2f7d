package packaging_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersion: packaging/version.sh makes a Debian and RPM version of each
// kind of git describe output, ordered as the commits are.
func TestVersion(t *testing.T) {
	for _, tc := range []struct{ describe, want string }{
		{"v1.2.0", "1.2.0"},
		{"v1.2.0-rc1", "1.2.0~rc1"},
		{"v1.2.0-3-g1a2b3c4", "1.2.0+3.g1a2b3c4"},
		{"v1.2.0-3-g1a2b3c4-dirty", "1.2.0+3.g1a2b3c4.dirty"},
		{"v1.2.0-rc1-3-g1a2b3c4", "1.2.0~rc1+3.g1a2b3c4"},
		{"v1.2.0-dirty", "1.2.0+dirty"},
		{"1a2b3c4", "0.0.0+g1a2b3c4"},
		{"4c52d43-dirty", "0.0.0+g4c52d43.dirty"},
		{"dev", "0.0.0+dev"},
		{"", "0.0.0+dev"},
	} {
		out, err := exec.Command("sh", "version.sh", tc.describe).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("version.sh %q = %q, %v; want %q", tc.describe, got, err, tc.want)
		}
	}
	if out, err := exec.Command("sh", "version.sh", "v1.2.0 beta").CombinedOutput(); err == nil {
		t.Errorf("version.sh %q = %q, want an error", "v1.2.0 beta", out)
	}
}

// TestPackages builds the amd64 packages with make package (a few seconds)
// and checks what dpkg and rpm would install: files with their modes and
// owners, the conffiles kept on upgrade, the maintainer scripts, and the
// unit, which must be packaging/gen's.
func TestPackages(t *testing.T) {
	for _, tool := range []string{"make", "dpkg-deb", "rpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing (make deps installs rpm): the packages are not checked", tool)
		}
	}
	if testing.Short() {
		t.Skip("-short: the packages are not built")
	}
	dir := t.TempDir()
	make := exec.Command("make", "-s", "-C", "..", "package", "PACKAGE_ARCHS=amd64", "PACKAGE_DIR="+dir, "PACKAGE_WORK="+t.TempDir())
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "imdsd_*_amd64.deb"))
	rpms, _ := filepath.Glob(filepath.Join(dir, "imdsd-*.x86_64.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("make package made %v and %v; want one .deb and one .rpm", debs, rpms)
	}
	unit, err := os.ReadFile("gen/testdata/imdsd.service.golden")
	if err != nil {
		t.Fatal(err)
	}
	// path → mode and owner, as dpkg-deb -c and rpm --queryformat show them.
	files := map[string]string{
		"/usr/bin/imdsd":                        "-rwxr-xr-x root/root",
		"/usr/lib/systemd/system/imdsd.service": "-rw-r--r-- root/root",
		"/usr/lib/systemd/system/imdsd.socket":  "-rw-r--r-- root/root",
		"/etc/imdsd/config.yaml":                "-rw-r----- root/imdsd",
		"/etc/imdsd/environment":                "-rw------- root/root",
	}
	conffiles := []string{"/etc/imdsd/config.yaml", "/etc/imdsd/environment"}

	t.Run("deb", func(t *testing.T) {
		deb := debs[0]
		listing := run(t, "dpkg-deb", "-c", deb)
		for path, want := range files {
			if !hasEntry(listing, "."+path, want) {
				t.Errorf("dpkg-deb -c: no %s %s in\n%s", want, path, listing)
			}
		}
		if got, want := run(t, "dpkg-deb", "-I", deb, "conffiles"), strings.Join(conffiles, "\n")+"\n"; got != want {
			t.Errorf("conffiles = %q, want %q", got, want)
		}
		fields := run(t, "dpkg-deb", "-f", deb, "Package", "Architecture", "Depends")
		if want := "Package: imdsd\nArchitecture: amd64\nDepends: iproute2\n"; fields != want {
			t.Errorf("control fields = %q, want %q", fields, want)
		}
		checkScripts(t, map[string]string{
			"preinst":  run(t, "dpkg-deb", "-I", deb, "preinst"),
			"postinst": run(t, "dpkg-deb", "-I", deb, "postinst"),
			"prerm":    run(t, "dpkg-deb", "-I", deb, "prerm"),
			"postrm":   run(t, "dpkg-deb", "-I", deb, "postrm"),
		})
		root := t.TempDir()
		run(t, "dpkg-deb", "-x", deb, root)
		if got, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/imdsd.service")); err != nil || !bytes.Equal(got, unit) {
			t.Errorf("the packaged imdsd.service is not packaging/gen's (%v):\n%s", err, got)
		}
	})

	t.Run("rpm", func(t *testing.T) {
		rpm := rpms[0]
		// One line a file: mode, owner/group, flags (c: config, n: noreplace), path.
		listing := run(t, "rpm", "-qp", "--queryformat", `[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]`, rpm)
		for path, want := range files {
			if !hasEntry(listing, path, want) {
				t.Errorf("rpm: no %s %s in\n%s", want, path, listing)
			}
		}
		for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
			f := strings.Fields(line)
			isConf := strings.HasPrefix(f[len(f)-1], "/etc/imdsd/") && f[0][0] == '-'
			if got := len(f) == 4 && strings.Contains(f[2], "c") && strings.Contains(f[2], "n"); got != isConf {
				t.Errorf("rpm: %q: config|noreplace = %v, want %v", line, got, isConf)
			}
		}
		if got := run(t, "rpm", "-qp", "--queryformat", "%{NAME} %{ARCH}\n", rpm); got != "imdsd x86_64\n" {
			t.Errorf("rpm name and arch = %q", got)
		}
		if req := run(t, "rpm", "-qp", "--requires", rpm); !strings.Contains(req, "iproute\n") {
			t.Errorf("rpm requires no iproute:\n%s", req)
		}
		scripts := map[string]string{}
		for name, tag := range map[string]string{"preinst": "PREIN", "postinst": "POSTIN", "prerm": "PREUN", "postrm": "POSTUN"} {
			scripts[name] = run(t, "rpm", "-qp", "--queryformat", "%{"+tag+"}\n", rpm)
		}
		checkScripts(t, scripts)
	})
}

// checkScripts: each maintainer script is there and does its part.
func checkScripts(t *testing.T, scripts map[string]string) {
	t.Helper()
	for name, want := range map[string][]string{
		"preinst":  {"useradd --system"},
		"postinst": {"[ ! -d /run/systemd/system ]", "systemctl daemon-reload", "check-config --no-dev", "try-restart"},
		"prerm":    {"systemctl stop imdsd.socket imdsd.service", "systemctl disable", "imdsd alias remove"},
		"postrm":   {"systemctl daemon-reload", "rm -rf /etc/imdsd"},
	} {
		for _, w := range want {
			if !strings.Contains(scripts[name], w) {
				t.Errorf("%s: no %q in\n%s", name, w, scripts[name])
			}
		}
	}
}

// hasEntry reports whether listing has a line starting with mode and owner
// (want) and ending with path.
func hasEntry(listing, path, want string) bool {
	mode, owner, _ := strings.Cut(want, " ")
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == mode && f[1] == owner && f[len(f)-1] == path {
			return true
		}
	}
	return false
}

// TestScriptsWithoutSystemd: in a container or chroot (no
// /run/systemd/system) the scripts start nothing, fail nothing, and say
// what to do.
func TestScriptsWithoutSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs here: the scripts would change this host")
	}
	for _, args := range [][]string{{"configure", ""}, {"1"}} {
		out := run(t, "sh", append([]string{"scripts/postinstall.sh"}, args...)...)
		if !strings.Contains(out, "not started (systemd is not running here)") || !strings.Contains(out, "systemctl enable --now imdsd") {
			t.Errorf("postinstall.sh %q: %q", args, out)
		}
	}
	for _, args := range [][]string{{"configure", "0.1.0-1"}, {"2"}, {"abort-upgrade", "0.1.0-1"}} {
		if out := run(t, "sh", append([]string{"scripts/postinstall.sh"}, args...)...); out != "" {
			t.Errorf("postinstall.sh %q (an upgrade): %q, want nothing", args, out)
		}
	}
	if out := run(t, "sh", "scripts/postremove.sh", "remove"); out != "" {
		t.Errorf("postremove.sh remove: %q", out)
	}
}

// run runs argv and returns its stdout; a failure fails the test.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
