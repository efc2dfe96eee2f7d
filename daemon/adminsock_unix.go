//go:build !windows

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// defaultAdminSocket is where the admin socket lives: systemd's
// RuntimeDirectory when run by the unit, /run/imdsd for root, else the
// user's runtime directory.
func defaultAdminSocket(getenv func(string) string) string {
	if dir := getenv("RUNTIME_DIRECTORY"); dir != "" {
		return filepath.Join(strings.Split(dir, ":")[0], "admin.sock")
	}
	if os.Geteuid() == 0 {
		if runtime.GOOS == "darwin" {
			return "/var/run/imdsd/admin.sock"
		}
		return "/run/imdsd/admin.sock"
	}
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "imdsd", "admin.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("imdsd-%d", os.Geteuid()), "admin.sock")
}

// listenAdmin creates the socket readable and writable by this user only
// (0600, in a directory of 0700 when imdsd creates it), replacing a stale
// socket left by a crash but never one a live daemon answers on.
func listenAdmin(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if conn, err := net.Dial("unix", path); err == nil {
		conn.Close()
		return nil, errors.New("another imdsd is already serving its admin API there; stop it or set admin_socket")
	}
	_ = os.Remove(path)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func cleanupAdmin(path string) { _ = os.Remove(path) }

// dialAdmin connects to the admin socket.
func dialAdmin(path string) (func(context.Context) (net.Conn, error), string, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, "", fmt.Errorf("no admin socket at %s: is imdsd running? (%w)", path, err)
	}
	var d net.Dialer
	return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "unix", path) }, "http://imdsd", nil
}

// adminToken is only used on Windows.
const adminToken = ""
