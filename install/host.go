package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/internal/endpoint"
)

// A Host is the machine an install changes, as its steps see it. Tests
// replace every field; LocalHost is this machine.
type Host struct {
	// GOOS selects the service manager: linux (systemd), darwin (launchd)
	// or windows (the service control manager).
	GOOS string
	// Platform is the service manager kardianos/service detected, such as
	// "linux-systemd"; an install on Linux needs systemd.
	Platform string
	// Run runs the commands of the steps (systemctl, the alias commands).
	Run Runner
	// NewService is kardianos's service.New.
	NewService func(service.Interface, *service.Config) (service.Service, error)
	// Root prefixes every path imdsd itself reads, writes or removes (the
	// tests' fake root); the files kardianos/service writes are its own.
	Root string
	// Executable is the imdsd to install when a Spec names none.
	Executable func() (string, error)
	// Euid is the effective user ID (os.Geteuid; -1 on Windows).
	Euid func() int
}

// LocalHost is this machine.
func LocalHost() Host {
	return Host{GOOS: runtime.GOOS, Platform: service.Platform(), Run: ExecRunner, NewService: service.New,
		Executable: Executable, Euid: os.Geteuid}
}

// Privileged reports whether this process may change the host: root, or
// on Windows anyone (the service control manager checks elevation).
func (h Host) Privileged() bool { return h.GOOS == "windows" || h.Euid() == 0 }

// Executable is this executable as the service must run it: absolute,
// with symlinks resolved (a package manager's /usr/bin link may move).
func Executable() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this executable: %w", err)
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		return "", fmt.Errorf("resolve this executable: %w", err)
	}
	return filepath.Abs(p)
}

// AliasAddrs parses the addresses of imdsd alias: args, else
// 169.254.169.254, plus fd00:ec2::254 with ipv6, plus with containers the
// container endpoint's 169.254.170.23 (and fd00:ec2::23 with ipv6). AddAlias
// and RemoveAlias refuse the addresses that are not link-local or
// unique-local.
func AliasAddrs(args []string, ipv6, containers bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	var errs []error
	for _, a := range args {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("address: must be an IP address such as 169.254.169.254 (got %q)", a))
			continue
		}
		addrs = append(addrs, ip)
	}
	if len(args) == 0 {
		addrs = append(addrs, endpoint.IMDSv4)
	}
	want := []netip.Addr{}
	if ipv6 {
		want = append(want, endpoint.IMDSv6)
	}
	if containers {
		want = append(want, endpoint.ContainerV4)
		if ipv6 {
			want = append(want, endpoint.ContainerV6)
		}
	}
	for _, ip := range want {
		if !slices.Contains(addrs, ip) {
			addrs = append(addrs, ip)
		}
	}
	return addrs, errors.Join(errs...)
}

// LogHint says where the service's log is.
func (h Host) LogHint() string {
	switch h.GOOS {
	case "darwin":
		return "/var/log/imdsd.err.log"
	case "windows":
		return "the Application event log (source imdsd)"
	}
	return "journalctl -u imdsd"
}

func (h Host) path(p string) string { return h.Root + p }

// Exists reports whether path exists on the host (under Root).
func (h Host) Exists(path string) bool { return h.exists(path) }

func (h Host) exists(p string) bool {
	_, err := os.Lstat(h.path(p))
	return err == nil
}

// fileState compares the file at p with content.
func (h Host) fileState(p, content string) (state, error) {
	b, err := os.ReadFile(h.path(p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return absent, nil
	case err != nil:
		return absent, fmt.Errorf("read %s: %w", p, err)
	case string(b) == content:
		return same, nil
	}
	return differs, nil
}

// writeFile writes a unit file, mode 0644 whatever the umask.
func (h Host) writeFile(p, content string) error {
	if err := os.WriteFile(h.path(p), []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Chmod(h.path(p), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// command runs argv through the host's Runner; its error names the
// command and carries its output.
func (h Host) command(ctx context.Context, name string, args ...string) error {
	out, err := h.Run(ctx, name, args...)
	if err != nil {
		argv := strings.Join(append([]string{name}, args...), " ")
		if o := strings.TrimSpace(string(out)); o != "" {
			return fmt.Errorf("%s: %w: %s", argv, err, o)
		}
		return fmt.Errorf("%s: %w", argv, err)
	}
	return nil
}
