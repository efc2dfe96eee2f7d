package install

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imdsd/imdsd/systemd"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./install -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test ./install -update accepts it):\n%s", path, diff)
	}
}

// The install each golden file records.
var (
	unixExe    = "/usr/local/bin/imdsd"
	unixArgs   = []string{"--config", "/etc/imdsd/config.yaml"}
	darwinArgs = []string{"--config", "/usr/local/etc/imdsd/config.yaml"}
	winExe     = `C:\Program Files\imdsd\imdsd.exe`
	winArgs    = []string{"--config", `C:\ProgramData\imdsd\config.yaml`}
)

func TestGolden(t *testing.T) {
	tests := []struct {
		file   string
		render func() (string, error)
	}{
		{"linux-imdsd.service.golden", func() (string, error) {
			return renderSystemdUnit(serviceConfig("linux", unixExe, unixArgs, ServiceOptions{}), unixExe)
		}},
		{"linux-ipv6-socket-imdsd.service.golden", func() (string, error) {
			o := ServiceOptions{IPv6: true, SocketActivation: true}
			return renderSystemdUnit(serviceConfig("linux", unixExe, unixArgs, o), unixExe)
		}},
		{"linux-ipv6-socket-imdsd.socket.golden", func() (string, error) {
			return systemd.Socket(systemd.Options{IPv6: true, SocketActivation: true}), nil
		}},
		{"darwin-imdsd.plist.golden", func() (string, error) {
			return renderLaunchdPlist(serviceConfig("darwin", unixExe, darwinArgs, ServiceOptions{}), unixExe)
		}},
		{"windows-service.golden", func() (string, error) {
			return windowsGoldenHeader + renderWindowsService(serviceConfig("windows", winExe, winArgs, ServiceOptions{}), winExe), nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := tc.render()
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			golden(t, tc.file, got)
		})
	}
}

func TestServiceConfig(t *testing.T) {
	tests := []struct {
		goos     string
		o        ServiceOptions
		wantUser string
		// options that must be set, by key
		wantOpts []string
	}{
		{"linux", ServiceOptions{}, "imdsd", []string{"SystemdScript", "Restart"}},
		{"linux", ServiceOptions{UserName: "alice"}, "alice", []string{"SystemdScript"}},
		{"darwin", ServiceOptions{}, "", []string{"LaunchdConfig", "RunAtLoad"}},
		{"windows", ServiceOptions{}, `NT AUTHORITY\LocalService`, []string{"OnFailure", "OnFailureDelayDuration", "OnFailureResetPeriod", "StartType"}},
		{"windows", ServiceOptions{UserName: `.\imdsd`}, `.\imdsd`, nil},
	}
	for _, tc := range tests {
		c := serviceConfig(tc.goos, "/x/imdsd", []string{"-v"}, tc.o)
		if c.Name != "imdsd" || c.Executable != "/x/imdsd" {
			t.Errorf("%s: Name, Executable = %q, %q, want imdsd, /x/imdsd", tc.goos, c.Name, c.Executable)
		}
		if diff := cmp.Diff([]string{"run", "-v"}, c.Arguments); diff != "" {
			t.Errorf("%s: Arguments (-want +got):\n%s", tc.goos, diff)
		}
		if c.UserName != tc.wantUser {
			t.Errorf("%s %+v: UserName = %q, want %q", tc.goos, tc.o, c.UserName, tc.wantUser)
		}
		for _, k := range tc.wantOpts {
			if _, ok := c.Option[k]; !ok {
				t.Errorf("%s: Option[%q] not set", tc.goos, k)
			}
		}
	}
}

// TestSystemdAnalyzeVerify runs `systemd-analyze verify` on the units of
// each variant, rendered with a real executable (verify checks ExecStart=).
// Any output is a failure: verify exits 0 on unknown keys and only warns.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): the units are not verified")
	}
	for _, o := range []ServiceOptions{{}, {IPv6: true}, {SocketActivation: true}, {IPv6: true, SocketActivation: true}} {
		t.Run(fmt.Sprintf("ipv6=%v,socket=%v", o.IPv6, o.SocketActivation), func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "bin dir", "imdsd") // a space, as cmdEscape must handle
			if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			unit, err := renderSystemdUnit(serviceConfig("linux", exe, []string{"--config", "/etc/imdsd/config.yaml"}, o), exe)
			if err != nil {
				t.Fatal(err)
			}
			files := []string{filepath.Join(dir, "imdsd.service")}
			if err := os.WriteFile(files[0], []byte(unit), 0o644); err != nil {
				t.Fatal(err)
			}
			if o.SocketActivation {
				files = append(files, filepath.Join(dir, "imdsd.socket"))
				sock := systemd.Socket(systemd.Options{IPv6: o.IPv6, SocketActivation: true})
				if err := os.WriteFile(files[1], []byte(sock), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, files...)...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s\n--- unit ---\n%s", err, out, unit)
			}
		})
	}
}
