//go:build linux

package e2e

// Network-namespace tests: imdsd the way the service unit runs it, on the
// real IMDS addresses, with unmodified clients that are given no
// AWS_EC2_METADATA_* variable at all.
//
// Every address, route and process lives in network namespaces the tests
// create themselves (`ip netns add`); the host's own interfaces, addresses
// and routes are never touched, and traffic goes only to addresses inside
// those namespaces. Each test removes what it created in t.Cleanup, also on
// failure:
//
//   - TestNetnsDefaultEndpoint: namespace A holds 169.254.169.254/32 and
//     fd00:ec2::254/128 on lo; imdsd runs there as nobody with only
//     CAP_NET_BIND_SERVICE (setpriv, as the unit does) on both addresses at
//     port 80. The AWS CLI v2, boto3, the JS SDK v3 and the Go SDK, started
//     inside A with `ip netns exec`, get the served credentials and region
//     with their defaults. A client in namespace C, connected to A by a veth
//     pair and routed to 169.254.169.254 through it, is refused (403).
//   - TestNetnsIPv6EndpointMode: namespace B6 has fd00:ec2::254 only (no
//     169.254.169.254 at all) and imdsd listens on [fd00:ec2::254]:80; the
//     same clients work with only AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6
//     set and fail without it.
//   - TestNetnsAllowClient: as A and C, with --allow-client for C's network:
//     clients in C are served.
//
// The tests need root (ip netns, setpriv) and skip, saying why, only when
// not root or when `ip netns add` is not permitted.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	// The IMDS endpoints SDKs use when nothing is configured (SPEC.md R1.1).
	netnsIMDSv4 = "http://169.254.169.254"
	netnsIMDSv6 = "http://[fd00:ec2::254]"

	// The veth pair between the daemon's namespace and the client's.
	netnsDaemonSide = "10.253.0.1/30"
	netnsClientSide = "10.253.0.2/30"
	netnsClientNet  = "10.253.0.0/30"
	netnsClientAddr = "10.253.0.2"

	// netnsHTTPEnv turns the test binary into the raw HTTP client of
	// TestNetnsHelperProcess; the value is the JSON list of requests.
	netnsHTTPEnv = "IMDSD_E2E_NETNS_HTTP"

	// CAP_NET_BIND_SERVICE is capability 10.
	capNetBindService = 1 << 10
)

// netnsSeq numbers the namespaces and interfaces of this test process.
var netnsSeq atomic.Int64

// netnsAWSConfig is the shared config file every client gets: it exists and
// names no region (nor credentials), so region and credentials can only
// come from IMDS. cli_pager is the file form of AWS_PAGER, which would be
// an AWS_* variable.
const netnsAWSConfig = "[default]\noutput = json\ncli_pager =\n"

// netnsTools are the programs the tests drive, by absolute path.
type netnsTools struct {
	ip, setpriv string
	uid, gid    int // nobody, nogroup: what the daemon runs as
}

// needNetns skips the test unless it runs as root, and finds ip, setpriv
// and the unprivileged user. Whether `ip netns add` is permitted is known
// only when trying it (newNetns).
func needNetns(t *testing.T) netnsTools {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("network-namespace tests need root (ip netns add, ip netns exec, setpriv); running as euid %d", os.Geteuid())
	}
	var nt netnsTools
	nt.ip = firstExecutable(t, "apt-get install -y iproute2", "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip")
	nt.setpriv = firstExecutable(t, "apt-get install -y util-linux", "/usr/bin/setpriv", "/bin/setpriv")
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("look up user nobody: %v", err)
	}
	g, err := user.LookupGroup("nogroup") // Debian's
	if err != nil {
		if g, err = user.LookupGroup("nobody"); err != nil {
			t.Fatalf("look up group nogroup or nobody: %v", err)
		}
	}
	if nt.uid, err = strconv.Atoi(u.Uid); err != nil {
		t.Fatal(err)
	}
	if nt.gid, err = strconv.Atoi(g.Gid); err != nil {
		t.Fatal(err)
	}
	return nt
}

func firstExecutable(t *testing.T, hint string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("none of %v exists: %s", paths, hint)
	return ""
}

// ipRun runs `ip args...` and fails the test on error.
func (nt netnsTools) ipRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(nt.ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNetns creates a network namespace named imdsd-e2e-<pid>-<n> with lo up
// and registers its removal. Nothing else is in it.
func (nt netnsTools) newNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("imdsd-e2e-%d-%d", os.Getpid(), netnsSeq.Add(1))
	out, err := exec.Command(nt.ip, "netns", "add", name).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not permitted")) || bytes.Contains(out, []byte("Permission denied")) {
			t.Skipf("ip netns add is not permitted here: %v: %s", err, bytes.TrimSpace(out))
		}
		t.Fatalf("ip netns add %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(nt.ip, "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
		if _, err := os.Stat(filepath.Join("/var/run/netns", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still exists after ip netns del (stat: %v)", name, err)
		}
	})
	nt.ipRun(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// addIMDSAddrs assigns the IMDS addresses to lo inside ns (never on the
// host): 169.254.169.254/32 when v4, fd00:ec2::254/128 when v6.
func (nt netnsTools) addIMDSAddrs(t *testing.T, ns string, v4, v6 bool) {
	t.Helper()
	if v4 {
		nt.ipRun(t, "-n", ns, "addr", "add", "169.254.169.254/32", "dev", "lo")
	}
	if v6 {
		nt.ipRun(t, "-n", ns, "-6", "addr", "add", "fd00:ec2::254/128", "dev", "lo", "nodad")
	}
}

// connect links namespace server to namespace client with a veth pair
// created directly inside them (netnsDaemonSide, netnsClientSide) and routes
// 169.254.169.254 in client through it. Both ends disappear with their
// namespaces; the cleanup deletes the pair first all the same.
func (nt netnsTools) connect(t *testing.T, server, client string) {
	t.Helper()
	n := netnsSeq.Add(1)
	pid := os.Getpid() % 10_000_000
	sIf, cIf := fmt.Sprintf("ie%ds%d", pid, n), fmt.Sprintf("ie%dc%d", pid, n) // ≤ 15 bytes
	nt.ipRun(t, "-n", server, "link", "add", sIf, "type", "veth", "peer", "name", cIf, "netns", client)
	t.Cleanup(func() {
		// Runs before the namespaces' removal (cleanups run last-in first-out).
		if out, err := exec.Command(nt.ip, "-n", server, "link", "del", sIf).CombinedOutput(); err != nil {
			t.Errorf("ip -n %s link del %s: %v\n%s", server, sIf, err, out)
		}
	})
	nt.ipRun(t, "-n", server, "addr", "add", netnsDaemonSide, "dev", sIf)
	nt.ipRun(t, "-n", server, "link", "set", sIf, "up")
	nt.ipRun(t, "-n", client, "addr", "add", netnsClientSide, "dev", cIf)
	nt.ipRun(t, "-n", client, "link", "set", cIf, "up")
	via, _, _ := strings.Cut(netnsDaemonSide, "/")
	nt.ipRun(t, "-n", client, "route", "add", "169.254.169.254/32", "via", via)
}

// daemonBinary returns bin/imdsd when nobody may execute it where it is,
// else a copy in a fresh world-readable directory.
func (nt netnsTools) daemonBinary(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(binPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if nt.nobodyCanExec(bin) {
		return bin
	}
	dir, err := os.MkdirTemp("", "imdsd-e2e-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "imdsd")
	if err := os.WriteFile(cp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cp, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if !nt.nobodyCanExec(cp) {
		t.Fatalf("user %d cannot execute %s either (nor %s)", nt.uid, cp, bin)
	}
	t.Logf("%s is not executable by uid %d; running a copy at %s", bin, nt.uid, cp)
	return cp
}

// nobodyCanExec asks the kernel, as the unprivileged user, whether it may
// execute path (every directory on the way included).
func (nt netnsTools) nobodyCanExec(path string) bool {
	return exec.Command(nt.setpriv, "--reuid="+strconv.Itoa(nt.uid), "--regid="+strconv.Itoa(nt.gid),
		"--clear-groups", "--", "/usr/bin/test", "-x", path).Run() == nil
}

// runtimeDir makes what systemd makes for RuntimeDirectory=imdsd with
// RuntimeDirectoryMode=0750: a directory of the service user's, removed
// after the test.
func (nt netnsTools) runtimeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "imdsd-e2e-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, nt.uid, nt.gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return dir
}

// netnsDaemon is one imdsd running unprivileged inside a namespace.
type netnsDaemon struct {
	NS           string
	Region, Role string
	Listen       []string
	Bin          string

	nt     netnsTools
	cmd    *exec.Cmd
	done   chan struct{}
	stdout *lockedBuffer
	stderr *lockedBuffer

	outputs
}

// startNetnsDaemon runs `imdsd run --source dev` inside ns with the
// privileges systemd/imdsd.service gives it: an unprivileged user (nobody),
// CAP_NET_BIND_SERVICE as its only capability (ambient and bounding set),
// no new privileges, its own runtime directory.
// It waits for the export line, which must name listen[0] at port 80
// without a port, and registers a cleanup that stops it with SIGTERM and
// checks the exit status, stdout and that no secret reached the logs.
func (nt netnsTools) startNetnsDaemon(t *testing.T, ns string, listen []string, extra ...string) *netnsDaemon {
	t.Helper()
	d := &netnsDaemon{
		NS:      ns,
		Region:  flagValue(extra, "--region", "us-east-1"),
		Role:    defaultRole,
		Listen:  listen,
		Bin:     nt.daemonBinary(t),
		nt:      nt,
		done:    make(chan struct{}),
		stdout:  newLockedBuffer(),
		stderr:  newLockedBuffer(),
		outputs: newOutputs(),
	}
	args := []string{"netns", "exec", ns,
		nt.setpriv,
		"--reuid=" + strconv.Itoa(nt.uid), "--regid=" + strconv.Itoa(nt.gid), "--clear-groups",
		"--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service",
		"--bounding-set=-all,+net_bind_service", "--no-new-privs",
		// Changing the uid clears the parent-death signal; keep
		// dieWithParent's SIGKILL.
		"--pdeathsig=keep",
		"--",
		d.Bin, "run", "--source", "dev", "--dev-lifetime", devLifetime,
	}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	args = append(args, extra...)
	// ip netns exec and setpriv exec, they do not fork: the process started
	// here is imdsd itself once it runs (checkUnprivileged verifies it).
	d.cmd = exec.Command(nt.ip, args...)
	// RUNTIME_DIRECTORY is what systemd gives the unit (RuntimeDirectory=):
	// the admin socket goes there, one per daemon.
	d.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "RUNTIME_DIRECTORY=" + nt.runtimeDir(t)}
	d.cmd.Stdout = d.stdout
	d.cmd.Stderr = d.stderr
	dieWithParent(d.cmd)
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", d.cmd, err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })

	line := awaitEndpointLine(t, d.cmd, d.done, d.stdout, d.stderr)
	if want := "export AWS_EC2_METADATA_SERVICE_ENDPOINT=" + port80URL(t, listen[0]) + "/"; line != want {
		t.Fatalf("stdout line = %q, want %q", line, want)
	}
	return d
}

// port80URL turns 169.254.169.254:80 into http://169.254.169.254 and
// [fd00:ec2::254]:80 into http://[fd00:ec2::254]: SDKs' default endpoints
// name no port.
func port80URL(t *testing.T, listen string) string {
	t.Helper()
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || ap.Port() != 80 {
		t.Fatalf("test setup: listen address %q is not IP:80", listen)
	}
	if ap.Addr().Is6() {
		return "http://[" + ap.Addr().String() + "]"
	}
	return "http://" + ap.Addr().String()
}

func (d *netnsDaemon) stop(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
		t.Errorf("imdsd in %s exited on its own before the test ended: %v\nstderr:\n%s", d.NS, d.cmd.ProcessState, d.stderr.String())
	default:
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("signal imdsd: %v", err)
		}
		select {
		case <-d.done:
		case <-time.After(stopTimeout):
			_ = d.cmd.Process.Kill()
			<-d.done
			t.Errorf("imdsd in %s did not exit within %v of SIGTERM\nstderr:\n%s", d.NS, stopTimeout, d.stderr.String())
			return
		}
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("imdsd in %s: exit status after SIGTERM = %v, want 0\nstderr:\n%s", d.NS, d.cmd.ProcessState, d.stderr.String())
		}
	}
	d.check(t, d.stdout.String(), d.stderr.String())
}

// checkUnprivileged checks what the kernel says of the daemon's process:
// it is bin/imdsd itself (no wrapper left), runs as nobody/nogroup with no
// supplementary group, holds CAP_NET_BIND_SERVICE and nothing else, cannot
// gain privileges, and owns listening sockets on exactly d.Listen.
func (d *netnsDaemon) checkUnprivileged(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
		t.Fatalf("imdsd in %s exited: %v\nstderr:\n%s", d.NS, d.cmd.ProcessState, d.stderr.String())
	default:
	}
	pid := d.cmd.Process.Pid
	proc := "/proc/" + strconv.Itoa(pid)
	bin, err := filepath.EvalSymlinks(d.Bin) // the kernel names the resolved path
	if err != nil {
		t.Fatal(err)
	}
	if exe, err := os.Readlink(proc + "/exe"); err != nil || exe != bin {
		t.Errorf("%s/exe = %q (%v), want %s", proc, exe, err, bin)
	}
	b, err := os.ReadFile(proc + "/status")
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			status[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	uid, gid := strconv.Itoa(d.nt.uid), strconv.Itoa(d.nt.gid)
	onlyBind := fmt.Sprintf("%016x", capNetBindService)
	for k, want := range map[string]string{
		"Uid":        strings.Repeat(uid+" ", 3) + uid, // real, effective, saved, filesystem
		"Gid":        strings.Repeat(gid+" ", 3) + gid,
		"Groups":     "",
		"CapEff":     onlyBind,
		"CapPrm":     onlyBind,
		"CapInh":     onlyBind,
		"CapAmb":     onlyBind,
		"CapBnd":     onlyBind,
		"NoNewPrivs": "1",
	} {
		if got, ok := status[k]; !ok || got != want {
			t.Errorf("imdsd (pid %d) %s/status %s: %q, want %q", pid, proc, k, got, want)
		}
	}

	// Sockets: the inodes of the process's open sockets, looked up in its
	// namespace's TCP tables.
	inodes := map[string]bool{}
	fds, err := os.ReadDir(proc + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink(proc + "/fd/" + fd.Name()); err == nil {
			if ino, ok := strings.CutPrefix(l, "socket:["); ok {
				inodes[strings.TrimSuffix(ino, "]")] = true
			}
		}
	}
	var got []string
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(proc + "/net/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] { // 0A: TCP_LISTEN
				continue
			}
			addr := procNetAddr(t, fs[1])
			if fs[7] != uid {
				t.Errorf("listening socket %s belongs to uid %s, want %s", addr, fs[7], uid)
			}
			got = append(got, addr)
		}
	}
	want := slices.Clone(d.Listen)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("imdsd (pid %d) listens on %v, want %v", pid, got, want)
	}
}

// procNetAddr decodes a /proc/net/tcp{,6} address such as FEA9FEA9:0050:
// the address is printed as 32-bit words in the host's byte order, the port
// as a number.
func procNetAddr(t *testing.T, s string) string {
	t.Helper()
	h, p, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(h)
	port, perr := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil || perr != nil || len(raw)%4 != 0 {
		t.Fatalf("cannot parse /proc/net address %q", s)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
}

// netnsRequest is one request TestNetnsHelperProcess sends.
type netnsRequest struct {
	Method, URL string
	Header      map[string]string `json:",omitempty"` // as given, not canonicalised
	// WithToken sends the body of the last successful token PUT as
	// X-aws-ec2-metadata-token.
	WithToken bool `json:",omitempty"`
}

// netnsResponse is its outcome: Err when no response came.
type netnsResponse struct {
	Status int
	Header http.Header
	Body   string
	Err    string
}

// netnsHTTP sends reqs in order from inside namespace ns, through a re-exec
// of the test binary (TestNetnsHelperProcess) under `ip netns exec`: this
// process stays in the host's namespace, where the IMDS addresses do not
// exist.
func (nt netnsTools) netnsHTTP(t *testing.T, ns string, reqs ...netnsRequest) []netnsResponse {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin", netnsHTTPEnv + "=" + string(spec), "GORACE=atexit_sleep_ms=0"}
	r := runClient(t, env, nt.ip, "netns", "exec", ns, exe, "-test.run=^TestNetnsHelperProcess$")
	if r.Err != nil {
		t.Fatalf("HTTP helper in %s: %v\nstderr:\n%s", ns, r.Err, r.Stderr)
	}
	line, _, _ := bytes.Cut(r.Stdout, []byte("\n")) // the testing package's PASS follows
	var out []netnsResponse
	if err := json.Unmarshal(line, &out); err != nil || len(out) != len(reqs) {
		t.Fatalf("HTTP helper in %s: bad output (%v): %q", ns, err, r.Stdout)
	}
	return out
}

// TestNetnsHelperProcess is not a test: with IMDSD_E2E_NETNS_HTTP set it is
// the raw HTTP client netnsHTTP runs inside a namespace, and prints the
// responses as one JSON line. Without the variable it does nothing.
func TestNetnsHelperProcess(t *testing.T) {
	spec := os.Getenv(netnsHTTPEnv)
	if spec == "" {
		return
	}
	var reqs []netnsRequest
	if err := json.Unmarshal([]byte(spec), &reqs); err != nil {
		t.Fatalf("%s: %v", netnsHTTPEnv, err)
	}
	c := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}
	var token string
	out := make([]netnsResponse, 0, len(reqs))
	for _, rq := range reqs {
		req, err := http.NewRequestWithContext(t.Context(), rq.Method, rq.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range rq.Header {
			req.Header[k] = []string{v}
		}
		if rq.WithToken {
			req.Header[hdrToken] = []string{token}
		}
		resp, err := c.Do(req)
		if err != nil {
			out = append(out, netnsResponse{Err: err.Error()})
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := netnsResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
		if err != nil {
			r.Err = "read body: " + err.Error()
		}
		if rq.Method == http.MethodPut && strings.HasSuffix(rq.URL, "/latest/api/token") && r.Status == http.StatusOK {
			token = r.Body
		}
		out = append(out, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		t.Fatal(err)
	}
}

// served reads the credentials the daemon serves, from inside namespace ns
// at base (an IMDS URL without path), the way an SDK does: token, role
// listing, role document.
func (d *netnsDaemon) served(t *testing.T, ns, base string) creds {
	t.Helper()
	credsPath := "/latest/meta-data/iam/security-credentials/"
	rs := d.nt.netnsHTTP(t, ns,
		netnsRequest{Method: http.MethodPut, URL: base + "/latest/api/token", Header: map[string]string{hdrTokenTTL: "21600"}},
		netnsRequest{Method: http.MethodGet, URL: base + credsPath, WithToken: true},
		netnsRequest{Method: http.MethodGet, URL: base + credsPath + d.Role, WithToken: true},
	)
	for i, r := range rs {
		if r.Err != "" || r.Status != http.StatusOK {
			t.Fatalf("from %s, request %d of token/listing/document at %s: status %d, error %q, want 200", ns, i+1, base, r.Status, r.Err)
		}
	}
	d.noteSecret(rs[0].Body, "IMDSv2 session token")
	if got := rs[0].Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != "21600" {
		t.Fatalf("PUT %s/latest/api/token: TTL echo = %q, want 21600", base, got)
	}
	if rs[1].Body != d.Role {
		t.Fatalf("GET %s%s = %q, want exactly %q", base, credsPath, rs[1].Body, d.Role)
	}
	var doc struct {
		Code, Type, AccessKeyId, SecretAccessKey, Token, Expiration string
	}
	if err := json.Unmarshal([]byte(rs[2].Body), &doc); err != nil {
		t.Fatalf("credentials document from %s is not JSON: %v", base, err)
	}
	d.noteSecret(doc.SecretAccessKey, "SecretAccessKey")
	d.noteSecret(doc.Token, "session Token")
	d.noteSecret(doc.AccessKeyId, "full AccessKeyId")
	if doc.Code != "Success" || doc.Type != "AWS-HMAC" || doc.AccessKeyId == "" || doc.SecretAccessKey == "" || doc.Token == "" {
		t.Fatalf("credentials document from %s: Code=%q Type=%q, AccessKeyId/SecretAccessKey/Token set=%v/%v/%v; want Success, AWS-HMAC, all set",
			base, doc.Code, doc.Type, doc.AccessKeyId != "", doc.SecretAccessKey != "", doc.Token != "")
	}
	exp, err := time.Parse(time.RFC3339, doc.Expiration)
	if err != nil || !timestampRE.MatchString(doc.Expiration) {
		t.Fatalf("credentials document from %s: Expiration %q, want YYYY-MM-DDTHH:MM:SSZ", base, doc.Expiration)
	}
	return creds{doc.AccessKeyId, doc.SecretAccessKey, doc.Token, exp}
}

// netnsClientEnv is a client's whole environment: PATH, LANG, an empty HOME
// holding only the region-free netnsAWSConfig, the client's own non-AWS
// variables (the Go helper switch), and extra. No AWS_* variable is set
// unless extra has one: the clients run on their defaults.
func netnsClientEnv(t *testing.T, c client, extra ...string) []string {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", "config"), []byte(netnsAWSConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8"}
	for _, e := range c.extraEnv {
		if !strings.HasPrefix(e, "AWS_") { // awsCLI's AWS_PAGER= is in the config file instead
			env = append(env, e)
		}
	}
	return append(env, extra...)
}

// runInNetns runs argv inside namespace ns with env.
func (nt netnsTools) runInNetns(t *testing.T, ns string, env, argv []string) clientRun {
	t.Helper()
	return runClient(t, env, nt.ip, append([]string{"netns", "exec", ns}, argv...)...)
}

// awsCLIConfigList is `aws configure list`: it shows where the CLI's
// credentials and region come from ("iam-role" and "imds" when from IMDS).
var awsCLIConfigList = client{
	name:     "aws-cli-v2-configure-list",
	argv:     func(t *testing.T) []string { return append(awsCLI.argv(t)[:2:2], "list") },
	extraEnv: awsCLI.extraEnv,
}

// jsRegion is testdata/netns/js-region.mjs: the JS SDK v3's own IMDS region
// lookup (defaults mode "auto").
var jsRegion = client{
	name: "aws-sdk-js-v3-region",
	argv: func(t *testing.T) []string {
		t.Helper()
		argv := jsArgv("imds")(t) // node and node_modules must be there
		script, err := filepath.Abs(filepath.Join("testdata", "netns", "js-region.mjs"))
		if err != nil {
			t.Fatal(err)
		}
		return []string{argv[0], script}
	},
}

// otherRegion is a region that is not r.
func otherRegion(r string) string {
	if r == "us-east-1" {
		return "eu-west-1"
	}
	return "us-east-1"
}

// testNetnsClients runs, in parallel subtests, each client of cs and (when
// withRegion) the AWS CLI's and the JS SDK's region lookups inside
// namespace ns with env extra, and wants exactly the credentials and region
// d serves; what d serves is read from ns at base before and after each.
func testNetnsClients(t *testing.T, d *netnsDaemon, ns, base string, cs []client, withRegion bool, extra ...string) {
	t.Helper()
	nt := d.nt
	for _, c := range cs {
		argv := c.argv(t) // a missing client fails here, before any run
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			before := d.served(t, ns, base)
			r := nt.runInNetns(t, ns, netnsClientEnv(t, c, extra...), argv)
			if r.Err != nil {
				t.Fatalf("%s in %s: %v\nstdout:\n%s\nstderr:\n%s", c.name, ns, r.Err, r.Stdout, r.Stderr)
			}
			after := d.served(t, ns, base)
			got := c.parse(t, r.Stdout)
			d.noteSecret(got.SecretAccessKey, "SecretAccessKey (as the client got it)")
			checkCreds(t, c, r, got.creds, before, after)
			if c.readsRegion && got.Region != d.Region {
				t.Errorf("%s: region = %q, want %q", c.name, got.Region, d.Region)
			}
		})
	}
	if !withRegion {
		return
	}

	argv := awsCLIConfigList.argv(t)
	t.Run(awsCLIConfigList.name, func(t *testing.T) {
		t.Parallel()
		served := d.served(t, ns, base)
		r := nt.runInNetns(t, ns, netnsClientEnv(t, awsCLIConfigList, extra...), argv)
		if r.Err != nil {
			t.Fatalf("aws configure list in %s: %v\nstderr:\n%s", ns, r.Err, r.Stderr)
		}
		// "    region                eu-west-2             imds    "
		// "access_key     ****************M47Z         iam-role    "
		rows := map[string][]string{}
		for line := range strings.SplitSeq(string(r.Stdout), "\n") {
			if fs := strings.Fields(line); len(fs) >= 3 {
				rows[fs[0]] = fs[1:3]
			}
		}
		if got, want := rows["region"], []string{d.Region, "imds"}; !slices.Equal(got, want) {
			t.Errorf("aws configure list: region row %q, want %q\n%s", got, want, r.Stdout)
		}
		keyTail := served.AccessKeyID[max(0, len(served.AccessKeyID)-4):]
		if got := rows["access_key"]; len(got) != 2 || !strings.HasSuffix(got[0], keyTail) || got[1] != "iam-role" {
			t.Errorf("aws configure list: access_key row %q, want ****%s from iam-role\n%s", got, keyTail, r.Stdout)
		}
	})

	jsRegionArgv := jsRegion.argv(t)
	t.Run(jsRegion.name, func(t *testing.T) {
		t.Parallel()
		other := otherRegion(d.Region)
		r := nt.runInNetns(t, ns, netnsClientEnv(t, jsRegion, extra...), append(jsRegionArgv, d.Region, other))
		if r.Err != nil {
			t.Fatalf("js-region.mjs in %s: %v\nstderr:\n%s", ns, r.Err, r.Stderr)
		}
		var p struct{ Modes map[string]string }
		if err := json.Unmarshal(r.Stdout, &p); err != nil {
			t.Fatalf("js-region.mjs: output is not JSON: %v: %q", err, r.Stdout)
		}
		// in-region: IMDS named d.Region; cross-region: IMDS answered, with
		// another region than the one asked (standard: IMDS unusable).
		if want := map[string]string{d.Region: "in-region", other: "cross-region"}; !cmp.Equal(p.Modes, want) {
			t.Errorf("JS SDK defaults mode auto for regions %q: %v, want %v (IMDS region %s)", []string{d.Region, other}, p.Modes, want, d.Region)
		}
	})
}

// netnsClients are the clients every namespace test runs.
var netnsClients = []client{awsCLI, boto3, jsSDK, jsSDKChain, goSDK}

// wantClientFails runs c in ns with extra and wants it to give up fast
// without printing the served credentials.
func wantClientFails(t *testing.T, d *netnsDaemon, ns string, c client, served creds, extra ...string) {
	t.Helper()
	argv := c.argv(t)
	r := d.nt.runInNetns(t, ns, netnsClientEnv(t, c, extra...), argv)
	took := r.End.Sub(r.Start)
	var exitErr *exec.ExitError
	if !errors.As(r.Err, &exitErr) {
		t.Fatalf("%s in %s: err = %v after %v, want a non-zero exit\nstdout:\n%s\nstderr:\n%s", c.name, ns, r.Err, took, r.Stdout, r.Stderr)
	}
	if took > giveUpWithin {
		t.Errorf("%s took %v to give up, want < %v", c.name, took, giveUpWithin)
	}
	if bytes.Contains(r.Stdout, []byte(served.SecretAccessKey)) {
		t.Errorf("%s printed the served credentials", c.name)
	}
	t.Logf("%s in %s failed as expected in %v: %s", c.name, ns, took.Round(time.Millisecond), bytes.TrimSpace(r.Stderr))
}

func TestNetnsDefaultEndpoint(t *testing.T) {
	t.Parallel()
	nt := needNetns(t)
	nsA := nt.newNetns(t)
	nt.addIMDSAddrs(t, nsA, true, true)
	nsC := nt.newNetns(t)
	nt.connect(t, nsA, nsC)

	d := nt.startNetnsDaemon(t, nsA, []string{"169.254.169.254:80", "[fd00:ec2::254]:80"}, "--region", "eu-west-2")
	d.checkUnprivileged(t)
	v4 := d.served(t, nsA, netnsIMDSv4)
	if v6 := d.served(t, nsA, netnsIMDSv6); !cmp.Equal(v4, v6) {
		t.Errorf("IPv4 and IPv6 endpoints serve different credentials: %s", redactedDiff(v6, v4))
	}

	testNetnsClients(t, d, nsA, netnsIMDSv4, netnsClients, true)

	// A client in another namespace reaches the daemon through the veth
	// pair and is refused, token PUT included: its network is not allowed.
	t.Run("other-netns-refused", func(t *testing.T) {
		t.Parallel()
		rs := nt.netnsHTTP(t, nsC,
			netnsRequest{Method: http.MethodPut, URL: netnsIMDSv4 + "/latest/api/token", Header: map[string]string{hdrTokenTTL: "21600"}},
			netnsRequest{Method: http.MethodGet, URL: netnsIMDSv4 + "/latest/meta-data/iam/security-credentials/"},
		)
		for i, what := range []string{"PUT /latest/api/token", "GET .../security-credentials/ (no token)"} {
			if rs[i].Err != "" || rs[i].Status != http.StatusForbidden || rs[i].Body != "" {
				t.Errorf("from %s (%s): %s = %d %q (error %q), want 403 with an empty body", nsC, netnsClientAddr, what, rs[i].Status, rs[i].Body, rs[i].Err)
			}
		}
		wantClientFails(t, d, nsC, goSDK, v4)
		if logs := d.stderr.String(); !strings.Contains(logs, "refused client from another host") || !strings.Contains(logs, netnsClientAddr) {
			t.Errorf("imdsd did not log the refusal of %s:\n%s", netnsClientAddr, logs)
		}
	})
}

func TestNetnsIPv6EndpointMode(t *testing.T) {
	t.Parallel()
	nt := needNetns(t)
	ns := nt.newNetns(t)
	nt.addIMDSAddrs(t, ns, false, true) // no 169.254.169.254 in this namespace

	d := nt.startNetnsDaemon(t, ns, []string{"[fd00:ec2::254]:80"}, "--region", "ca-central-1")
	d.checkUnprivileged(t)
	v6 := d.served(t, ns, netnsIMDSv6)
	if rs := nt.netnsHTTP(t, ns, netnsRequest{Method: http.MethodPut, URL: netnsIMDSv4 + "/latest/api/token",
		Header: map[string]string{hdrTokenTTL: "21600"}}); rs[0].Err == "" {
		t.Fatalf("test setup: %s answered %d in %s, want no IPv4 endpoint there", netnsIMDSv4, rs[0].Status, ns)
	}

	// "IPv6" exactly: the JS SDK accepts no other spelling (SPEC.md R1.2).
	testNetnsClients(t, d, ns, netnsIMDSv6, netnsClients, true, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6")

	// Controls: without the variable the same clients go to 169.254.169.254,
	// which does not exist here, so the successes above took the IPv6 path.
	for _, c := range []client{goSDK, jsSDK} {
		t.Run(c.name+"-without-ipv6-mode", func(t *testing.T) {
			t.Parallel()
			wantClientFails(t, d, ns, c, v6)
		})
	}
}

func TestNetnsAllowClient(t *testing.T) {
	t.Parallel()
	nt := needNetns(t)
	nsA := nt.newNetns(t)
	nt.addIMDSAddrs(t, nsA, true, false)
	nsC := nt.newNetns(t)
	nt.connect(t, nsA, nsC)

	d := nt.startNetnsDaemon(t, nsA, []string{"169.254.169.254:80"}, "--region", "sa-east-1", "--allow-client", netnsClientNet)
	d.checkUnprivileged(t)
	// The clients run in C, which has no IMDS address of its own: what
	// answers is the daemon in A, through the veth pair.
	testNetnsClients(t, d, nsC, netnsIMDSv4, []client{goSDK, awsCLI}, false)
}
