package daemon

import (
	"bytes"
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
	"time"

	"github.com/imdsd/imdsd/rotator"
)

// freeAddr returns a loopback address nobody listens on.
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

// SIGHUP under load: listeners and the source change, an invalid
// configuration is refused; clients polling all along never see a failure,
// tokens issued before stay valid, and connections to listeners that stay
// are kept. Then a role rename takes effect (clients re-list the role, as
// SDKs do on their next refresh).
func TestReloadUnderLoad(t *testing.T) {
	a, b := freeAddr(t), freeAddr(t)
	adminDir, err := os.MkdirTemp("/tmp", "imdsd-reload-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(adminDir) })
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
	var next atomic.Pointer[func(context.Context) (Config, rotator.Fetcher, error)]
	reloadTo := func(c Config, f rotator.Fetcher, err error) {
		fn := func(context.Context) (Config, rotator.Fetcher, error) { return c, f, err }
		next.Store(&fn)
	}
	hup := make(chan os.Signal)
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- d.serve(ctx, &out, hup, func(ctx context.Context) (Config, rotator.Fetcher, error) { return (*next.Load())(ctx) })
	}()
	<-d.ready
	baseA := "http://" + a
	token := putToken(t, baseA)

	// Clients poll A (kept throughout) on keep-alive connections.
	var failures, requests atomic.Int64
	var keys sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				key, err := sdkLike(c, baseA, token)
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("request failed: %v", err)
					continue
				}
				keys.Store(key, true)
			}
		})
	}
	hupAndWait := func() {
		hup <- os.Interrupt // any value: serve only counts them
		// A second send is taken only once the first reload is over.
		hup <- os.Interrupt
		time.Sleep(30 * time.Millisecond) // let the clients run across it
	}
	time.Sleep(50 * time.Millisecond)

	// 1. Same source, a second listener, another client rule.
	reloadTo(cfg(func(c *Config) { c.Listen = []string{a, b}; c.AllowClient = []string{"172.17.0.0/16"} }), rotator.NewDev(rotator.DevOptions{Lifetime: time.Hour}), nil)
	hupAndWait()
	if _, err := sdkLike(http.DefaultClient, "http://"+b, token); err != nil {
		t.Errorf("new listener with an old token: %v", err)
	}
	cfgNow, rot := d.current()
	keyBefore := rot.State().Credentials.AccessKeyID

	// 2. An invalid configuration: refused, everything stays.
	reloadTo(Config{}, nil, fmt.Errorf("role_arn: required by source assume-role"))
	hupAndWait()
	if c, _ := d.current(); len(c.Listen) != 2 || len(cfgNow.Listen) != 2 {
		t.Errorf("after a refused reload, listen = %v, want the running %v", c.Listen, cfgNow.Listen)
	}

	// 3. A new source (another lifetime): fresh credentials, B dropped.
	reloadTo(cfg(func(c *Config) { c.DevLifetime = 2 * time.Hour }), rotator.NewDev(rotator.DevOptions{Lifetime: 2 * time.Hour}), nil)
	hupAndWait()
	if _, rot := d.current(); rot.State().Credentials.AccessKeyID == keyBefore {
		t.Errorf("after a source change the key is still %q, want a fresh one", keyBefore)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := sdkLike(&http.Client{Timeout: time.Second}, "http://"+b, token); err == nil {
		t.Errorf("listener %s still answers after it left the configuration", b)
	}

	close(stop)
	wg.Wait()

	// 4. A role rename: the listing names the new role at once.
	reloadTo(cfg(func(c *Config) { c.DevLifetime = 2 * time.Hour; c.RoleName = "renamed" }), nil, nil)
	hupAndWait()
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
	keys.Range(func(any, any) bool { n++; return true })
	t.Logf("%d requests, %d failed, %d credential sets seen", requests.Load(), failures.Load(), n)
	if n < 2 {
		t.Errorf("%d credential sets seen, want the first and the new source's", n)
	}
	for _, want := range []string{`"message":"configuration reloaded"`, `"message":"configuration refused; the running one stays"`, `role_arn: required by source assume-role`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}
