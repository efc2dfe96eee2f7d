//go:build integration && linux

package daemon

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsd/imdsd/internal/roottest"
)

// The admin socket between users, with the real binary run as other uids
// through setpriv. Privileged (they chown files to other users and switch
// uids), so behind the integration tag like the other root tests; run as
// root with
//
//	IMDSD_TEST_ROOT=1 go test -tags integration -run AdminUsers ./daemon/
//
// Everything happens under a private directory: a world-writable sticky
// tmp standing in for /tmp (TMPDIR of every user), and a root-owned run
// standing in for /run. The real /tmp and /run are never used, so two
// runs of the suite do not meet.

// Users of these tests: numeric ids that need no account.
var (
	attacker = ids{uid: 61001, gid: 61001}
	victim   = ids{uid: 61002, gid: 61002}
	svcUser  = ids{uid: 61003, gid: 61010} // as DynamicUser with a static group imdsd
	member   = ids{uid: 61004, gid: 61004, groups: []int{61010}}
	outsider = ids{uid: 61005, gid: 61005}
	rootUser = ids{uid: 0, gid: 0}
)

type ids struct {
	uid, gid int
	groups   []int
}

// adminUsers is the private world of one test.
type adminUsers struct {
	t       *testing.T
	base    string // root's, 0755
	tmp     string // like /tmp: 1777
	run     string // like /run: root's, 0755
	bin     string
	setpriv string
}

func newAdminUsers(t *testing.T) *adminUsers {
	t.Helper()
	roottest.NeedRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is needed to run imdsd as other users: %v", err)
	}
	base, err := os.MkdirTemp("", "imdsd-users-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	u := &adminUsers{t: t, base: base, tmp: filepath.Join(base, "tmp"), run: filepath.Join(base, "run"), setpriv: setpriv}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{base, 0o755}, {u.tmp, 0o777 | os.ModeSticky}, {u.run, 0o755}} {
		if err := os.MkdirAll(d.path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	u.bin = filepath.Join(base, "imdsd")
	if src := os.Getenv("IMDSD_BIN"); src != "" {
		// A copy: IMDSD_BIN may lie where other users cannot reach it.
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(u.bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	} else if out, err := exec.Command("go", "build", "-o", u.bin, "../cmd/imdsd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return u
}

// mkdir makes dir owned by who with mode.
func (u *adminUsers) mkdir(dir string, who ids, mode os.FileMode) string {
	u.t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		u.t.Fatal(err)
	}
	if err := os.Chown(dir, who.uid, who.gid); err != nil {
		u.t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		u.t.Fatal(err)
	}
	return dir
}

// command is imdsd args run as who, with TMPDIR the private tmp and no
// XDG_RUNTIME_DIR.
func (u *adminUsers) command(who ids, env []string, args ...string) *exec.Cmd {
	cmd := u.as(who, u.bin, args...)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// as is the program prog run as who.
func (u *adminUsers) as(who ids, prog string, args ...string) *exec.Cmd {
	pargs := []string{"--reuid=" + strconv.Itoa(who.uid), "--regid=" + strconv.Itoa(who.gid)}
	if len(who.groups) == 0 {
		pargs = append(pargs, "--clear-groups")
	} else {
		var gs []string
		for _, g := range who.groups {
			gs = append(gs, strconv.Itoa(g))
		}
		pargs = append(pargs, "--groups="+strings.Join(gs, ","))
	}
	cmd := exec.Command(u.setpriv, append(append(pargs, "--", prog), args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "TMPDIR=" + u.tmp}
	cmd.Dir = u.base
	return cmd
}

// imdsd runs a client command as who and returns its exit code and output.
func (u *adminUsers) imdsd(who ids, args ...string) (int, string, string) {
	u.t.Helper()
	cmd := u.command(who, nil, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		u.t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// daemonProc is an imdsd run started as another user.
type daemonProc struct {
	cmd    *exec.Cmd
	line   chan string   // the export line, once
	done   chan struct{} // closed when it exited
	stderr *syncBuffer
}

// start runs imdsd run as who with a dev source on a free port.
func (u *adminUsers) start(who ids, env []string, args ...string) *daemonProc {
	u.t.Helper()
	cmd := u.command(who, env, append([]string{"run", "--source", "dev", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	p := &daemonProc{cmd: cmd, line: make(chan string, 1), done: make(chan struct{}), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		u.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "export AWS_EC2_METADATA_SERVICE_ENDPOINT=") {
				p.line <- sc.Text()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.done)
	}()
	u.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
	})
	return p
}

// serving waits until p prints its endpoint (its admin socket listens by
// then), failing if it exits first.
func (p *daemonProc) serving(t *testing.T) {
	t.Helper()
	select {
	case <-p.line:
	case <-p.done:
		t.Fatalf("imdsd run exited with %v before serving:\n%s", p.cmd.ProcessState, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("imdsd run did not serve within 30s:\n%s", p.stderr)
	}
}

// refused waits until p exits, failing if it serves instead; it returns
// the exit code.
func (p *daemonProc) refused(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-p.line:
		t.Errorf("imdsd run serves; want it to refuse the admin socket:\n%s", p.stderr)
	case <-time.After(30 * time.Second):
		t.Errorf("imdsd run neither served nor exited within 30s:\n%s", p.stderr)
	}
	return -1
}

// Another user pre-creates the directory a user's imdsd would use without
// XDG_RUNTIME_DIR (TMPDIR/imdsd-UID) and serves a fake admin socket there:
// that user's imdsd creds, status, reload and mfa refuse it, naming the
// directory and its owner, and print none of the other user's keys; the
// user's own imdsd run refuses to start there, naming --admin-socket.
func TestAdminUsersPrecreatedDirectory(t *testing.T) {
	u := newAdminUsers(t)
	dir := u.mkdir(filepath.Join(u.tmp, "imdsd-"+strconv.Itoa(victim.uid)), attacker, 0o755)
	fake := u.start(attacker, nil, "--admin-socket", filepath.Join(dir, "admin.sock"))
	fake.serving(t)
	// The attacker opens their socket to everyone, as a fake would be.
	if out, err := u.as(attacker, "/bin/chmod", "0666", filepath.Join(dir, "admin.sock")).CombinedOutput(); err != nil {
		t.Fatalf("chmod as the attacker: %v\n%s", err, out)
	}

	want := "trust admin socket " + filepath.Join(dir, "admin.sock") + ": directory " + dir + " belongs to uid 61001, neither root nor this user (uid 61002), and root did not place it"
	for _, args := range [][]string{{"creds", "--format", "process"}, {"status"}, {"reload"}, {"mfa", "123456"}} {
		code, out, errOut := u.imdsd(victim, args...)
		if code != exitPermission || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("imdsd %s as the victim: exit %d, stdout %q, stderr %q; want exit 4 and %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}
	// The same socket is the attacker's own: it answers them.
	if code, out, errOut := u.imdsd(attacker, "status", "--admin-socket", filepath.Join(dir, "admin.sock")); code != 0 {
		t.Errorf("imdsd status as the socket's owner: exit %d, %q, %q", code, out, errOut)
	}

	daemon := u.start(victim, nil)
	if code := daemon.refused(t); code != exitError || !strings.Contains(daemon.stderr.String(), "listen on admin socket "+filepath.Join(dir, "admin.sock")+": directory "+dir+" belongs to uid 61001, not to this user (uid 61002)") ||
		!strings.Contains(daemon.stderr.String(), "--admin-socket PATH") {
		t.Errorf("the victim's imdsd run in the attacker's directory: exit %d\n%s", code, daemon.stderr)
	}

	// The case: a directory of mode 0777, made by another user
	// before the victim's daemon starts.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	daemon = u.start(victim, nil)
	if code := daemon.refused(t); code != exitError || !strings.Contains(daemon.stderr.String(), "directory "+dir+" is writable by others (mode 0777)") {
		t.Errorf("the victim's imdsd run in a directory of 0777: exit %d\n%s", code, daemon.stderr)
	}
	if code, out, errOut := u.imdsd(victim, "creds", "--format", "process"); code != exitPermission || out != "" || !strings.Contains(errOut, "directory "+dir+" is writable by others (mode 0777)") {
		t.Errorf("imdsd creds in a directory of 0777: exit %d, %q, %q", code, out, errOut)
	}

	// The victim's own directory: their imdsd serves, their clients use it.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	daemon = u.start(victim, nil)
	daemon.serving(t)
	if code, out, errOut := u.imdsd(victim, "creds"); code != 0 || !strings.Contains(out, ", key ****") {
		t.Errorf("imdsd creds against the victim's own daemon: exit %d, %q, %q", code, out, errOut)
	}
}

// The legitimate shared case: the service user's socket in a runtime
// directory root made for it (systemd's RuntimeDirectory=imdsd, mode 0750,
// group imdsd). A member of the group runs imdsd status; root too; anyone
// else gets "permission denied" (exit 4), not "is imdsd running?".
func TestAdminUsersServiceGroup(t *testing.T) {
	u := newAdminUsers(t)
	rt := u.mkdir(filepath.Join(u.run, "imdsd"), svcUser, 0o750)
	sock := filepath.Join(rt, "admin.sock")
	d := u.start(svcUser, []string{"RUNTIME_DIRECTORY=" + rt})
	d.serving(t)
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || st.Uid != uint32(svcUser.uid) || st.Gid != uint32(svcUser.gid) {
		t.Errorf("socket %v owned by %d:%d, want 0660 of %d:%d (the directory's group may connect)", fi.Mode(), st.Uid, st.Gid, svcUser.uid, svcUser.gid)
	}
	for _, who := range []ids{member, rootUser} {
		if code, out, errOut := u.imdsd(who, "status", "--admin-socket", sock); code != 0 || !strings.Contains(out, "serving valid credentials") {
			t.Errorf("imdsd status as uid %d: exit %d, %q, %q", who.uid, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"status"}, {"creds"}, {"reload"}, {"mfa", "123456"}} {
		code, out, errOut := u.imdsd(outsider, append(args, "--admin-socket", sock)...)
		if code != exitPermission || out != "" || !strings.Contains(errOut, "reach imdsd at "+sock+": permission denied") || strings.Contains(errOut, "is imdsd running") {
			t.Errorf("imdsd %s as a user outside the group: exit %d, %q, %q; want exit 4, permission denied", args[0], code, out, errOut)
		}
	}
}

// A socket that passes every check of the file system but is answered by
// another user's process (here moved into place by root): the client asks
// the kernel who answers (SO_PEERCRED) and refuses.
func TestAdminUsersPeerCredentials(t *testing.T) {
	u := newAdminUsers(t)
	att := u.mkdir(filepath.Join(u.run, "attacker"), attacker, 0o700)
	fake := u.start(attacker, nil, "--admin-socket", filepath.Join(att, "admin.sock"))
	fake.serving(t)
	vic := u.mkdir(filepath.Join(u.run, "victim"), victim, 0o700)
	sock := filepath.Join(vic, "admin.sock")
	if err := os.Rename(filepath.Join(att, "admin.sock"), sock); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(sock, victim.uid, victim.gid); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := u.imdsd(victim, "creds", "--format", "process", "--admin-socket", sock)
	want := "trust admin socket " + sock + ": the process answering runs as uid 61001, neither root, this user (uid 61002) nor the socket's owner (uid 61002)"
	if code != exitPermission || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("imdsd creds against another user's process: exit %d, stdout %q, stderr %q; want exit 4 and %q", code, out, errOut, want)
	}
}

// Two imdsd run as root on one admin socket (make run while the service
// runs would share /run/imdsd/admin.sock): the second exits at once,
// naming the first's pid and --admin-socket.
func TestAdminUsersSecondDaemon(t *testing.T) {
	u := newAdminUsers(t)
	sock := filepath.Join(u.mkdir(filepath.Join(u.run, "imdsd"), rootUser, 0o755), "admin.sock")
	first := u.start(rootUser, nil, "--admin-socket", sock)
	first.serving(t)
	second := u.start(rootUser, nil, "--admin-socket", sock)
	// setpriv execs imdsd: the first's pid is setpriv's.
	want := "another imdsd (pid " + strconv.Itoa(first.cmd.Process.Pid) + ") is serving its admin API there; stop it, or give this imdsd its own socket with --admin-socket PATH"
	if code := second.refused(t); code != exitError || !strings.Contains(second.stderr.String(), want) {
		t.Errorf("second imdsd run on %s: exit %d\n%s", sock, code, second.stderr)
	}
	if code, _, errOut := u.imdsd(rootUser, "status", "--admin-socket", sock); code != 0 {
		t.Errorf("status of the first after the second gave up: exit %d, %q", code, errOut)
	}
}
