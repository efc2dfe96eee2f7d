package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/imdsd/imdsd/rotator"
	"github.com/imdsd/imdsd/rotator/ststest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
)

// freeAddr returns a loopback address nobody listens on: a port the kernel
// picked, so concurrent test runs do not collide.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sdkLike fetches credentials the way SDKs do, on one keep-alive client:
// token, role listing, document. It reports what went wrong, if anything.
func sdkLike(c *http.Client, base, token string) (string, error) {
	get := func(path string) (int, string, error) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("X-aws-ec2-metadata-token", token)
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	code, role, err := get("/latest/meta-data/iam/security-credentials/")
	if err != nil || code != 200 {
		return "", fmt.Errorf("listing: %d %v", code, err)
	}
	code, body, err := get("/latest/meta-data/iam/security-credentials/" + role)
	if err != nil || code != 200 {
		return "", fmt.Errorf("credentials of %s: %d %v", role, code, err)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc["Code"] != "Success" {
		return "", fmt.Errorf("credentials of %s: %q %v", role, body, err)
	}
	return doc["AccessKeyId"], nil
}

func putToken(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest("PUT", base+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d", resp.StatusCode)
	}
	return string(b)
}

// within waits for ch, failing the test after a generous bound: the bound
// is only a guard against a hang, never what the test waits for.
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not within 30s", what)
	}
}

// load is clients polling credentials the way SDKs do, each on its own
// keep-alive connection, until stop.
type load struct {
	requests, failures atomic.Int64
	keys               sync.Map // AccessKeyId → true
	last               atomic.Pointer[string]
	tick               chan struct{} // a receive waits for one more finished request
	stopc              chan struct{}
	wg                 sync.WaitGroup
}

func startLoad(t *testing.T, base, token string, clients int) *load {
	l := &load{tick: make(chan struct{}), stopc: make(chan struct{})}
	for range clients {
		l.wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				key, err := sdkLike(c, base, token)
				l.requests.Add(1)
				if err != nil {
					l.failures.Add(1)
					t.Errorf("request failed: %v", err)
				} else {
					l.keys.Store(key, true)
					l.last.Store(&key)
				}
				select {
				case l.tick <- struct{}{}:
				default:
				}
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

// await returns once n more requests have finished.
func (l *load) await(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-l.tick:
		case <-time.After(30 * time.Second):
			t.Fatal("the clients made no progress within 30s")
		}
	}
}

func (l *load) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

// SIGHUP under load: listeners and the source change, an invalid
// configuration is refused; clients polling all along never see a failure,
// tokens issued before stay valid, and connections to listeners that stay
// are kept. Then a role rename takes effect (clients re-list the role, as
// SDKs do on their next refresh).
func TestReloadUnderLoad(t *testing.T) {
	a, b := freeAddr(t), freeAddr(t)
	adminDir := tempDir(t, "imdsd-reload-")
	cfg := func(mut func(*Config)) Config {
		c := defaultConfig()
		c.Listen = []string{a}
		c.AdminSocket = filepath.Join(adminDir, "admin.sock")
		mut(&c)
		return c.withDefaults(noEnv)
	}
	first := cfg(func(*Config) {})
	var logs syncBuffer
	d, err := newDaemon(first, rotator.NewDev(rotator.DevOptions{Lifetime: time.Hour}), newLogger(&logs, "json", "info"))
	if err != nil {
		t.Fatal(err)
	}
	// What the next SIGHUP will load.
	var next atomic.Pointer[func(context.Context) (Config, map[string]rotator.Fetcher, error)]
	reloadTo := func(c Config, f rotator.Fetcher, err error) {
		fn := func(context.Context) (Config, map[string]rotator.Fetcher, error) { return oneRole(c, f, err) }
		next.Store(&fn)
	}
	hup := make(chan os.Signal)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- d.serve(ctx, io.Discard, hup, func(ctx context.Context) (Config, map[string]rotator.Fetcher, error) { return (*next.Load())(ctx) })
	}()
	<-d.ready
	baseA := "http://" + a
	token := putToken(t, baseA)

	// Clients poll A (kept throughout) on keep-alive connections.
	l := startLoad(t, baseA, token, 4)
	hupSync := func() {
		hup <- os.Interrupt // any value: serve only counts them
		// A second send is taken only once the first reload is over.
		hup <- os.Interrupt
	}
	l.await(t, 20)

	// 1. Same source, a second listener, another client rule.
	reloadTo(cfg(func(c *Config) { c.Listen = []string{a, b}; c.AllowClient = []string{"172.17.0.0/16"} }), rotator.NewDev(rotator.DevOptions{Lifetime: time.Hour}), nil)
	hupSync()
	l.await(t, 20) // the clients run across it
	if _, err := sdkLike(http.DefaultClient, "http://"+b, token); err != nil {
		t.Errorf("new listener with an old token: %v", err)
	}
	cfgNow, rot := d.current()
	keyBefore := rot.State().Credentials.AccessKeyID

	// 2. An invalid configuration: refused, everything stays.
	reloadTo(Config{}, nil, fmt.Errorf("role_arn: required by source assume-role"))
	hupSync()
	l.await(t, 20)
	if c, _ := d.current(); len(c.Listen) != 2 || len(cfgNow.Listen) != 2 {
		t.Errorf("after a refused reload, listen = %v, want the running %v", c.Listen, cfgNow.Listen)
	}

	// 3. A new source (another lifetime): it starts beside the running
	// one and takes over on its first success; then B is dropped.
	reloadTo(cfg(func(c *Config) { c.DevLifetime = 2 * time.Hour }), rotator.NewDev(rotator.DevOptions{Lifetime: 2 * time.Hour}), nil)
	hupSync()
	if p := d.pendingGen(); p != nil {
		within(t, p.took, "the new source taking over")
	}
	d.drains.Wait() // B's drain, started by the switch
	l.await(t, 20)
	if _, rot := d.current(); rot.State().Credentials.AccessKeyID == keyBefore {
		t.Errorf("after a source change the key is still %q, want a fresh one", keyBefore)
	}
	if _, err := sdkLike(&http.Client{Timeout: time.Second}, "http://"+b, token); err == nil {
		t.Errorf("listener %s still answers after it left the configuration", b)
	}
	l.stop()

	// 4. A role rename: the listing names the new role at once.
	reloadTo(cfg(func(c *Config) { c.DevLifetime = 2 * time.Hour; c.RoleName = "renamed" }), nil, nil)
	hupSync()
	if _, err := sdkLike(http.DefaultClient, baseA, token); err != nil {
		t.Errorf("after a rename: %v", err)
	}
	req, _ := http.NewRequest("GET", baseA+"/latest/meta-data/iam/security-credentials/", nil)
	req.Header.Set("X-aws-ec2-metadata-token", token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "renamed" {
			t.Errorf("listing after a rename = %q, want renamed", b)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve() = %v, want nil after a drain", err)
	}
	n := 0
	l.keys.Range(func(any, any) bool { n++; return true })
	t.Logf("%d requests, %d failed, %d credential sets seen", l.requests.Load(), l.failures.Load(), n)
	if n < 2 {
		t.Errorf("%d credential sets seen, want the first and the new source's", n)
	}
	for _, want := range []string{`"message":"configuration reloaded"`, `"message":"configuration refused; the running one stays"`, `role_arn: required by source assume-role`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// newFakeSTS is the fake STS with the base keys and the role the
// assume-role sources of these tests use.
func newFakeSTS() *ststest.Server {
	return ststest.New(
		ststest.WithBaseCredentials(baseKeyID, baseSecret, "arn:aws:iam::123456789012:user/alice"),
		ststest.WithRole(ststest.Role{ARN: testRole, MaxSessionDuration: 12 * time.Hour}),
	)
}

// stsConfig is running with its source changed to assume-role against
// srv, and that source, built as imdsd run builds it (the real
// *sts.Client, in-process to srv). The role keeps its name, so clients
// need not list it again (a rename is TestReloadUnderLoad's).
func stsConfig(t *testing.T, srv *ststest.Server, running Config) (Config, rotator.Fetcher) {
	t.Helper()
	c := running
	c.Source, c.RoleARN, c.DevLifetime = "assume-role", testRole, 0
	c.STSEndpoint = "https://sts.us-east-1.amazonaws.com"
	c.Duration = 0
	c = c.withDefaults(noEnv)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	src, err := buildSource(t.Context(), c, stsDeps{
		loadConfig: func(context.Context, Config) (aws.Config, error) {
			return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(baseKeyID, baseSecret, "")}, nil
		},
		httpClient: &http.Client{Transport: srv.Transport()},
		getenv:     noEnv,
		now:        time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, src
}

// A reload to a source that fails its first fetch, under load: clients
// polling all along never get an error document while the old credentials
// are valid; imdsd reload exits 5 naming the error; imdsd status and the
// metrics show the pending source; once STS answers, the new source takes
// over without a failed request either.
func TestReloadFailingSourceUnderLoad(t *testing.T) {
	srv := newFakeSTS()
	td := startDaemon(t, defaultConfig(), rotator.NewDev(rotator.DevOptions{Lifetime: time.Hour}))
	running, _ := td.d.current()
	next, src := stsConfig(t, srv, running)
	td.reloadTo(next, src, nil)
	srv.Fail("AssumeRole", "AccessDenied", 0, -1)

	token := putToken(t, td.base)
	l := startLoad(t, td.base, token, 4)
	l.await(t, 20)

	code, out, errOut := td.cli(t.Context(), "reload")
	if code != exitPending || out != "" ||
		!strings.Contains(errOut, "imdsd reload: pending: the new source (assume-role) failed (AccessDenied, 1 attempts); the running one serves until it obtains credentials") ||
		!strings.Contains(errOut, "api error AccessDenied: User is not authorized to perform this action") {
		t.Errorf("reload to a failing source: exit %d, stdout %q, stderr %q; want exit 5 naming AccessDenied", code, out, errOut)
	}
	l.await(t, 20)

	st := td.status(t)
	if !st.Healthy || st.Source != "dev" || st.Pending == nil || st.Pending.Source != "assume-role" || st.Pending.FailingSince == nil ||
		st.Pending.LastError == nil || st.Pending.LastError.Code != "AccessDenied" || st.Pending.LastError.Class != "permanent" {
		t.Errorf("status while the new source fails = %+v, pending %+v", st, st.Pending)
	}
	if code, out, _ := td.cli(t.Context(), "status"); code != 0 || !strings.Contains(out, "  pending:      new source failing since ") ||
		!strings.Contains(out, "(assume-role, 1 failed attempts; next try in ") || !strings.Contains(out, "AccessDenied (permanent): ") ||
		!strings.Contains(out, "imdsd dev: serving valid credentials") {
		t.Errorf("status text: exit %d\n%s", code, out)
	}
	client, base, err := adminClient(td.sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v := scrape(t, client, base)["imdsd_reload_pending"]; v != 1 {
		t.Errorf("imdsd_reload_pending = %v while the new source fails, want 1", v)
	}

	// STS recovers; a refresh retries the pending source at once.
	p := td.d.pendingGen()
	if p == nil {
		t.Fatal("no pending source after the failed reload")
	}
	srv.ClearFaults()
	resp, err := client.Post(base+"/refresh", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	within(t, p.took, "the new source taking over once STS answers")
	l.await(t, 20)
	l.stop()

	issued := map[string]bool{}
	for _, c := range srv.Issued() {
		issued[c.AccessKeyID] = true
	}
	if last := l.last.Load(); last == nil || !issued[*last] {
		t.Errorf("clients last saw key %v, want one STS issued (%v)", last, issued)
	}
	st = td.status(t)
	if !st.Healthy || st.Source != "assume-role" || st.Pending != nil {
		t.Errorf("status after the switch = %+v, pending %+v", st, st.Pending)
	}
	if v := scrape(t, client, base)["imdsd_reload_pending"]; v != 0 {
		t.Errorf("imdsd_reload_pending = %v after the switch, want 0", v)
	}
	t.Logf("%d requests, %d failed", l.requests.Load(), l.failures.Load())
	if l.failures.Load() != 0 {
		t.Errorf("%d requests failed; want none while the old credentials were valid", l.failures.Load())
	}
}

// scrape returns the value of each unlabelled gauge or counter of
// GET /metrics.
func scrape(t *testing.T, client *http.Client, base string) map[string]float64 {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		// One series, unlabelled or labelled with the one role only.
		if len(f.Metric) == 1 && (len(f.Metric[0].Label) == 0 || len(f.Metric[0].Label) == 1 && f.Metric[0].Label[0].GetName() == "role") {
			if g := f.Metric[0].Gauge; g != nil {
				out[name] = g.GetValue()
			} else if c := f.Metric[0].Counter; c != nil {
				out[name] = c.GetValue()
			}
		}
	}
	return out
}

// startedFetcher closes started when Fetch is first called.
type startedFetcher struct {
	rotator.Fetcher
	once    sync.Once
	started chan struct{}
}

func (f *startedFetcher) Fetch(ctx context.Context) (rotator.Credentials, error) {
	f.once.Do(func() { close(f.started) })
	return f.Fetcher.Fetch(ctx)
}

// While a reload waits on an STS that does not answer, the admin API
// answers at once: status (showing the pending source), healthz, metrics;
// and clients keep the old credentials. A second reload replaces the
// waiting one, which then reports that.
func TestReloadDoesNotBlockAdmin(t *testing.T) {
	srv := newFakeSTS()
	srv.Inject(ststest.Fault{Action: "AssumeRole", Delay: time.Hour}) // ends when the caller gives up
	devSrc := rotator.NewDev(rotator.DevOptions{Lifetime: time.Hour})
	td := startDaemon(t, defaultConfig(), devSrc)
	running, _ := td.d.current()
	next, src := stsConfig(t, srv, running)
	gate := &startedFetcher{Fetcher: src, started: make(chan struct{})}
	td.reloadTo(next, gate, nil)

	type result struct {
		code        int
		out, errOut string
	}
	firstDone := make(chan struct{})
	var first result
	go func() {
		defer close(firstDone)
		first.code, first.out, first.errOut = td.cli(t.Context(), "reload", "--wait", "10m")
	}()
	within(t, gate.started, "the new source's first fetch")

	client, base, err := adminClient(td.sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"/status", "/healthz", "/metrics", "/credentials"} {
		start := time.Now()
		resp, err := client.Get(base + route)
		took := time.Since(start)
		if err != nil {
			t.Errorf("GET %s while a reload waits on STS: %v (after %s); want an answer within 1s", route, err, took)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s while a reload waits on STS = %d", route, resp.StatusCode)
		}
		t.Logf("GET %s answered in %s while the reload waited on STS", route, took)
	}
	st := td.status(t)
	if !st.Healthy || st.Source != "dev" || st.Pending == nil || st.Pending.FailingSince != nil || st.Pending.LastError != nil {
		t.Errorf("status while the new source waits = %+v, pending %+v", st, st.Pending)
	}
	if _, out, _ := td.cli(t.Context(), "status"); !strings.Contains(out, "  pending:      new source waiting for its first answer since ") {
		t.Errorf("status text while the new source waits:\n%s", out)
	}
	if _, err := sdkLike(http.DefaultClient, td.base, putToken(t, td.base)); err != nil {
		t.Errorf("credentials while a reload waits on STS: %v", err)
	}

	// Back to the running configuration: applied at once, replacing the
	// pending source, whose reload reports it.
	td.reloadTo(running, devSrc, nil)
	if code, out, errOut := td.cli(t.Context(), "reload"); code != 0 || out != "applied: configuration reloaded\n" {
		t.Errorf("second reload: exit %d, %q, %q", code, out, errOut)
	}
	within(t, firstDone, "the first reload's answer")
	if first.code != 1 || !strings.Contains(first.errOut, "imdsd reload: replaced: replaced by a later reload, or imdsd stopped, before the new source took over") {
		t.Errorf("first reload: exit %d, stdout %q, stderr %q", first.code, first.out, first.errOut)
	}
	if st := td.status(t); st.Pending != nil || st.Source != "dev" {
		t.Errorf("status after the replacement = %+v, pending %+v", st, st.Pending)
	}
}

// imdsd reload waits at most --wait for a new source: then it is pending
// (exit 5), and status says it still waits.
func TestReloadWaitBound(t *testing.T) {
	srv := newFakeSTS()
	srv.Inject(ststest.Fault{Action: "AssumeRole", Delay: time.Hour})
	td := startDaemon(t, defaultConfig(), rotator.NewDev(rotator.DevOptions{Lifetime: time.Hour}))
	running, _ := td.d.current()
	next, src := stsConfig(t, srv, running)
	td.reloadTo(next, src, nil)
	code, out, errOut := td.cli(t.Context(), "reload", "--wait", "50ms")
	if code != exitPending || out != "" || !strings.Contains(errOut, "imdsd reload: pending: the new source (assume-role) has not answered after 50ms; the running one serves until it obtains credentials") {
		t.Errorf("reload --wait 50ms: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := td.cli(t.Context(), "reload", "--wait", "11m"); code != exitUsage || !strings.Contains(errOut, "--wait: must be 0..10m0s (got 11m0s)") {
		t.Errorf("reload --wait 11m: exit %d, %q", code, errOut)
	}
}

// A further reload replaces a pending source: the replaced one stops, the
// new one is pending in its place.
func TestReloadReplacesPending(t *testing.T) {
	td := startDaemon(t, defaultConfig(), rotator.NewDev(rotator.DevOptions{Lifetime: time.Hour}))
	running, _ := td.d.current()
	failing := &flaky{}
	failing.fail.Store(true)
	next := running
	next.DevLifetime = 2 * time.Hour // another source, as far as reload can tell
	td.reloadTo(next, failing, nil)
	if code, _, errOut := td.cli(t.Context(), "reload"); code != exitPending || !strings.Contains(errOut, "failed (AccessDenied, 1 attempts)") {
		t.Fatalf("reload to a failing source: exit %d, %q", code, errOut)
	}
	p1 := td.d.pendingGen()
	next.DevLifetime = 3 * time.Hour
	td.reloadTo(next, failing, nil)
	if code, _, errOut := td.cli(t.Context(), "reload"); code != exitPending {
		t.Fatalf("second reload to a failing source: exit %d, %q", code, errOut)
	}
	within(t, p1.done, "the replaced source stopping")
	if p2 := td.d.pendingGen(); p2 == nil || p2 == p1 || p2.cfg.DevLifetime != 3*time.Hour {
		t.Errorf("pending after the second reload = %+v, want the second one", p2)
	}
	if st := td.status(t); st.Source != "dev" || !st.Healthy || st.Pending == nil {
		t.Errorf("status = %+v, pending %+v", st, st.Pending)
	}
}

// onceThenFail hands out one set that lives lifetime, then fails.
type onceThenFail struct {
	lifetime time.Duration
	calls    atomic.Int32
}

func (f *onceThenFail) Fetch(context.Context) (rotator.Credentials, error) {
	if f.calls.Add(1) == 1 {
		return rotator.Credentials{Credentials: aws.Credentials{AccessKeyID: "ASIAOLDSOURCE0000OLD1", SecretAccessKey: "old-secret", SessionToken: "old-token",
			CanExpire: true, Expires: time.Now().Add(f.lifetime)}}, nil
	}
	return rotator.Credentials{}, &smithy.GenericAPIError{Code: "AccessDenied", Message: "the old role is gone"}
}

// A pending source that keeps failing takes over when the running
// source's credentials stop being served (ExpiryMargin before they
// expire), not before: then clients are failing anyway, and the new source
// is no worse. Hours of schedule in a synctest bubble.
func TestReloadPendingTakesOverAtExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := defaultConfig().withDefaults(noEnv)
		c.Listen = nil // no listeners: the sources alone
		old := &onceThenFail{lifetime: time.Hour}
		d, err := newDaemon(c, old, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		d.defaultGen().start(ctx)
		<-d.defaultGen().tried
		expires := d.defaultGen().rot.State().Credentials.Expires

		next := c
		next.DevLifetime = 2 * time.Hour
		failing := &flaky{}
		failing.fail.Store(true)
		ps, err := d.reload(ctx, func(context.Context) (Config, map[string]rotator.Fetcher, error) { return oneRole(next, failing, nil) }, nil)
		if err != nil || len(ps) != 1 {
			t.Fatalf("reload() = %v, %v; want a pending source", ps, err)
		}
		p := ps[0]
		if a := awaitSource(ctx, p, time.Minute); a.Result != reloadPending || !strings.Contains(a.Error, "AccessDenied") {
			t.Errorf("awaitSource() = %+v, want pending with AccessDenied", a)
		}

		servedUntil := expires.Add(-rotator.ExpiryMargin)
		time.Sleep(time.Until(servedUntil) - time.Second)
		synctest.Wait()
		if d.pendingGen() != p {
			t.Fatalf("the pending source took over at %s, before the old credentials stopped being served (%s)", time.Now(), servedUntil)
		}
		if st := d.status(time.Now()); !st.Healthy || st.Pending == nil || st.Pending.LastError.Failures < 2 {
			t.Errorf("status a second before = %+v, pending %+v; want healthy, pending retried", st, st.Pending)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if d.pendingGen() != nil {
			t.Fatalf("at %s the old credentials are no longer served and the new source still waits", time.Now())
		}
		if cfg, rot := d.current(); cfg.DevLifetime != 2*time.Hour || rot != p.rot {
			t.Errorf("running %+v after the old credentials lapsed, want the new source", cfg)
		}
		select {
		case <-d.defaultGen().took:
		default:
			t.Error("took not closed after the switch")
		}
		if a := awaitSource(ctx, p, time.Minute); a.Result != reloadApplied || !strings.Contains(a.Error, "AccessDenied") {
			t.Errorf("awaitSource() after the switch = %+v, want applied with the failure", a)
		}
		cancel()
		d.stopSources()
	})
}
