//go:build !windows

package daemon

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Every admin command ends the same way in the same case: 3 when no imdsd
// answers, 4 when the socket refuses this user or cannot be trusted, with
// messages that say which.
func TestAdminExitCodes(t *testing.T) {
	dir := tempDir(t, "imdsd-codes-")
	missing := filepath.Join(dir, "missing", "admin.sock")
	stale := filepath.Join(dir, "stale", "admin.sock")
	if err := os.Mkdir(filepath.Dir(stale), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket stays, nothing listens: a crashed imdsd
	open := filepath.Join(dir, "open", "admin.sock")
	if err := os.Mkdir(filepath.Dir(open), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(open), 0o777); err != nil { // not left to the umask
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain", "admin.sock")
	if err := os.Mkdir(filepath.Dir(plain), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, sock string
		code       int
		msg        string
	}{
		{"no socket", missing, exitUnreachable, "no admin socket at " + missing + ": is imdsd running?"},
		{"stale socket", stale, exitUnreachable, "reach imdsd at " + stale + ": nothing answers (a socket left by an imdsd that stopped); is imdsd running?"},
		{"directory writable by others", open, exitPermission, "trust admin socket " + open + ": directory " + filepath.Dir(open) + " is writable by others (mode 0777)"},
		{"not a socket", plain, exitPermission, "trust admin socket " + plain + ": it is not a socket"},
	}
	for _, tc := range cases {
		for _, args := range [][]string{{"status"}, {"creds"}, {"creds", "--format", "process"}, {"reload"}, {"mfa", "123456"}} {
			t.Run(tc.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				var out, errOut bytes.Buffer
				code := run(t.Context(), append(args, "--admin-socket", tc.sock), noEnv, &out, &errOut)
				if code != tc.code || !strings.Contains(errOut.String(), tc.msg) || out.Len() != 0 {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out.String(), errOut.String(), tc.code, tc.msg)
				}
			})
		}
	}
}

// The daemon listens only where no other user can put a socket in its
// place, and never on a socket another imdsd serves.
func TestAdminSocketRefusedByDaemon(t *testing.T) {
	dir := tempDir(t, "imdsd-unsafe-")
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	// A world-writable directory without the sticky bit above the
	// socket's: anyone may rename the socket's directory away.
	above := filepath.Join(dir, "above")
	if err := os.MkdirAll(filepath.Join(above, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(above, 0o777); err != nil {
		t.Fatal(err)
	}
	sticky := filepath.Join(dir, "sticky")
	if err := os.MkdirAll(filepath.Join(sticky, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(open, "admin.sock"), "directory " + open + " is writable by others (mode 0777): another user could put a socket of theirs in its place; give this imdsd its own socket with --admin-socket PATH"},
		{filepath.Join(above, "run", "admin.sock"), "directory " + above + " on the way to it is writable by others (mode 0777) and not sticky"},
	} {
		ln, err := listenAdmin(tc.path)
		if err == nil {
			ln.Close()
			t.Errorf("listenAdmin(%s) = nil error", tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("listenAdmin(%s) = %v, want %q", tc.path, err, tc.want)
		}
	}
	// Sticky like /tmp: fine above the socket's directory.
	ln, err := listenAdmin(filepath.Join(sticky, "run", "admin.sock"))
	if err != nil {
		t.Fatalf("listenAdmin under a sticky directory: %v", err)
	}
	ln.Close()
}

// The client's checks of the socket's directory, as a table: who may own
// it and what its mode and the directories above may be.
func TestCheckSocketDir(t *testing.T) {
	dir := tempDir(t, "imdsd-check-")
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := mk("private", 0o700)
	group := mk("group", 0o750)
	groupW := mk("groupw", 0o770)
	otherW := mk("otherw", 0o703)
	stickyW := mk("stickyw", 0o777|os.ModeSticky)
	euid := os.Geteuid()
	got := map[string]string{}
	for _, p := range []string{private, group, groupW, otherW, stickyW} {
		for _, client := range []bool{false, true} {
			_, owner, err := checkSocketDir(p, euid, client)
			res := "ok"
			if err != nil {
				res = err.Error()
			} else if owner != uint32(euid) {
				res = "wrong owner"
			}
			who := "daemon"
			if client {
				who = "client"
			}
			got[filepath.Base(p)+" "+who] = res
		}
	}
	writable := func(p string, mode string) string {
		return "directory " + p + " is writable by others (mode " + mode + "): another user could put a socket of theirs in its place"
	}
	want := map[string]string{
		"private daemon": "ok", "private client": "ok",
		"group daemon": "ok", "group client": "ok",
		"groupw daemon": writable(groupW, "0770"), "groupw client": writable(groupW, "0770"),
		"otherw daemon": writable(otherW, "0703"), "otherw client": writable(otherW, "0703"),
		// The socket's own directory may not be sticky-writable either:
		// anyone could create the socket's name before imdsd does.
		"stickyw daemon": writable(stickyW, "0777"), "stickyw client": writable(stickyW, "0777"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checkSocketDir (-want +got):\n%s", diff)
	}
}
