package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imdsd/imdsd/rotator"
)

// Under systemd (Type=notify) imdsd reports READY=1 once credentials are
// held, and STOPPING=1 when it shuts down.
func TestSdNotify(t *testing.T) {
	conn := listenNotify(t)

	got := make(chan string, 8)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	next := func() string {
		select {
		case s := <-got:
			return s
		case <-time.After(5 * time.Second):
			return "(nothing within 5s)"
		}
	}
	t.Run("serve", func(t *testing.T) {
		runDaemon(t, defaultConfig(), &flaky{})
		if s := next(); s != "READY=1\nSTATUS=serving credentials" {
			t.Errorf("first notification = %q, want READY=1 and a status", s)
		}
	})
	// runDaemon's cleanup stopped the daemon.
	if s := next(); s != "STOPPING=1" {
		t.Errorf("notification at shutdown = %q, want STOPPING=1", s)
	}
}

// A source waiting for an MFA code from imdsd mfa reports ready (systemd
// would otherwise time the start out before anyone can type the code),
// with a status that says what to do.
func TestSdNotifyWaitingForMFA(t *testing.T) {
	conn := listenNotify(t)
	runDaemon(t, defaultConfig(), noCode{})
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1\nSTATUS=waiting for an MFA code: run imdsd mfa CODE" {
		t.Errorf("notification = %q, %v", buf[:n], err)
	}
}

// noCode is a source that waits for an MFA code forever.
type noCode struct{}

func (noCode) Fetch(context.Context) (rotator.Credentials, error) {
	return rotator.Credentials{}, fmt.Errorf("obtain MFA code for arn:aws:iam::123456789012:mfa/a: %w", rotator.ErrNoMFACode)
}

// listenNotify plays systemd's side of sd_notify for the test: a datagram
// socket named by NOTIFY_SOCKET, removed when the test ends.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "imdsd-notify-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}
