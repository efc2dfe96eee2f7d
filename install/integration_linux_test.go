//go:build integration && linux

package install_test

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/install"
	"github.com/imdsd/imdsd/internal/endpoint"
	"github.com/imdsd/imdsd/internal/roottest"
)

// netns creates a network namespace removed at cleanup and returns a Runner
// whose commands run inside it. The host's interfaces are never touched.
func netns(t *testing.T) (string, install.Runner) {
	t.Helper()
	ns := roottest.Netns(t)
	run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return install.ExecRunner(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	}
	return ns, run
}

// loAddrs is the output of `ip addr show dev lo` in the namespace.
func loAddrs(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ip", "addr", "show", "dev", "lo").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show dev lo: %v: %s", err, out)
	}
	return string(out)
}

func TestAliasInNetns(t *testing.T) {
	roottest.NeedRoot(t)
	ctx := context.Background()
	for _, tc := range []struct {
		ip   netip.Addr
		want string // as `ip addr show` prints it
	}{
		{endpoint.IMDSv4, "inet 169.254.169.254/32 scope global lo"},
		{endpoint.IMDSv6, "inet6 fd00:ec2::254/128 scope global nodad"},
		{endpoint.ContainerV4, "inet 169.254.170.23/32 scope global lo"},
		{endpoint.ContainerV6, "inet6 fd00:ec2::23/128 scope global nodad"},
	} {
		t.Run(tc.ip.String(), func(t *testing.T) {
			ns, run := netns(t)
			for i := range 2 { // the second time finds it there
				if err := install.AddAlias(ctx, run, tc.ip); err != nil {
					t.Fatalf("AddAlias #%d = %v", i+1, err)
				}
				if got := loAddrs(t, ns); !strings.Contains(got, tc.want) {
					t.Fatalf("after AddAlias #%d, lo has\n%s\nwant a line with %q", i+1, got, tc.want)
				}
			}
			// Not the fast path: the address is there, but the add runs
			// anyway when the listing cannot be read, and the kernel's
			// "already assigned" answer must count as success.
			noShow := func(ctx context.Context, name string, args ...string) ([]byte, error) {
				if strings.Contains(strings.Join(args, " "), " show ") {
					return nil, exec.ErrNotFound
				}
				return run(ctx, name, args...)
			}
			if err := install.AddAlias(ctx, noShow, tc.ip); err != nil {
				t.Fatalf("AddAlias with the address present and no listing = %v", err)
			}
			for i := range 2 {
				if err := install.RemoveAlias(ctx, run, tc.ip); err != nil {
					t.Fatalf("RemoveAlias #%d = %v", i+1, err)
				}
				if got := loAddrs(t, ns); strings.Contains(got, tc.ip.String()) {
					t.Fatalf("after RemoveAlias #%d, lo still has %s:\n%s", i+1, tc.ip, got)
				}
			}
			if err := install.RemoveAlias(ctx, noShow, tc.ip); err != nil {
				t.Fatalf("RemoveAlias with the address absent and no listing = %v", err)
			}
		})
	}
}

// TestAliasKeepsWiderPrefix: an aws-vault-style /24 alias is not ours; adding
// the /32 works next to it and removing the /32 leaves it.
func TestAliasKeepsWiderPrefix(t *testing.T) {
	roottest.NeedRoot(t)
	ctx := context.Background()
	ns, run := netns(t)
	if out, err := run(ctx, "ip", "addr", "add", "169.254.169.254/24", "dev", "lo"); err != nil {
		t.Fatalf("add /24: %v: %s", err, out)
	}
	if err := install.AddAlias(ctx, run, endpoint.IMDSv4); err != nil {
		t.Fatalf("AddAlias = %v", err)
	}
	if got := loAddrs(t, ns); !strings.Contains(got, "169.254.169.254/32") || !strings.Contains(got, "169.254.169.254/24") {
		t.Fatalf("lo has\n%s\nwant both /24 and /32", got)
	}
	if err := install.RemoveAlias(ctx, run, endpoint.IMDSv4); err != nil {
		t.Fatalf("RemoveAlias = %v", err)
	}
	if got := loAddrs(t, ns); strings.Contains(got, "169.254.169.254/32") || !strings.Contains(got, "169.254.169.254/24") {
		t.Fatalf("lo has\n%s\nwant only the /24", got)
	}
}

func TestAliasFailureNamesCommand(t *testing.T) {
	roottest.NeedRoot(t)
	// setpriv drops every capability: the real "Operation not permitted".
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	ns, _ := netns(t)
	unpriv := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		argv := append([]string{"netns", "exec", ns, "setpriv", "--inh-caps=-all", "--bounding-set=-all", name}, args...)
		return install.ExecRunner(ctx, "ip", argv...)
	}
	err := install.AddAlias(context.Background(), unpriv, endpoint.IMDSv4)
	if err == nil {
		t.Fatal("AddAlias without CAP_NET_ADMIN = nil, want an error")
	}
	t.Logf("AddAlias without CAP_NET_ADMIN: %v", err)
	for _, want := range []string{"add alias 169.254.169.254: ip addr add 169.254.169.254/32 dev lo: exit status 2:", "Operation not permitted", "run as root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("AddAlias error = %q, want it to contain %q", err, want)
		}
	}
}

// kardianosChildEnv tells the test binary it is the child of
// TestKardianosRendersGolden, in a private mount namespace.
const kardianosChildEnv = "IMDSD_TEST_KARDIANOS_OUT"

// TestKardianosRendersGolden installs the systemd service with the real
// kardianos/service Install, in a private mount namespace where
// /etc/systemd/system is an empty tmpfs and systemctl a no-op, and compares
// the unit it writes with the golden file the mirror renderer produced.
func TestKardianosRendersGolden(t *testing.T) {
	roottest.NeedRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	for golden := range install.LinuxGolden {
		t.Run(golden, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "imdsd.service")
			cmd := exec.Command("unshare", "--mount", "--propagation", "private",
				os.Args[0], "-test.run=^TestKardianosChild$", "-test.v")
			cmd.Env = append(os.Environ(), kardianosChildEnv+"="+out, "IMDSD_TEST_KARDIANOS_GOLDEN="+golden)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child: %v\n%s", err, b)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", golden))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("kardianos Install wrote\n%s\nwant testdata/%s:\n%s", got, golden, want)
			}
		})
	}
}

type noopProgram struct{}

func (noopProgram) Start(service.Service) error { return nil }
func (noopProgram) Stop(service.Service) error  { return nil }

func TestKardianosChild(t *testing.T) {
	out := os.Getenv(kardianosChildEnv)
	if out == "" {
		t.Skip("run by TestKardianosRendersGolden only")
	}
	if err := syscall.Mount("tmpfs", "/etc/systemd/system", "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on /etc/systemd/system: %v", err)
	}
	// Fake systemctl (enable, daemon-reload) and rpm-ostree, whose presence
	// makes kardianos detect systemd without a running systemd.
	bin := t.TempDir()
	for _, name := range []string{"systemctl", "rpm-ostree"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	var sys service.System
	for _, s := range service.AvailableSystems() {
		if s.String() == "linux-systemd" {
			sys = s
		}
	}
	if sys == nil {
		t.Fatal("kardianos has no linux-systemd system")
	}
	service.ChooseSystem(sys)
	g := install.LinuxGolden[os.Getenv("IMDSD_TEST_KARDIANOS_GOLDEN")]
	cfg := install.ServiceConfig("/usr/local/bin/imdsd", g.Args, g.ServiceOptions)
	s, err := service.New(noopProgram{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Install(); err != nil {
		t.Fatalf("Install: %v", err)
	}
	b, err := os.ReadFile("/etc/systemd/system/imdsd.service")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
