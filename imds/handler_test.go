package imds_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"github.com/imdsd/imdsd/imds"
	"github.com/rs/zerolog"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fakeClock is a settable wall clock for tokens and expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

// testCreds are what the tests publish; the secret must never leak where
// it should not.
var testCreds = aws.Credentials{
	AccessKeyID:     "ASIAEXAMPLEKEY12345X",
	SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	SessionToken:    "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN+/=",
	CanExpire:       true,
	Expires:         t0.Add(time.Hour),
}

type fixture struct {
	h     *imds.Handler
	clock *fakeClock
}

func newFixture(t testing.TB, mutate ...func(*imds.Config)) *fixture {
	t.Helper()
	clock := &fakeClock{t: t0}
	tokens, err := imds.NewTokens([]byte("0123456789abcdef0123456789abcdef"), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := imds.Config{
		RoleName:    "imdsd-dev",
		Region:      "us-east-1",
		HostSeed:    "test-host",
		LaunchTime:  t0.Add(-24 * time.Hour),
		Tokens:      tokens,
		ListenAddrs: []string{"127.0.0.1:8169", "[::1]:8169"},
		LocalAddrs: func() ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("192.168.1.20")}, nil
		},
		Now: clock.Now,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	h, err := imds.NewHandler(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewHandler() = %v", err)
	}
	return &fixture{h: h, clock: clock}
}

func (f *fixture) publish() {
	f.h.Publish(imds.Snapshot{
		Credentials: testCreds,
		Obtained:    t0,
		RoleARN:     "arn:aws:iam::123456789012:role/imdsd-dev",
	})
}

type req struct {
	method, path string
	hdr          map[string]string
	remote, host string
}

func (f *fixture) do(r req) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodGet
	}
	hr := httptest.NewRequest(r.method, "http://169.254.169.254"+r.path, nil)
	hr.RemoteAddr = "127.0.0.1:40000"
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	if r.host != "" {
		hr.Host = r.host
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, hr)
	return w
}

func (f *fixture) token(t testing.TB, ttl string) string {
	t.Helper()
	w := f.do(req{method: http.MethodPut, path: "/latest/api/token", hdr: map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl}})
	if w.Code != http.StatusOK {
		t.Fatalf("PUT token: status %d", w.Code)
	}
	return w.Body.String()
}

// get is a GET with a fresh valid token.
func (f *fixture) get(t testing.TB, path string) *httptest.ResponseRecorder {
	t.Helper()
	return f.do(req{path: path, hdr: map[string]string{"x-aws-ec2-metadata-token": f.token(t, "21600")}})
}

// SPEC.md §13 item 1: the token PUT.
func TestTokenPUT(t *testing.T) {
	f := newFixture(t)
	const ttlHdr = "X-aws-ec2-metadata-token-ttl-seconds"
	tests := []struct {
		name       string
		r          req
		wantStatus int
		wantEcho   string
		wantAllow  string
	}{
		{"go sdk ttl 300", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "300"}}, 200, "300", ""},
		{"botocore ttl 21600", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "21600"}}, 200, "21600", ""},
		{"ttl 1", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "1"}}, 200, "1", ""},
		{"lower-case header", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{"x-aws-ec2-metadata-token-ttl-seconds": "60"}}, 200, "60", ""},
		{"ttl 0", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "0"}}, 400, "", ""},
		{"ttl 21601", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "21601"}}, 400, "", ""},
		{"ttl abc", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "abc"}}, 400, "", ""},
		{"ttl negative", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "-300"}}, 400, "", ""},
		{"ttl plus sign", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "+300"}}, 400, "", ""},
		{"ttl exponent", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "3e2"}}, 400, "", ""},
		{"ttl 30000", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "30000"}}, 400, "", ""},
		{"ttl empty", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: ""}}, 400, "", ""},
		{"ttl missing", req{method: "PUT", path: "/latest/api/token"}, 400, "", ""},
		{"x-forwarded-for", req{method: "PUT", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "300", "X-Forwarded-For": "10.0.0.1"}}, 403, "", ""},
		{"versioned token path", req{method: "PUT", path: "/2021-03-23/api/token", hdr: map[string]string{ttlHdr: "300"}}, 403, "", ""},
		{"GET token path", req{path: "/latest/api/token"}, 405, "", "PUT"},
		{"POST token path", req{method: "POST", path: "/latest/api/token", hdr: map[string]string{ttlHdr: "300"}}, 405, "", "PUT"},
		{"DELETE token path", req{method: "DELETE", path: "/latest/api/token"}, 405, "", "PUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(tc.r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tc.wantStatus)
			}
			if got := w.Header().Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != tc.wantEcho {
				t.Errorf("TTL echo = %q, want %q", got, tc.wantEcho)
			}
			if got := w.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			if tc.wantStatus != 200 {
				if w.Body.Len() != 0 {
					t.Errorf("body = %q, want empty", w.Body)
				}
				return
			}
			tok := w.Body.String()
			if len(tok) > 100 || !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(tok) {
				t.Errorf("token %q: want ≤ 100 URL-safe base64 characters", tok)
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
		})
	}
}

// SPEC.md §13 item 2: token enforcement.
func TestTokenEnforcement(t *testing.T) {
	const path = "/latest/meta-data/iam/security-credentials/imdsd-dev"
	t.Run("required", func(t *testing.T) {
		f := newFixture(t)
		f.publish()
		if w := f.do(req{path: path}); w.Code != 401 {
			t.Errorf("no token: status %d, want 401", w.Code)
		}
		if w := f.do(req{path: path, hdr: map[string]string{"X-aws-ec2-metadata-token": "AQAAAPm_49V6IGWwyABYuQXrWfdP6yrb3-iy6UsOKg5zeol4pFOp_g=="}}); w.Code != 401 {
			t.Errorf("foreign token: status %d, want 401", w.Code)
		}
		other := newFixture(t, func(c *imds.Config) { c.Tokens = nil })
		if w := f.do(req{path: path, hdr: map[string]string{"X-aws-ec2-metadata-token": other.token(t, "300")}}); w.Code != 401 {
			t.Errorf("token of another key: status %d, want 401", w.Code)
		}
		tok := f.token(t, "1")
		if w := f.do(req{path: path, hdr: map[string]string{"X-aws-ec2-metadata-token": tok}}); w.Code != 200 {
			t.Errorf("fresh token: status %d, want 200", w.Code)
		}
		f.clock.Add(999 * time.Millisecond)
		if w := f.do(req{path: path, hdr: map[string]string{"X-aws-ec2-metadata-token": tok}}); w.Code != 200 {
			t.Errorf("token 1ms before expiry: status %d, want 200", w.Code)
		}
		f.clock.Add(time.Millisecond)
		if w := f.do(req{path: path, hdr: map[string]string{"X-aws-ec2-metadata-token": tok}}); w.Code != 401 {
			t.Errorf("token at expiry: status %d, want 401", w.Code)
		}
		f.clock.Add(2 * time.Second)
		if w := f.do(req{path: path, hdr: map[string]string{"x-aws-ec2-metadata-token": tok}}); w.Code != 401 {
			t.Errorf("expired token: status %d, want 401", w.Code)
		}
		if w := f.do(req{path: "/latest/meta-data/no-such-thing"}); w.Code != 401 {
			t.Errorf("unknown path without token: status %d, want 401", w.Code)
		}
	})
	t.Run("optional", func(t *testing.T) {
		f := newFixture(t, func(c *imds.Config) { c.TokenMode = imds.TokenOptional })
		f.publish()
		if w := f.do(req{path: path}); w.Code != 200 {
			t.Errorf("IMDSv1 request: status %d, want 200", w.Code)
		}
		if w := f.do(req{path: path, hdr: map[string]string{"X-aws-ec2-metadata-token": "bogus"}}); w.Code != 401 {
			t.Errorf("invalid token: status %d, want 401", w.Code)
		}
		if w := f.do(req{path: path, hdr: map[string]string{"X-aws-ec2-metadata-token": f.token(t, "300")}}); w.Code != 200 {
			t.Errorf("valid token: status %d, want 200", w.Code)
		}
	})
}

// SPEC.md §13 items 3–6 and the rest of the tree: every path, with and
// without a trailing slash, never redirected.
func TestPaths(t *testing.T) {
	f := newFixture(t)
	f.publish()
	const md = "/latest/meta-data/"
	tests := []struct {
		path   string
		status int
		body   string // exact; "golden:NAME" compares with testdata/NAME.golden
	}{
		{"/", 200, "latest"},
		{"/latest", 200, "dynamic\nmeta-data"},
		{"/latest/", 200, "dynamic\nmeta-data"},
		{md, 200, "ami-id\nhostname\niam/\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nplacement/\nservices/"},
		{"/latest/meta-data", 200, "ami-id\nhostname\niam/\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nplacement/\nservices/"},
		{md + "iam/", 200, "info\nsecurity-credentials/"},
		// Item 3: byte-exact role name, no newline (botocore uses the raw body).
		{md + "iam/security-credentials/", 200, "imdsd-dev"},
		{md + "iam/security-credentials", 200, "imdsd-dev"},
		// Item 4.
		{md + "iam/security-credentials/imdsd-dev", 200, "golden:credentials"},
		{md + "iam/security-credentials/imdsd-dev/", 200, "golden:credentials"},
		{md + "iam/security-credentials/other-role", 404, ""},
		{md + "iam/security-credentials/IMDSD-DEV", 404, ""},
		// Item 6.
		{md + "iam/security-credentials-extended/", 200, "imdsd-dev"},
		{md + "iam/security-credentials-extended", 200, "imdsd-dev"},
		{md + "iam/security-credentials-extended/imdsd-dev", 200, "golden:credentials-extended"},
		{md + "iam/security-credentials-extended/other-role", 404, ""},
		{md + "iam/info", 200, "golden:info"},
		{md + "iam/info/", 200, "golden:info"},
		// Item 5.
		{md + "placement/", 200, "availability-zone\navailability-zone-id\nregion"},
		{md + "placement/availability-zone", 200, "us-east-1a"},
		{md + "placement/availability-zone/", 200, "us-east-1a"},
		{md + "placement/availability-zone-id", 200, "use1-az1"},
		{md + "placement/region", 200, "us-east-1"},
		{md + "placement/region/", 200, "us-east-1"},
		{md + "instance-id", 200, "i-002bcc21872efa8f9"},
		{md + "instance-type", 200, "t3.micro"},
		{md + "local-ipv4", 200, "127.0.0.1"},
		{md + "hostname", 200, "ip-127-0-0-1.us-east-1.compute.internal"},
		{md + "local-hostname/", 200, "ip-127-0-0-1.us-east-1.compute.internal"},
		{md + "mac", 200, "02:c3:96:a3:73:22"},
		{md + "ami-id", 200, "ami-fb1eea87e8b010aba"},
		{md + "services/domain", 200, "amazonaws.com"},
		{md + "services/partition", 200, "aws"},
		{"/latest/dynamic/", 200, "instance-identity/"},
		{"/latest/dynamic/instance-identity/", 200, "document"},
		{"/latest/dynamic/instance-identity/document", 200, "golden:identity"},
		{"/latest/dynamic/instance-identity/document/", 200, "golden:identity"},
		// Unknown or deliberately absent (SPEC.md R5.7).
		{md + "identity-credentials/ec2/security-credentials/ec2-instance", 404, ""},
		{"/latest/dynamic/instance-identity/pkcs7", 404, ""},
		{"/2021-03-23/meta-data/", 404, ""},
		{"/latest//meta-data/", 404, ""},
		{"/LATEST/meta-data/", 404, ""},
		{"/nope", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			w := f.get(t, tc.path)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d (Location %q)", w.Code, tc.status, w.Header().Get("Location"))
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			if s := w.Header().Get("Server"); s != "EC2ws" {
				t.Errorf("Server = %q, want EC2ws", s)
			}
			if name, ok := strings.CutPrefix(tc.body, "golden:"); ok {
				golden(t, name, w.Body.String())
				return
			}
			if w.Body.String() != tc.body {
				t.Errorf("body = %q, want %q", w.Body, tc.body)
			}
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./imds -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("body differs from %s (-want +got):\n%s", path, diff)
	}
}

var imdsTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// SPEC.md §13 item 4 as the clients read it.
func TestCredentialsDocument(t *testing.T) {
	f := newFixture(t)
	f.publish()
	for _, path := range []string{
		"/latest/meta-data/iam/security-credentials/imdsd-dev",
		"/latest/meta-data/iam/security-credentials-extended/imdsd-dev",
	} {
		var doc map[string]string
		if err := json.Unmarshal(f.get(t, path).Body.Bytes(), &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc["Code"] != "Success" || doc["Type"] != "AWS-HMAC" {
			t.Errorf("%s: Code, Type = %q, %q, want Success, AWS-HMAC", path, doc["Code"], doc["Type"])
		}
		for _, k := range []string{"LastUpdated", "Expiration"} {
			if !imdsTimeRE.MatchString(doc[k]) {
				t.Errorf("%s: %s = %q, want YYYY-MM-DDTHH:MM:SSZ", path, k, doc[k])
			}
		}
		exp, _ := time.Parse(time.RFC3339, doc["Expiration"])
		if left := exp.Sub(f.clock.Now()); left < 30*time.Minute {
			t.Errorf("%s: %v left, want ≥ 30m", path, left)
		}
		if doc["AccessKeyId"] != testCreds.AccessKeyID || doc["SecretAccessKey"] != testCreds.SecretAccessKey || doc["Token"] != testCreds.SessionToken {
			t.Errorf("%s: served keys differ from published ones", path)
		}
		if strings.Contains(path, "extended") && doc["AccountId"] != "123456789012" {
			t.Errorf("%s: AccountId = %q, want 123456789012", path, doc["AccountId"])
		}
	}
}

// SPEC.md R5.5 and R7.1: never serve expired credentials; say why instead.
func TestErrorDocument(t *testing.T) {
	f := newFixture(t)
	const path = "/latest/meta-data/iam/security-credentials/imdsd-dev"
	golden(t, "not-ready", f.get(t, path).Body.String())
	if w := f.get(t, "/latest/meta-data/iam/security-credentials/"); w.Body.String() != "imdsd-dev" {
		t.Errorf("listing before credentials = %q, want the role name", w.Body)
	}

	f.h.Publish(imds.Snapshot{
		Credentials: testCreds, Obtained: t0,
		ErrCode: "AccessDenied", ErrMessage: "User is not authorized to perform: sts:AssumeRole", ErrAt: t0.Add(10 * time.Minute),
	})
	f.clock.Add(59*time.Minute + 59*time.Second)
	if w := f.get(t, path); !strings.Contains(w.Body.String(), `"Code" : "Success"`) {
		t.Fatalf("1s before expiry, despite the failure: %s, want credentials", w.Body)
	}
	f.clock.Add(time.Second)
	w := f.get(t, path)
	if w.Code != 200 {
		t.Fatalf("status = %d, want 200 (IMDS error documents are 200)", w.Code)
	}
	if strings.Contains(w.Body.String(), testCreds.SecretAccessKey) {
		t.Fatal("expired credentials served")
	}
	golden(t, "expired-access-denied", w.Body.String())
}

// HEAD, wrong methods, and the guards.
func TestMethodsAndGuards(t *testing.T) {
	f := newFixture(t, func(c *imds.Config) {
		c.AllowedClients = []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}
	})
	f.publish()
	tok := f.token(t, "300")
	const creds = "/latest/meta-data/iam/security-credentials/imdsd-dev"
	withTok := func(r req) req {
		r.hdr = map[string]string{"X-aws-ec2-metadata-token": tok}
		return r
	}
	tests := []struct {
		name   string
		r      req
		status int
		allow  string
	}{
		{"HEAD", withTok(req{method: "HEAD", path: creds}), 200, ""},
		{"PUT metadata", withTok(req{method: "PUT", path: creds}), 405, "GET, HEAD"},
		{"POST metadata", withTok(req{method: "POST", path: "/latest/meta-data/"}), 405, "GET, HEAD"},
		{"OPTIONS metadata", withTok(req{method: "OPTIONS", path: "/latest/meta-data/"}), 405, "GET, HEAD"},
		{"POST unknown", withTok(req{method: "POST", path: "/nope"}), 404, ""},
		{"remote client", withTok(req{path: creds, remote: "10.1.2.3:5555"}), 403, ""},
		{"remote client IPv6", withTok(req{path: creds, remote: "[2001:db8::1]:5555"}), 403, ""},
		{"this host's address", withTok(req{path: creds, remote: "192.168.1.20:5555"}), 200, ""},
		{"allowed network", withTok(req{path: creds, remote: "172.17.0.3:5555"}), 200, ""},
		{"IPv6 loopback", withTok(req{path: creds, remote: "[::1]:5555"}), 200, ""},
		{"IPv4-mapped loopback", withTok(req{path: creds, remote: "[::ffff:127.0.0.1]:5555"}), 200, ""},
		{"unparsable remote", withTok(req{path: creds, remote: "@"}), 403, ""},
		{"host localhost", withTok(req{path: creds, host: "localhost:8169"}), 200, ""},
		{"host loopback literal", withTok(req{path: creds, host: "127.0.0.2:8169"}), 200, ""},
		{"host IPv6 loopback", withTok(req{path: creds, host: "[::1]:8169"}), 200, ""},
		{"host IPv6 IMDS", withTok(req{path: creds, host: "[fd00:ec2::254]"}), 200, ""},
		{"host name (DNS rebinding)", withTok(req{path: creds, host: "evil.example:8169"}), 403, ""},
		{"host another IP", withTok(req{path: creds, host: "10.9.9.9"}), 403, ""},
		{"host empty", withTok(req{path: creds, host: " "}), 403, ""},
		{"host malformed", withTok(req{path: creds, host: "[::1"}), 403, ""},
		{"token PUT from remote", req{method: "PUT", path: "/latest/api/token", remote: "10.1.2.3:5555", hdr: map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300"}}, 403, ""},
		{"token PUT with foreign host", req{method: "PUT", path: "/latest/api/token", host: "evil.example", hdr: map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300"}}, 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(tc.r)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if tc.r.method == "HEAD" {
				if w.Body.Len() != 0 {
					t.Errorf("HEAD body = %d bytes, want none", w.Body.Len())
				}
				if w.Header().Get("Content-Length") == "0" {
					t.Errorf("HEAD Content-Length = 0, want the GET body's length")
				}
			}
			if tc.status != 200 && strings.Contains(w.Body.String(), testCreds.SecretAccessKey) {
				t.Errorf("refused request got the secret")
			}
		})
	}
}

func TestNewHandlerRejectsBadConfig(t *testing.T) {
	_, err := imds.NewHandler(imds.Config{
		RoleName:         "bad role",
		Region:           "eu-west-1",
		AvailabilityZone: "us-east-1a",
		InstanceID:       "i-xyz",
		AccountID:        "12",
		ListenAddrs:      []string{"0.0.0.0", "example.com:80"},
	}, zerolog.Nop())
	want := []string{
		`role_name: 1..64 characters of [A-Za-z0-9+=,.@_-] (got "bad role")`,
		`availability_zone: the region plus one lower-case letter, e.g. eu-west-1a (got "us-east-1a")`,
		`account_id: 12 digits (got "12")`,
		`instance_id: i- and 17 lower-case hex digits (got "i-xyz")`,
		`listen: must be host:port with an IP address or localhost, e.g. 127.0.0.1:8169 or [::1]:8169 (got "0.0.0.0")`,
		`listen: host must be an IP address or localhost, e.g. 127.0.0.1:8169 or [::1]:8169 (got "example.com:80")`,
	}
	if err == nil {
		t.Fatal("NewHandler() = nil error, want every problem listed")
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("NewHandler() error (-want +got):\n%s", diff)
	}
}

func TestRequestStats(t *testing.T) {
	stats := &imds.RequestStats{}
	f := newFixture(t, func(c *imds.Config) { c.Stats = stats })
	f.publish()
	f.get(t, "/latest/meta-data/iam/security-credentials/imdsd-dev") // a token PUT and a GET
	f.get(t, "/latest/meta-data/placement/region/")
	f.do(req{path: "/latest/meta-data/iam/security-credentials/imdsd-dev"}) // no token
	f.get(t, "/no/such/path")
	f.do(req{method: "PUT", path: "/latest/api/token"}) // no TTL
	got := map[string]uint64{}
	stats.Each(func(route string, status int, n uint64) { got[fmt.Sprintf("%s %d", route, status)] = n })
	want := map[string]uint64{
		"token 200": 3, "token 400": 1,
		"credentials 200": 1, "credentials 401": 1,
		"metadata 200": 1, "other 404": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Each() (-want +got):\n%s", diff)
	}
}

// Lengths are checked apart from the character classes.
func TestConfigLengths(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*imds.Config)
		want string
	}{
		{func(c *imds.Config) { c.RoleName = strings.Repeat("r", 65) }, "role_name: 1..64 characters"},
		{func(c *imds.Config) { c.Hostname = strings.Repeat("h", 256) }, "hostname: a host name"},
		{func(c *imds.Config) { c.InstanceType = strings.Repeat("t", 256) }, "instance_type: an instance type"},
	} {
		c := imds.Config{RoleName: strings.Repeat("r", 64), Region: "us-east-1", Hostname: strings.Repeat("h", 255)}
		if _, err := imds.NewHandler(c, zerolog.Nop()); err != nil {
			t.Fatalf("NewHandler() at the limits = %v", err)
		}
		tc.mut(&c)
		if _, err := imds.NewHandler(c, zerolog.Nop()); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("NewHandler() = %v, want %s…", err, tc.want)
		}
	}
}

// TestHostRemembered: the Host the guard last accepted is taken again
// without parsing, but never one that was accepted only as the address a
// connection reached (another connection may have reached another).
func TestHostRemembered(t *testing.T) {
	f := newFixture(t)
	f.publish()
	tok := f.token(t, "21600")
	creds := "/latest/meta-data/iam/security-credentials/imdsd-dev"
	get := func(host, local string) int {
		hr := httptest.NewRequest(http.MethodGet, "http://169.254.169.254"+creds, nil)
		hr.RemoteAddr, hr.Host = "127.0.0.1:40000", host
		hr.Header.Set("X-aws-ec2-metadata-token", tok)
		if local != "" {
			la := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(local))
			hr = hr.WithContext(context.WithValue(hr.Context(), http.LocalAddrContextKey, la))
		}
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, hr)
		return w.Code
	}
	for i, tc := range []struct {
		host, local string
		want        int
	}{
		{"127.0.0.1:8169", "", 200},
		{"127.0.0.1:8169", "", 200}, // remembered
		{"evil.example:8169", "", 403},
		{"10.1.2.3:8169", "10.1.2.3:8169", 200}, // the address this connection reached
		{"10.1.2.3:8169", "10.9.9.9:8169", 403}, // not remembered for another
		{"10.1.2.3:8169", "", 403},
		{"169.254.169.254", "", 200},
		{"127.0.0.1:8169", "", 200},
	} {
		if got := get(tc.host, tc.local); got != tc.want {
			t.Errorf("request %d: Host %q (connection to %q) = %d, want %d", i, tc.host, tc.local, got, tc.want)
		}
	}
}
