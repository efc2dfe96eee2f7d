//go:build linux

package e2e

// Access control and the audit trail, end to end (README "Access control
// and audit"): two local users on one host, each allowed one role. The
// real Go SDK, boto3 and the AWS CLI run as each user (setpriv --reuid;
// numeric uids without accounts, which allow lists accept), with no
// variable but AWS_EC2_METADATA_SERVICE_ENDPOINT and
// AWS_EC2_METADATA_V1_DISABLED=true, and get their own role (the listing
// names it through default_roles) exactly as the fake STS issued it; a
// direct GET of the other user's role is 403; a third user, in no allow
// list, sees no role at all. The audit trail then holds exactly one line
// per credentials answer, each naming the uid, the pid of the process that
// asked and its executable, over IPv4 and IPv6.
//
// imdsd runs as root here, as a service with executable rules must: only
// root (or CAP_SYS_PTRACE) may read other users' /proc/PID/fd and exe.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// accessUsers are the uids of the test: A and B each allowed one role,
// C none. Each has no account (checked), so the trail names it by uid only.
type accessUsers struct{ a, b, c int }

// pickAccessUIDs returns three uids, from 47101 up, that name no user and
// no group on this host.
func pickAccessUIDs(t *testing.T) accessUsers {
	t.Helper()
	var free []int
	for id := 47101; id < 47200 && len(free) < 3; id++ {
		_, uerr := user.LookupId(strconv.Itoa(id))
		_, gerr := user.LookupGroupId(strconv.Itoa(id))
		var ue user.UnknownUserIdError
		var ge user.UnknownGroupIdError
		if errors.As(uerr, &ue) && errors.As(gerr, &ge) {
			free = append(free, id)
		}
	}
	if len(free) < 3 {
		t.Fatalf("found %d unused uids in 47101..47199, want 3", len(free))
	}
	return accessUsers{free[0], free[1], free[2]}
}

// accessProc is one client process run as a user, and what the audit trail
// must say of it.
type accessProc struct {
	what    string // e.g. "ipv6 uid 47101 boto3"
	family  string // "ipv4" or "ipv6"
	uid     int
	pid     int
	exe     string
	role    string
	allowed bool // one answer with credentials (200), else one refusal (403)
	key     string
	start   time.Time
	end     time.Time
}

// accessSetup is the shared state of TestAccessTwoUsers.
type accessSetup struct {
	setpriv, curl string
	users         accessUsers
	// shared is a 0755 directory that every test user may read: the
	// copies of the Go client (this test binary) and the boto3 script,
	// and the users' HOMEs (each 0700 and its user's).
	shared string
	goBin  string
	script string

	mu    sync.Mutex
	procs []accessProc
	homes int
}

// home makes an empty HOME owned by uid, readable by it only.
func (s *accessSetup) home(t *testing.T, uid int) string {
	t.Helper()
	s.mu.Lock()
	s.homes++
	dir := filepath.Join(s.shared, fmt.Sprintf("home-%d-%d", uid, s.homes))
	s.mu.Unlock()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runAs runs argv as uid (setpriv: real and effective uid and gid, no
// supplementary groups; setpriv execs, so the pid started is the client's)
// with exactly env, in home, bounded by clientTimeout.
func (s *accessSetup) runAs(t *testing.T, uid int, home string, env, argv []string) (clientRun, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	full := append([]string{
		"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(uid), "--clear-groups",
		// Changing the uid clears the parent-death signal; keep it.
		"--pdeathsig=keep", "--",
	}, argv...)
	cmd := exec.CommandContext(ctx, s.setpriv, full...)
	cmd.Env = env
	cmd.Dir = home
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	dieWithParent(cmd)
	r := clientRun{Start: time.Now()}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v as uid %d: %v", argv, uid, err)
	}
	pid := cmd.Process.Pid
	r.Err = cmd.Wait()
	r.End = time.Now()
	if ctx.Err() != nil {
		r.Err = fmt.Errorf("%s: killed after %v: %w", argv[0], clientTimeout, errors.Join(r.Err, ctx.Err()))
	}
	r.Stdout, r.Stderr = stdout.Bytes(), stderr.Bytes()
	return r, pid
}

func (s *accessSetup) expect(p accessProc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
}

// shareCopy copies src into the shared directory as name, mode 0755.
func (s *accessSetup) shareCopy(t *testing.T, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(s.shared, name)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return dst
}

// interpreter is the executable the kernel reports for a script: its
// #! interpreter, symlinks resolved (/usr/bin/python3 → python3.11).
func interpreter(t *testing.T, script string) string {
	t.Helper()
	f, err := os.Open(script)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "#!") {
		t.Fatalf("%s: no #! line (%v)", script, err)
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if len(fields) == 0 || fields[0] == "/usr/bin/env" {
		t.Fatalf("%s: #! line %q names no absolute interpreter", script, strings.TrimSpace(line))
	}
	return realPath(t, fields[0])
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// accessConfig is the config file: roles team-a (user A) and team-b (user
// B), each from its own AssumeRole, default_roles mapping each user to its
// role, the audit trail, and listeners on IPv4 and IPv6 loopback.
func accessConfig(e *rolesEnv, u accessUsers, auditLog string) string {
	return "listen: [127.0.0.1:0, \"[::1]:0\"]\n" +
		"token_mode: required\n" +
		"region: " + rolesRegion + "\n" +
		"sts_endpoint: " + e.sts.URL + "\n" +
		"sts_region: us-east-1\n" +
		"audit_log: " + auditLog + "\n" +
		"default_roles:\n" +
		fmt.Sprintf("  - {users: [%d], role: team-a}\n", u.a) +
		fmt.Sprintf("  - {users: [%d], role: team-b}\n", u.b) +
		"roles:\n" +
		roleItem("team-a", "source: assume-role", "role_arn: "+roleAlphaARN, fmt.Sprintf("allow: {users: [%d]}", u.a)) +
		roleItem("team-b", "source: assume-role", "role_arn: "+roleDeltaARN, fmt.Sprintf("allow: {users: [%d]}", u.b))
}

// listenedOn finds the address the daemon bound for listen host (e.g.
// "::1") in its JSON log: the "listening" line each listener logs before
// the export line is printed.
func listenedOn(t *testing.T, d *daemon, host string) string {
	t.Helper()
	for line := range strings.SplitSeq(d.stderr.String(), "\n") {
		var l struct{ Message, Addr string }
		if json.Unmarshal([]byte(line), &l) != nil || l.Message != "listening" {
			continue
		}
		if h, _, err := net.SplitHostPort(l.Addr); err == nil && h == host {
			return "http://" + l.Addr + "/"
		}
	}
	t.Fatalf("imdsd logged no \"listening\" line for %s\nstderr:\n%s", host, d.stderr.String())
	return ""
}

// tokenAt obtains an IMDSv2 token from endpoint (as root: token requests
// are not tied to a user and are not audited).
func tokenAt(t *testing.T, endpoint string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint+"latest/api/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header[hdrTokenTTL] = []string{"600"}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("PUT token at %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT token at %s: %d %v", endpoint, resp.StatusCode, err)
	}
	return string(b)
}

// accessRecord is one line of the audit trail as README documents it.
type accessRecord struct {
	Time     time.Time `json:"time"`
	Listener string    `json:"listener"`
	Role     string    `json:"role"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	Status   int       `json:"status"`
	Peer     string    `json:"peer"`
	UID      *int      `json:"uid"`
	User     string    `json:"user"`
	PID      int       `json:"pid"`
	Exe      string    `json:"exe"`
	Key      string    `json:"access_key_id_last4"`
}

// adminMetric reads one sample of the daemon's /metrics over its admin
// socket (as root); -1 when the series is absent.
func adminMetric(t *testing.T, sock, series string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Get("http://imdsd/metrics")
	if err != nil {
		t.Fatalf("GET /metrics on %s: %v", sock, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("metric %s = %q", series, v)
			}
			return n
		}
	}
	return -1
}

// TestAccessTwoUsers: see the top of this file.
func TestAccessTwoUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("SKIPPED, NOT RUN: the access-control e2e test needs root (setpriv --reuid to run clients as other users; "+
			"imdsd must read other users' /proc/PID/fd and exe); running as euid %d", os.Geteuid())
	}
	t.Parallel()
	s := &accessSetup{
		setpriv: firstExecutable(t, "apt-get install -y util-linux", "/usr/bin/setpriv", "/bin/setpriv"),
		curl:    firstExecutable(t, "apt-get install -y curl", "/usr/bin/curl"),
		users:   pickAccessUIDs(t),
	}
	u := s.users
	var err error
	if s.shared, err = os.MkdirTemp("", "imdsd-e2e-access-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(s.shared) })
	if err := os.Chmod(s.shared, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary is the Go SDK client (TestMain's helper mode); go
	// test keeps it in a directory only root may enter.
	s.goBin = s.shareCopy(t, self, "e2e.test")
	botoArgv := boto3.argv(t)
	s.script = s.shareCopy(t, botoArgv[len(botoArgv)-1], "boto3_creds.py")
	cliArgv := awsCLI.argv(t)

	type realClient struct {
		client
		argv []string
		exe  string // what /proc/PID/exe of the client reads
	}
	clients := []realClient{
		{goSDK, []string{s.goBin, "-test.run=^$"}, s.goBin},
		{boto3, append(botoArgv[:len(botoArgv)-1:len(botoArgv)-1], s.script), realPath(t, botoArgv[0])},
		{awsCLI, cliArgv, interpreter(t, cliArgv[0])},
	}
	curlExe := realPath(t, s.curl)

	e := newRolesEnv(t)
	auditLog := filepath.Join(t.TempDir(), "audit.log") // a 0700 directory of root's
	if err := os.WriteFile(e.config, []byte(accessConfig(e, u, auditLog)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := e.start(t, "team-a")
	endpoints := map[string]string{"ipv4": d.Endpoint, "ipv6": listenedOn(t, d, "::1")}
	t.Logf("uids A %d, B %d, C %d; IMDS at %s and %s", u.a, u.b, u.c, endpoints["ipv4"], endpoints["ipv6"])

	// What each role must serve: the set the fake STS issued for it, and
	// what `imdsd creds --role R --format process` says as root.
	want := map[string]creds{
		"team-a": e.onlyIssued(t, roleAlphaARN, "AssumeRole"),
		"team-b": e.onlyIssued(t, roleDeltaARN, "AssumeRole"),
	}
	for role, w := range want {
		r := imdsdCmd(t, e.adminSock, "creds", "--role", role, "--format", "process")
		var p struct{ AccessKeyId, SecretAccessKey, SessionToken string }
		if r.Err != nil || json.Unmarshal(r.Stdout, &p) != nil {
			t.Fatalf("imdsd creds --role %s --format process: %v\n%s", role, r.Err, r.Stderr)
		}
		if p.AccessKeyId != w.AccessKeyID || p.SecretAccessKey != w.SecretAccessKey || p.SessionToken != w.SessionToken {
			t.Fatalf("imdsd creds --role %s differs from what STS issued for it: %s", role, redactedDiff(creds{p.AccessKeyId, p.SecretAccessKey, p.SessionToken, time.Time{}}, w))
		}
	}
	if w := want["team-a"]; w.AccessKeyID == want["team-b"].AccessKeyID {
		t.Fatal("test setup: both roles were issued the same key")
	}
	// Root is in neither allow list: its default (team-a, the first) is
	// not for it, so it is listed nothing.
	if code, _, body := d.do(t, http.MethodGet, "/latest/meta-data/iam/security-credentials/", map[string]string{hdrToken: d.token(t)}); code != http.StatusNotFound {
		t.Errorf("listing as root (in no allow list) = %d %q, want 404", code, body)
	}

	roleOf := map[int]string{u.a: "team-a", u.b: "team-b"}
	other := map[int]string{u.a: "team-b", u.b: "team-a"}
	envFor := func(home, endpoint string, extra []string) []string {
		return append([]string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8",
			"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + endpoint, "AWS_EC2_METADATA_V1_DISABLED=true"}, extra...)
	}
	// curlAs GETs path as uid with a token and returns the status.
	curlAs := func(t *testing.T, uid int, endpoint, token, path string) (int, clientRun, int) {
		t.Helper()
		home := s.home(t, uid)
		r, pid := s.runAs(t, uid, home, envFor(home, endpoint, nil), []string{s.curl, "--silent", "--show-error",
			"--noproxy", "*", "--max-time", "5", "--output", "/dev/null", "--write-out", "%{http_code}",
			"--header", hdrToken + ": " + token, strings.TrimSuffix(endpoint, "/") + path})
		if r.Err != nil {
			t.Fatalf("curl %s as uid %d: %v\n%s", path, uid, r.Err, r.Stderr)
		}
		code, err := strconv.Atoi(string(r.Stdout))
		if err != nil {
			t.Fatalf("curl %s: printed %q, want a status", path, r.Stdout)
		}
		return code, r, pid
	}
	const credsPath = "/latest/meta-data/iam/security-credentials/"

	for _, family := range []string{"ipv4", "ipv6"} {
		endpoint := endpoints[family]
		t.Run(family, func(t *testing.T) {
			token := tokenAt(t, endpoint)
			for _, uid := range []int{u.a, u.b} {
				t.Run(fmt.Sprintf("uid-%d", uid), func(t *testing.T) {
					t.Parallel()
					mine, w := roleOf[uid], want[roleOf[uid]]
					// The real clients: the listing names this user's
					// role, and they get its credentials.
					for _, c := range clients {
						home := s.home(t, uid)
						r, pid := s.runAs(t, uid, home, envFor(home, endpoint, c.extraEnv), c.argv)
						if r.Err != nil {
							t.Fatalf("%s as uid %d: %v\nstderr:\n%s", c.name, uid, r.Err, r.Stderr)
						}
						got := c.parse(t, r.Stdout)
						d.noteSecret(got.SecretAccessKey, "SecretAccessKey (as "+c.name+" got it)")
						checkCreds(t, c.client, r, got.creds, w, w)
						s.expect(accessProc{what: fmt.Sprintf("%s uid %d %s", family, uid, c.name), family: family, uid: uid, pid: pid,
							exe: c.exe, role: mine, allowed: true, key: w.AccessKeyID, start: r.Start, end: r.End})
					}
					// By name: its own role 200, the other user's 403.
					for _, tc := range []struct {
						role string
						code int
					}{{mine, http.StatusOK}, {other[uid], http.StatusForbidden}} {
						code, r, pid := curlAs(t, uid, endpoint, token, credsPath+tc.role)
						if code != tc.code {
							t.Errorf("GET %s as uid %d = %d, want %d", credsPath+tc.role, uid, code, tc.code)
						}
						p := accessProc{what: fmt.Sprintf("%s uid %d curl %s", family, uid, tc.role), family: family, uid: uid, pid: pid,
							exe: curlExe, role: tc.role, allowed: tc.code == http.StatusOK, start: r.Start, end: r.End}
						if p.allowed {
							p.key = want[tc.role].AccessKeyID
						}
						s.expect(p)
					}
				})
			}
			// uid C is in no allow list and has no default role: the
			// listing names nothing (not audited: no credentials asked),
			// and either role is 403.
			t.Run(fmt.Sprintf("uid-%d", u.c), func(t *testing.T) {
				if code, _, _ := curlAs(t, u.c, endpoint, token, credsPath); code != http.StatusNotFound {
					t.Errorf("listing as uid %d (no role) = %d, want 404", u.c, code)
				}
				code, r, pid := curlAs(t, u.c, endpoint, token, credsPath+"team-a")
				if code != http.StatusForbidden {
					t.Errorf("GET %steam-a as uid %d = %d, want 403", credsPath, u.c, code)
				}
				s.expect(accessProc{what: fmt.Sprintf("%s uid %d curl team-a", family, u.c), family: family, uid: u.c, pid: pid,
					exe: curlExe, role: "team-a", start: r.Start, end: r.End})
			})
		})
	}
	if t.Failed() {
		return
	}

	// Every record was queued before its answer left (imds observes
	// before the handler returns); a reload reopens the trail, which
	// writes the queue out first, and `imdsd reload` returns after.
	reloadApplied(t, e.adminSock)
	trail, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(auditLog); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	for _, is := range e.sts.Issued() {
		for what, v := range map[string]string{"SecretAccessKey": is.SecretAccessKey, "SessionToken": is.SessionToken, "full AccessKeyId": is.AccessKeyID} {
			if bytes.Contains(trail, []byte(v)) {
				t.Errorf("the audit trail holds a %s", what)
			}
		}
	}
	var recs []accessRecord
	for i, line := range bytes.Split(bytes.TrimSuffix(trail, []byte("\n")), []byte("\n")) {
		var r accessRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit log line %d is not JSON: %v: %q", i+1, err, line)
		}
		recs = append(recs, r)
	}
	byPID := map[int][]accessRecord{}
	for _, r := range recs {
		byPID[r.PID] = append(byPID[r.PID], r)
	}
	s.mu.Lock()
	procs := s.procs
	s.mu.Unlock()
	if len(recs) != len(procs) {
		t.Errorf("the audit trail has %d lines, want %d: one per credentials answer", len(recs), len(procs))
	}
	for _, p := range procs {
		rs := byPID[p.pid]
		delete(byPID, p.pid)
		if len(rs) != 1 {
			t.Errorf("%s (pid %d): %d audit lines, want 1: %+v", p.what, p.pid, len(rs), rs)
			continue
		}
		r := rs[0]
		decision, reason, status, key := "refused", "not_allowed", http.StatusForbidden, ""
		if p.allowed {
			decision, reason, status, key = "allowed", "served", http.StatusOK, p.key[len(p.key)-4:]
		}
		peer, err := netip.ParseAddrPort(r.Peer)
		wantPeer := map[string]netip.Addr{"ipv4": netip.MustParseAddr("127.0.0.1"), "ipv6": netip.IPv6Loopback()}[p.family]
		switch {
		case r.UID == nil || *r.UID != p.uid:
			t.Errorf("%s: audit uid %v, want %d: %+v", p.what, r.UID, p.uid, r)
		case r.User != "":
			t.Errorf("%s: audit user %q, want none (uid %d has no account)", p.what, r.User, p.uid)
		case r.Exe != p.exe:
			t.Errorf("%s: audit exe %q, want %q", p.what, r.Exe, p.exe)
		case r.Listener != "imds" || r.Role != p.role || r.Decision != decision || r.Reason != reason || r.Status != status || r.Key != key:
			t.Errorf("%s: audit listener/role/decision/reason/status/key = %s/%s/%s/%s/%d/%q, want imds/%s/%s/%s/%d/%q",
				p.what, r.Listener, r.Role, r.Decision, r.Reason, r.Status, r.Key, p.role, decision, reason, status, key)
		case err != nil || peer.Addr() != wantPeer:
			t.Errorf("%s: audit peer %q, want %v:PORT", p.what, r.Peer, wantPeer)
		case r.Time.Before(p.start) || r.Time.After(p.end):
			t.Errorf("%s: audit time %v outside the process's run [%v, %v]", p.what, r.Time, p.start, p.end)
		}
	}
	for pid, rs := range byPID {
		t.Errorf("audit lines of pid %d, which is none of the clients: %+v", pid, rs)
	}

	// The metrics count the same refusals.
	refused := map[string]int{}
	for _, p := range procs {
		if !p.allowed {
			refused[p.role]++
		}
	}
	for _, role := range []string{"team-a", "team-b"} {
		series := fmt.Sprintf("imdsd_access_refusals_total{role=%q,reason=%q}", role, "not_allowed")
		if n := adminMetric(t, e.adminSock, series); n != refused[role] {
			t.Errorf("%s = %d, want %d", series, n, refused[role])
		}
	}

	// imdsd audit tail, filtered by a numeric uid, prints that user's
	// lines: each names the uid, pid and executable.
	for _, uid := range []int{u.a, u.b, u.c} {
		r := runClient(t, []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, binPath(t),
			"audit", "tail", "--config", e.config, "--user", strconv.Itoa(uid), "-n", "100")
		if r.Err != nil {
			t.Fatalf("imdsd audit tail --user %d: %v\n%s", uid, r.Err, r.Stderr)
		}
		t.Logf("imdsd audit tail --user %d:\n%s", uid, r.Stdout)
		lines := strings.Split(strings.TrimSuffix(string(r.Stdout), "\n"), "\n")
		var mine []accessProc
		for _, p := range procs {
			if p.uid == uid {
				mine = append(mine, p)
			}
		}
		if len(lines) != len(mine) {
			t.Errorf("imdsd audit tail --user %d: %d lines, want %d:\n%s", uid, len(lines), len(mine), r.Stdout)
			continue
		}
		for _, p := range mine {
			needle := fmt.Sprintf("uid=%d  pid=%d %s", uid, p.pid, p.exe)
			if !strings.Contains(string(r.Stdout), needle) {
				t.Errorf("imdsd audit tail --user %d: no line with %q (%s):\n%s", uid, needle, p.what, r.Stdout)
			}
		}
	}
	t.Logf("audit trail: %d lines for %d client processes as uids %d, %d, %d over IPv4 and IPv6", len(recs), len(procs), u.a, u.b, u.c)
}
