package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Defaults the suite starts imdsd with. The dev lifetime is long so that the
// dev source (which rotates at about a third of the lifetime) never rotates
// during a test; comparisons still accept the set served before or after a
// client ran.
const (
	devLifetime = "12h"
	testRegion  = "ap-southeast-2" // not the daemon's default, so the flag is exercised
	defaultRole = "imdsd-dev"

	startTimeout = 15 * time.Second // bin/imdsd run → stdout line
	stopTimeout  = 10 * time.Second // SIGTERM → exit
)

// Header names exactly as the SDKs that do not canonicalise send them.
const (
	hdrTokenTTL = "X-aws-ec2-metadata-token-ttl-seconds"
	hdrToken    = "X-aws-ec2-metadata-token"
)

// timestampRE is the only timestamp form the credentials document may use
// (SPEC.md R5.4).
var timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// lockedBuffer is an io.Writer that may be read while os/exec copies a
// child's output into it. ready is closed at the first newline.
type lockedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{ready: make(chan struct{})} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if bytes.IndexByte(b.buf.Bytes(), '\n') >= 0 {
		b.once.Do(func() { close(b.ready) })
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemon is one running bin/imdsd.
type daemon struct {
	// Endpoint is the URL from the stdout line, e.g. http://127.0.0.1:41234/,
	// given verbatim to every client.
	Endpoint string
	// Region and Role are what the daemon was told to serve.
	Region, Role string

	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd.Wait returned
	stdout *lockedBuffer
	stderr *lockedBuffer

	outputs
}

// binPath returns the imdsd binary under test: $IMDSD_BIN or <repo>/bin/imdsd.
// A missing binary fails the test: a skipped e2e test cannot catch anything.
func binPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("IMDSD_BIN")
	if p == "" {
		var err error
		// go test runs with the package directory (e2e/) as working directory.
		if p, err = filepath.Abs(filepath.Join("..", "bin", "imdsd")); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("imdsd binary not found or not executable at %s: run `make build` first (or set IMDSD_BIN)", p)
	}
	return p
}

// startDaemon runs `imdsd run --source dev --token-mode required` with one
// --listen per entry of listen (the first one is the endpoint printed) and
// the extra flags appended, waits for the stdout line and registers a cleanup
// that stops it with SIGTERM and checks the exit status, the stdout contract
// and that no secret reached the logs.
func startDaemon(t *testing.T, listen []string, extra ...string) *daemon {
	t.Helper()
	return startDaemonSignal(t, syscall.SIGTERM, listen, extra...)
}

func startDaemonSignal(t *testing.T, stopSig syscall.Signal, listen []string, extra ...string) *daemon {
	t.Helper()
	if len(listen) == 0 {
		listen = []string{"127.0.0.1:0"}
	}
	args := []string{"run", "--source", "dev", "--token-mode", "required", "--dev-lifetime", devLifetime}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	args = append(args, extra...)
	return launchDaemon(t, daemonSpec{
		Args:    args,
		Env:     []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()},
		Listen:  listen[0],
		Region:  flagValue(extra, "--region", "us-east-1"),
		Role:    flagValue(extra, "--role-name", defaultRole),
		StopSig: stopSig,
	})
}

// daemonSpec says exactly how launchDaemon runs bin/imdsd.
type daemonSpec struct {
	Args []string // after the binary, "run" included
	Env  []string // the whole environment
	// Listen is the first --listen in Args: the address the stdout line
	// must name.
	Listen string
	// Region and Role are what the daemon is expected to serve.
	Region, Role string
	StopSig      syscall.Signal // sent at cleanup; the exit status must be 0
}

// launchDaemon runs bin/imdsd with exactly s.Args and s.Env, waits for the
// stdout line and registers a cleanup that stops it with s.StopSig and
// checks the exit status, the stdout contract and that no secret reached the
// logs.
func launchDaemon(t *testing.T, s daemonSpec) *daemon {
	t.Helper()
	d := &daemon{
		Region:  s.Region,
		Role:    s.Role,
		stdout:  newLockedBuffer(),
		stderr:  newLockedBuffer(),
		done:    make(chan struct{}),
		outputs: newOutputs(),
	}
	d.cmd = exec.Command(binPath(t), s.Args...)
	d.cmd.Env = s.Env
	if d.cmd.Env == nil {
		d.cmd.Env = os.Environ()
	}
	// Each daemon gets its own admin socket (short path: unix sockets are
	// limited to about 100 bytes).
	adminDir, err := os.MkdirTemp("", "imdsd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(adminDir) })
	d.cmd.Env = append(d.cmd.Env, "IMDSD_ADMIN_SOCKET="+filepath.Join(adminDir, "admin.sock"))
	d.cmd.Stdout = d.stdout
	d.cmd.Stderr = d.stderr
	dieWithParent(d.cmd)
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", d.cmd, err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.stop(t, s.StopSig) })

	line := awaitEndpointLine(t, d.cmd, d.done, d.stdout, d.stderr)
	d.Endpoint = parseEndpointLine(t, line, s.Listen)
	return d
}

// parseEndpointLine checks the one stdout line against the contract:
// `export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://<listen host>:<bound port>/`.
//
// The trailing slash is imdsd's choice (daemon/cmd_run.go endpointURL): AWS
// CLI 2.9 (Debian 12) appends "latest/api/token" to the endpoint without a
// separator, see TestAWSCLIEndpointWithoutSlash. Every other client ignores
// the endpoint's path.
func parseEndpointLine(t *testing.T, line, listen string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("bad listen address %q in test: %v", listen, err)
	}
	re := regexp.MustCompile(`^export AWS_EC2_METADATA_SERVICE_ENDPOINT=(http://` +
		regexp.QuoteMeta(net.JoinHostPort(host, "")) + `([0-9]+)/)$`)
	m := re.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("stdout line = %q, want %q", line,
			"export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://"+net.JoinHostPort(host, "<port>")+"/")
	}
	if m[2] == "0" || (port != "0" && m[2] != port) {
		t.Fatalf("stdout line = %q: port %s, want the bound port of %s", line, m[2], listen)
	}
	return m[1]
}

func flagValue(args []string, name, def string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return def
}

// stop sends sig, waits for the exit, and checks exit status 0, that stdout
// held nothing but the endpoint line, and that no recorded secret is in the
// logs.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-d.done:
		t.Errorf("imdsd exited on its own before the test ended: %v\nstderr:\n%s", d.cmd.ProcessState, d.stderr.String())
	default:
		if err := d.cmd.Process.Signal(sig); err != nil {
			t.Errorf("signal imdsd: %v", err)
		}
		select {
		case <-d.done:
		case <-time.After(stopTimeout):
			_ = d.cmd.Process.Kill()
			<-d.done
			t.Errorf("imdsd did not exit within %v of %v\nstderr:\n%s", stopTimeout, sig, d.stderr.String())
			return
		}
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("imdsd exit status after %v = %v, want exit code 0\nstderr:\n%s", sig, d.cmd.ProcessState, d.stderr.String())
		}
	}
	d.check(t, d.stdout.String(), d.stderr.String())
}

// awaitEndpointLine waits until the daemon cmd printed its first stdout
// line and returns it, failing the test if it exits or stays silent.
func awaitEndpointLine(t *testing.T, cmd *exec.Cmd, done <-chan struct{}, stdout, stderr *lockedBuffer) string {
	t.Helper()
	select {
	case <-stdout.ready:
	case <-done:
		t.Fatalf("%s exited before printing the endpoint line: %v\nstdout:\n%s\nstderr:\n%s",
			cmd, cmd.ProcessState, stdout.String(), stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("%s printed no endpoint line within %v\nstdout:\n%s\nstderr:\n%s",
			cmd, startTimeout, stdout.String(), stderr.String())
	}
	line, _, _ := strings.Cut(stdout.String(), "\n")
	return line
}

// outputs holds what a daemon must never print and checks its output: one
// export line on stdout, no secret in the logs. Safe for concurrent use.
type outputs struct {
	mu      sync.Mutex
	secrets map[string]string // value → what it is; none may appear in stderr
}

func newOutputs() outputs { return outputs{secrets: map[string]string{}} }

// noteSecret records a value that must never appear in the daemon's logs.
func (o *outputs) noteSecret(value, what string) {
	if value == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.secrets[value] = what
}

// check reports a stdout that is not exactly the export line, and every
// noted secret found in the logs.
func (o *outputs) check(t *testing.T, stdout, logs string) {
	t.Helper()
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Errorf("imdsd stdout = %q, want exactly one line (the export line)", stdout)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for v, what := range o.secrets {
		if strings.Contains(logs, v) {
			t.Errorf("imdsd logs (stderr) contain the %s", what)
		}
	}
}

// httpClient talks to the daemon directly: no proxy from the environment,
// short timeouts.
var httpClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   5 * time.Second,
}

// do sends one request to the daemon and returns status, headers and body.
func (d *daemon) do(t *testing.T, method, path string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(d.Endpoint, "/")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = []string{v} // as given, not canonicalised
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// token obtains an IMDSv2 session token.
func (d *daemon) token(t *testing.T) string {
	t.Helper()
	code, hdr, body := d.do(t, http.MethodPut, "/latest/api/token", map[string]string{hdrTokenTTL: "21600"})
	if code != http.StatusOK || body == "" {
		t.Fatalf("PUT /latest/api/token = %d %q, want 200 and a token", code, body)
	}
	if got := hdr.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != "21600" {
		t.Fatalf("PUT /latest/api/token: TTL echo header = %q, want %q", got, "21600")
	}
	d.noteSecret(body, "IMDSv2 session token")
	return body
}

// get fetches path with a fresh token and wants 200.
func (d *daemon) get(t *testing.T, path string) string {
	t.Helper()
	code, _, body := d.do(t, http.MethodGet, path, map[string]string{hdrToken: d.token(t)})
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %q, want 200", path, code, body)
	}
	return body
}

// creds is one credential set, as served or as a client reports it.
type creds struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time // zero: the client does not expose it
}

// served reads the credentials imdsd is serving right now over plain HTTP,
// the way an SDK does (token, listing, role document), and checks the
// document's shape (SPEC.md R5.2–R5.4).
func (d *daemon) served(t *testing.T) creds {
	t.Helper()
	if got := d.get(t, "/latest/meta-data/iam/security-credentials/"); got != d.Role {
		t.Fatalf("GET .../security-credentials/ = %q, want exactly %q", got, d.Role)
	}
	body := d.get(t, "/latest/meta-data/iam/security-credentials/"+d.Role)
	var doc struct {
		Code, LastUpdated, Type, AccessKeyId, SecretAccessKey, Token, Expiration string
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("credentials document is not JSON: %v", err)
	}
	d.noteSecret(doc.SecretAccessKey, "SecretAccessKey")
	d.noteSecret(doc.Token, "session Token")
	// STYLE.md §7: only the last 4 characters of the access key may be logged.
	d.noteSecret(doc.AccessKeyId, "full AccessKeyId")
	if doc.Code != "Success" || doc.Type != "AWS-HMAC" || doc.AccessKeyId == "" || doc.SecretAccessKey == "" || doc.Token == "" {
		t.Fatalf("credentials document: Code=%q Type=%q, AccessKeyId/SecretAccessKey/Token set=%v/%v/%v; want Success, AWS-HMAC, all set",
			doc.Code, doc.Type, doc.AccessKeyId != "", doc.SecretAccessKey != "", doc.Token != "")
	}
	for name, v := range map[string]string{"Expiration": doc.Expiration, "LastUpdated": doc.LastUpdated} {
		if !timestampRE.MatchString(v) {
			t.Fatalf("credentials document: %s = %q, want YYYY-MM-DDTHH:MM:SSZ", name, v)
		}
	}
	exp, err := time.Parse(time.RFC3339, doc.Expiration)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(exp); left < 30*time.Minute {
		t.Fatalf("credentials document: Expiration %s is %v away, want ≥ 30m (SPEC.md R7.2)", doc.Expiration, left)
	}
	return creds{doc.AccessKeyId, doc.SecretAccessKey, doc.Token, exp}
}

// freePort returns a loopback address where nothing listens (it was bound
// and released a moment ago).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// clientEnv builds a client's environment from scratch: an empty HOME, no
// shared config or credentials files, no proxy, no AWS_* variable except the
// IMDS endpoint (and AWS_EC2_METADATA_V1_DISABLED=true when v1Disabled).
// extra entries (KEY=VALUE) are appended.
func clientEnv(t *testing.T, endpoint string, v1Disabled bool, extra ...string) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"LANG=C.UTF-8",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "nonexistent", "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "nonexistent", "credentials"),
		"NO_PROXY=127.0.0.1,localhost,::1",
		"no_proxy=127.0.0.1,localhost,::1",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + endpoint,
	}
	if v1Disabled {
		env = append(env, "AWS_EC2_METADATA_V1_DISABLED=true")
	}
	return append(env, extra...)
}

// clientRun is the outcome of one client process.
type clientRun struct {
	Stdout, Stderr []byte
	Err            error
	Start, End     time.Time
}

// clientTimeout bounds every client process; a client that has to give up
// must do so well within it (the negative cases assert < 10 s).
const clientTimeout = 20 * time.Second

// runClient runs one client process with env in an empty working directory.
func runClient(t *testing.T, env []string, name string, args ...string) clientRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := clientRun{Start: time.Now()}
	r.Err = cmd.Run()
	r.End = time.Now()
	if ctx.Err() != nil {
		r.Err = fmt.Errorf("%s: killed after %v: %w", name, clientTimeout, errors.Join(r.Err, ctx.Err()))
	}
	r.Stdout, r.Stderr = stdout.Bytes(), stderr.Bytes()
	return r
}

// needFile fails the test when a client prerequisite is missing, saying how
// to install it.
func needFile(t *testing.T, path, hint string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): %s", path, err, hint)
	}
}
