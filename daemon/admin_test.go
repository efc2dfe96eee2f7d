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

// reloadErr, when set, makes the next reload of runDaemon's daemons fail.
var reloadErr atomic.Pointer[error]

// runDaemon serves c with src until the test ends; the admin socket goes
// into a temporary directory.
func runDaemon(t *testing.T, c Config, src rotator.Fetcher) (*daemon, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "imdsd-admin-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c.AdminSocket = filepath.Join(dir, "run", "admin.sock")
	c.Listen = []string{freeAddr(t)}
	d, err := newDaemon(c.withDefaults(noEnv), src, newLogger(io.Discard, "json", "info"))
	if err != nil {
		t.Fatal(err)
	}
	d.inbox = rotator.NewMFAInbox(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// A reload re-reads this configuration, unless the test set
	// reloadErr.
	loaded := c.withDefaults(noEnv)
	reload := func(context.Context) (Config, rotator.Fetcher, error) {
		if err := reloadErr.Load(); err != nil {
			return Config{}, nil, *err
		}
		return loaded, src, nil
	}
	go func() { done <- d.serve(ctx, io.Discard, nil, reload) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve() = %v", err)
		}
		if _, err := os.Stat(c.AdminSocket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("admin socket left behind: %v", err)
		}
	})
	<-d.ready
	// The admin API starts beside the first fetch, not after it: wait
	// until it answers (a loaded machine may take a while).
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("unix", c.AdminSocket)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin socket never answered: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return d, c.AdminSocket
}

func TestAdminAPI(t *testing.T) {
	src := &flaky{}
	d, sock := runDaemon(t, defaultConfig(), src)

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

	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(args, "--admin-socket", sock), noEnv, &out, &errOut)
		return code, out.String(), errOut.String()
	}

	// status: everything an operator needs, no secret.
	code, out, _ := run("status", "--json")
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	var st statusDoc
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Healthy || st.Source != "dev" || st.Credentials == nil || st.Credentials.KeyID != "****WXYZ" || st.RoleARN != "arn:aws:iam::123456789012:role/admin-test" || st.NextRefresh.IsZero() {
		t.Errorf("status = %+v", st)
	}
	for _, secret := range []string{"admin-test-secret-key", "admin-test-session-token", "ASIAADMINTEST"} {
		if strings.Contains(out, secret) {
			t.Errorf("status shows %q", secret)
		}
	}
	if code, out, _ := run("status"); code != 0 || !strings.Contains(out, "serving valid credentials") || !strings.Contains(out, "key ****WXYZ") {
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
	if code, out, _ := run("reload"); code != 0 || !strings.Contains(out, "configuration reloaded") {
		t.Errorf("reload: exit %d, %q", code, out)
	}
	bad := errors.New("role_arn: required by source assume-role")
	reloadErr.Store(&bad)
	code, _, errOut := run("reload")
	reloadErr.Store(nil)
	if code != 1 || !strings.Contains(errOut, "refused; the running configuration stays:\n  role_arn: required by source assume-role") {
		t.Errorf("refused reload: exit %d, %q", code, errOut)
	}

	// mfa: refused when the configuration takes no codes.
	if code, _, errOut := run("mfa", "123456"); code != 1 || !strings.Contains(errOut, "takes no MFA codes") {
		t.Errorf("mfa without mfa_serial: exit %d, %q", code, errOut)
	}

	// refresh, then a failure: status names it, healthz still passes
	// while the old set is valid.
	src.fail.Store(true)
	before := src.calls.Load()
	client, base, _ := adminClient(sock)
	resp, err := client.Post(base+"/refresh", "", nil)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("POST /refresh: %v %v", resp, err)
	}
	resp.Body.Close()
	for i := 0; i < 400 && src.calls.Load() == before; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	_, out, _ = run("status", "--json")
	_ = json.Unmarshal([]byte(out), &st)
	if st.LastError == nil || st.LastError.Code != "AccessDenied" || st.LastError.Class != "permanent" || !st.Healthy {
		t.Errorf("status after a failed refresh = %+v, last error %+v", st, st.LastError)
	}
	resp, _ = client.Get(base + "/healthz")
	if resp.StatusCode != 200 {
		t.Errorf("healthz with valid credentials held = %d", resp.StatusCode)
	}
	resp.Body.Close()

	// metrics: the Prometheus text format, with every family.
	c, _ := d.current()
	if resp, err := http.Get("http://" + c.Listen[0] + "/latest/meta-data/"); err == nil {
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
	for _, name := range []string{"imdsd_credentials_expiry_seconds", "imdsd_refreshes_total", "imdsd_refresh_failures_total", "imdsd_sts_request_duration_seconds", "imdsd_http_requests_total"} {
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
}

func TestAdminMFA(t *testing.T) {
	c := defaultConfig()
	c.MFASerial = "arn:aws:iam::123456789012:mfa/alice" // the dev source ignores it; the admin API looks at it
	d, sock := runDaemon(t, c, &flaky{})
	runCmd := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(args, "--admin-socket", sock), noEnv, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := runCmd("mfa", "12345"); code != 1 || !strings.Contains(errOut, "exactly 6 digits") {
		t.Errorf("mfa 12345: exit %d, %q", code, errOut)
	}
	if code, out, _ := runCmd("mfa", "123456"); code != 0 || !strings.Contains(out, "code accepted") {
		t.Errorf("mfa 123456: exit %d, %q", code, out)
	}
	if got, err := d.inbox.Get(context.Background()); got != "123456" && !errors.Is(err, rotator.ErrNoMFACode) {
		t.Errorf("inbox holds %q, %v", got, err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"status", "--admin-socket", "/nonexistent/admin.sock"}, noEnv, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "is imdsd running?") {
		t.Errorf("status without a daemon: exit %d, %q", code, errOut.String())
	}
}
