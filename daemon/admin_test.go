package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	"github.com/imdsd/imdsd/rotator"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// flaky is a source that fails while fail is set.
type flaky struct {
	fail  atomic.Bool
	calls atomic.Int32
}

func (f *flaky) Fetch(ctx context.Context) (rotator.Credentials, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return rotator.Credentials{}, &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}
	}
	return rotator.Credentials{Credentials: aws.Credentials{
		AccessKeyID: "ASIAADMINTEST0000WXYZ", SecretAccessKey: "admin-test-secret-key-0000000000000000000",
		SessionToken: "admin-test-session-token", CanExpire: true, Expires: time.Now().Add(time.Hour).Truncate(time.Second),
	}, RoleARN: "arn:aws:iam::123456789012:role/admin-test"}, nil
}

// testDaemon is a daemon serving until the test ends, with its admin socket
// in a directory of its own and a listener on a free port.
type testDaemon struct {
	d    *daemon
	sock string
	base string // http://ADDR of its first listener
	logs *syncBuffer
	// next is what a reload loads; by default the configuration it
	// started with.
	next atomic.Pointer[reloadFunc]
}

// tempDir is a directory of the test's own with a short path (unix socket
// paths are limited to about 100 bytes), removed when the test ends.
func tempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startDaemon serves c with src until the test ends. c.Listen and
// c.AdminSocket are set by it unless given: a port the kernel picks when
// the daemon binds it, and a directory of the test's own.
func startDaemon(t *testing.T, c Config, src rotator.Fetcher) *testDaemon {
	t.Helper()
	if c.AdminSocket == "" {
		c.AdminSocket = filepath.Join(tempDir(t, "imdsd-admin-"), "run", "admin.sock")
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{"127.0.0.1:0"}
	}
	c = c.withDefaults(noEnv)
	td := &testDaemon{sock: c.AdminSocket, logs: &syncBuffer{}}
	d, err := newDaemon(c, src, newLogger(td.logs, "json", "info"))
	if err != nil {
		t.Fatal(err)
	}
	td.d = d
	d.inbox = rotator.NewMFAInbox(nil)
	td.reloadTo(c, src, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// serve prints the endpoint it bound once the first fetch has been
	// tried; its admin socket and listeners answer by then.
	endpoint := make(chan string, 1)
	stdout := writerFunc(func(p []byte) (int, error) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(string(p)), "export AWS_EC2_METADATA_SERVICE_ENDPOINT="); ok {
			endpoint <- strings.TrimSuffix(v, "/")
		}
		return len(p), nil
	})
	go func() {
		done <- d.serve(ctx, stdout, nil, func(ctx context.Context) (Config, map[string]rotator.Fetcher, error) { return (*td.next.Load())(ctx) })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve() = %v", err)
		}
		for _, p := range []string{c.AdminSocket, c.AdminSocket + ".lock"} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left behind: %v", p, err)
			}
		}
	})
	select {
	case td.base = <-endpoint:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("serve() = %v before the first fetch", err)
	}
	return td
}

// writerFunc is an io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// runDaemon is startDaemon for tests that need only the daemon and its
// admin socket.
func runDaemon(t *testing.T, c Config, src rotator.Fetcher) (*daemon, string) {
	t.Helper()
	td := startDaemon(t, c, src)
	return td.d, td.sock
}

// reloadTo sets what the next reload loads.
func (td *testDaemon) reloadTo(c Config, src rotator.Fetcher, err error) {
	fn := reloadFunc(func(context.Context) (Config, map[string]rotator.Fetcher, error) { return oneRole(c, src, err) })
	td.next.Store(&fn)
}

// cli runs an imdsd command against the daemon's admin socket.
func (td *testDaemon) cli(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(ctx, append(args, "--admin-socket", td.sock), noEnv, &out, &errOut)
	return code, out.String(), errOut.String()
}

// status is the daemon's status document, through the CLI.
func (td *testDaemon) status(t *testing.T) statusDoc {
	t.Helper()
	_, out, errOut := td.cli(t.Context(), "status", "--json")
	var st statusDoc
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v; stderr %q", err, errOut)
	}
	return st
}

func TestAdminAPI(t *testing.T) {
	src := &flaky{}
	td := startDaemon(t, defaultConfig(), src)
	d, sock := td.d, td.sock

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("admin socket mode = %v, want a socket of 0600", fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(sock)); di.Mode().Perm() != 0o700 {
		t.Errorf("admin socket directory mode = %v, want 0700", di.Mode().Perm())
	}
	run := func(args ...string) (int, string, string) { return td.cli(t.Context(), args...) }

	// status: everything an operator needs, no secret.
	code, out, _ := run("status", "--json")
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	var st statusDoc
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Healthy || st.Source != "dev" || st.Credentials == nil || st.Credentials.KeyID != "****WXYZ" || st.RoleARN != "arn:aws:iam::123456789012:role/admin-test" || st.NextRefresh.IsZero() || st.Pending != nil {
		t.Errorf("status = %+v", st)
	}
	for _, secret := range []string{"admin-test-secret-key", "admin-test-session-token", "ASIAADMINTEST"} {
		if strings.Contains(out, secret) {
			t.Errorf("status shows %q", secret)
		}
	}
	// The configured 127.0.0.1:0 shows as the port the kernel chose.
	if want := strings.TrimPrefix(td.base, "http://"); len(st.Listen) != 1 || st.Listen[0] != want {
		t.Errorf("status listen = %v, want [%s] (the bound address)", st.Listen, want)
	}
	if code, out, _ := run("status"); code != 0 || !strings.Contains(out, "serving valid credentials") || !strings.Contains(out, "key ****WXYZ") || strings.Contains(out, "pending") {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	// creds --format process: the credential_process document, Version 1.
	code, out, _ = run("creds", "--format", "process")
	var pc map[string]any
	if err := json.Unmarshal([]byte(out), &pc); code != 0 || err != nil {
		t.Fatalf("creds --format process: exit %d, %q", code, out)
	}
	if pc["Version"] != float64(1) || pc["AccessKeyId"] != "ASIAADMINTEST0000WXYZ" || pc["SecretAccessKey"] != "admin-test-secret-key-0000000000000000000" || pc["Expiration"] == "" {
		t.Errorf("creds --format process = %v", pc)
	}
	if code, out, _ := run("creds"); code != 0 || strings.Contains(out, "secret") || !strings.Contains(out, "****WXYZ") {
		t.Errorf("creds summary: exit %d, %q", code, out)
	}

	// reload: through the admin API, with the outcome.
	if code, out, _ := run("reload"); code != 0 || out != "applied: configuration reloaded\n" {
		t.Errorf("reload: exit %d, %q", code, out)
	}
	running, _ := d.current()
	td.reloadTo(Config{}, nil, errors.New("role_arn: required by source assume-role"))
	code, _, errOut := run("reload")
	if code != 1 || !strings.Contains(errOut, "imdsd reload: refused; the running configuration stays:\n  role_arn: required by source assume-role") {
		t.Errorf("refused reload: exit %d, %q", code, errOut)
	}
	td.reloadTo(running, src, nil)

	// mfa: refused when the configuration takes no codes.
	if code, _, errOut := run("mfa", "123456"); code != 1 || !strings.Contains(errOut, "takes no MFA codes") {
		t.Errorf("mfa without mfa_serial: exit %d, %q", code, errOut)
	}

	// refresh, then a failure: status names it, healthz still passes
	// while the old set is valid.
	src.fail.Store(true)
	client, base, err := adminClient(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	attempted := d.defaultGen().changed.wait()
	resp, err := client.Post(base+"/refresh", "", nil)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("POST /refresh: %v %v", resp, err)
	}
	resp.Body.Close()
	<-attempted
	st = td.status(t)
	if st.LastError == nil || st.LastError.Code != "AccessDenied" || st.LastError.Class != "permanent" || !st.Healthy {
		t.Errorf("status after a failed refresh = %+v, last error %+v", st, st.LastError)
	}
	resp, err = client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("healthz with valid credentials held = %d", resp.StatusCode)
	}
	resp.Body.Close()

	// metrics: the Prometheus text format, with every family.
	if resp, err := http.Get(td.base + "/latest/meta-data/"); err == nil {
		resp.Body.Close() // a 401: counted
	}
	resp, err = client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{"imdsd_credentials_expiry_seconds", "imdsd_refreshes_total", "imdsd_refresh_failures_total", "imdsd_sts_request_duration_seconds", "imdsd_http_requests_total", "imdsd_reload_pending"} {
		if families[name] == nil {
			t.Errorf("metrics lack %s", name)
		}
	}
	if f := families["imdsd_refresh_failures_total"]; f != nil {
		for _, m := range f.Metric {
			if m.Label[0].GetValue() == "permanent" && m.Counter.GetValue() != 1 {
				t.Errorf("permanent failures = %v, want 1", m.Counter.GetValue())
			}
		}
	}
	if f := families["imdsd_sts_request_duration_seconds"]; f != nil && f.Metric[0].Histogram.GetSampleCount() != 2 {
		t.Errorf("fetch histogram count = %d, want 2", f.Metric[0].Histogram.GetSampleCount())
	}
	if f := families["imdsd_reload_pending"]; f != nil && f.Metric[0].Gauge.GetValue() != 0 {
		t.Errorf("imdsd_reload_pending = %v with nothing pending, want 0", f.Metric[0].Gauge.GetValue())
	}
}

func TestAdminMFA(t *testing.T) {
	c := defaultConfig()
	c.MFASerial = "arn:aws:iam::123456789012:mfa/alice" // the dev source ignores it; the admin API looks at it
	td := startDaemon(t, c, &flaky{})
	if code, _, errOut := td.cli(t.Context(), "mfa", "12345"); code != 1 || !strings.Contains(errOut, "exactly 6 digits") {
		t.Errorf("mfa 12345: exit %d, %q", code, errOut)
	}
	if code, out, _ := td.cli(t.Context(), "mfa", "123456"); code != 0 || !strings.Contains(out, "code accepted") {
		t.Errorf("mfa 123456: exit %d, %q", code, out)
	}
	if got, err := td.d.inbox.Get(context.Background()); got != "123456" && !errors.Is(err, rotator.ErrNoMFACode) {
		t.Errorf("inbox holds %q, %v", got, err)
	}
}

// The admin socket is found by status, creds, reload and mfa as imdsd run
// chose it: admin_socket of the config file (--config or IMDSD_CONFIG),
// unless --admin-socket or IMDSD_ADMIN_SOCKET says otherwise. systemctl
// reload runs plain `imdsd reload`, so a moved socket must be found this
// way.
func TestAdminSocketFromConfigFile(t *testing.T) {
	c := defaultConfig()
	c.MFASerial = "arn:aws:iam::123456789012:mfa/alice"
	td := startDaemon(t, c, &flaky{})
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("source: dev\nadmin_socket: "+td.sock+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(t.TempDir(), "none.sock")
	commands := []struct {
		args []string
		want string // on stdout
	}{
		{[]string{"status"}, "serving valid credentials"},
		{[]string{"creds"}, "key ****WXYZ"},
		{[]string{"reload"}, "applied: configuration reloaded"},
		{[]string{"mfa", "123456"}, "code accepted"},
	}
	ways := []struct {
		name  string
		flags []string
		env   map[string]string
	}{
		{"--config", []string{"--config", file}, nil},
		{"IMDSD_CONFIG", nil, map[string]string{"IMDSD_CONFIG": file}},
		{"--admin-socket over the file", []string{"--config", file, "--admin-socket", td.sock}, map[string]string{"IMDSD_ADMIN_SOCKET": wrong}},
		{"IMDSD_ADMIN_SOCKET over the file", nil, map[string]string{"IMDSD_CONFIG": wrong, "IMDSD_ADMIN_SOCKET": td.sock}},
	}
	for _, w := range ways {
		for _, cmd := range commands {
			t.Run(w.name+"/"+cmd.args[0], func(t *testing.T) {
				var out, errOut bytes.Buffer
				code := run(t.Context(), append(cmd.args, w.flags...), func(k string) string { return w.env[k] }, &out, &errOut)
				if code != 0 || !strings.Contains(out.String(), cmd.want) {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out.String(), errOut.String(), cmd.want)
				}
			})
		}
	}
	// A config file named but unreadable is a usage error, for each.
	for _, cmd := range commands {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), append(cmd.args, "--config", wrong), noEnv, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "cannot read "+wrong) {
			t.Errorf("%s --config %s: exit %d, %q", cmd.args[0], wrong, code, errOut.String())
		}
	}
}

// Two imdsd given the same admin socket (two foreground runs as root share
// /run/imdsd/admin.sock by default): the second stops before it binds
// anything, naming the first's pid and --admin-socket; the first still
// answers.
func TestAdminSocketTaken(t *testing.T) {
	first := startDaemon(t, defaultConfig(), &flaky{})
	c := defaultConfig()
	c.AdminSocket = first.sock
	c.Listen = []string{freeAddr(t)}
	c = c.withDefaults(noEnv)
	second, err := newDaemon(c, &flaky{}, newLogger(io.Discard, "json", "info"))
	if err != nil {
		t.Fatal(err)
	}
	err = second.serve(t.Context(), io.Discard, nil, nil)
	want := "listen on admin socket " + first.sock + ": another imdsd (pid " + strconv.Itoa(os.Getpid()) + ") is serving its admin API there; stop it, or give this imdsd its own socket with --admin-socket PATH (admin_socket in the config file)"
	if err == nil || err.Error() != want {
		t.Errorf("second serve() = %v, want %q", err, want)
	}
	if ln, err := net.Listen("tcp", c.Listen[0]); err != nil {
		t.Errorf("the second imdsd bound %s: %v", c.Listen[0], err)
	} else {
		ln.Close()
	}
	if st := first.status(t); !st.Healthy {
		t.Errorf("first imdsd after the second gave up: %+v", st)
	}
}
