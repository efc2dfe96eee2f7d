package imds_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/imdsd/imdsd/imds"
)

var containerNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func containerCreds(expires time.Time) imds.Snapshot {
	return imds.Snapshot{
		Credentials: aws.Credentials{
			AccessKeyID:     "ASIACONTAINER0000001",
			SecretAccessKey: "container/secret/key/000000000000000000",
			SessionToken:    "IQoJb3JpZ2luX2VjCONTAINERTOKEN",
			CanExpire:       true,
			Expires:         expires,
		},
		Obtained: containerNow,
		RoleARN:  "arn:aws:iam::123456789012:role/deploy",
	}
}

func newContainerHandler(t testing.TB, now *time.Time) (*imds.ContainerHandler, string) {
	t.Helper()
	h := imds.NewContainerHandler(imds.ContainerConfig{
		AllowedClients: []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16")},
		Now:            func() time.Time { return *now },
		LocalAddrs:     func() ([]netip.Addr, error) { return nil, nil },
	}, zerolog.Nop())
	tok := imds.NewContainerToken()
	if err := h.SetToken("deploy", tok); err != nil {
		t.Fatal(err)
	}
	return h, tok
}

// The container endpoint's answers (SPEC.md R9.4–R9.7), through the full
// handler: every answer is JSON with Content-Type application/json, the
// token is checked before anything about the credentials is told.
func TestContainerHandler(t *testing.T) {
	now := containerNow
	h, tok := newContainerHandler(t, &now)
	h.Publish("deploy", containerCreds(now.Add(time.Hour)))
	h.Publish("hidden", containerCreds(now.Add(time.Hour))) // no token: not exposed

	type req struct {
		method, path, remote string
		auth                 []string
	}
	get := func(path string, auth ...string) req { return req{"GET", path, "127.0.0.1:5000", auth} }
	tests := []struct {
		name     string
		req      req
		status   int
		wantCode string // Code of the JSON error; "" for success
	}{
		{"success", get("/roles/deploy", tok), 200, ""},
		{"missing token", get("/roles/deploy"), 401, "MissingAuthorizationToken"},
		{"empty token", get("/roles/deploy", ""), 401, "MissingAuthorizationToken"},
		{"wrong token", get("/roles/deploy", imds.NewContainerToken()), 403, "AccessDenied"},
		{"token with a scheme", get("/roles/deploy", "Bearer "+tok), 403, "AccessDenied"},
		{"token with a newline", get("/roles/deploy", tok+"\n"), 403, "AccessDenied"},
		{"two tokens", get("/roles/deploy", tok, tok), 403, "AccessDenied"},
		{"unknown role", get("/roles/other", tok), 404, "NotFound"},
		{"role without a token", get("/roles/hidden", tok), 404, "NotFound"},
		{"no role", get("/roles/", tok), 404, "NotFound"},
		{"other path", get("/latest/meta-data/iam/security-credentials/deploy", tok), 404, "NotFound"},
		{"POST", req{"POST", "/roles/deploy", "127.0.0.1:5000", []string{tok}}, 405, "MethodNotAllowed"},
		{"allowed container network", req{"GET", "/roles/deploy", "10.88.0.7:40000", []string{tok}}, 200, ""},
		{"other network", req{"GET", "/roles/deploy", "192.0.2.7:40000", []string{tok}}, 403, "AccessDenied"},
		{"IPv6 loopback", req{"GET", "/roles/deploy", "[::1]:40000", []string{tok}}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.req.method, "http://169.254.170.23"+tc.req.path, nil)
			r.RemoteAddr = tc.req.remote
			r.Header["Authorization"] = tc.req.auth
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json (the Go SDK parses errors only then)", ct)
			}
			if tc.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", w.Header().Get("Allow"))
			}
			var doc map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
				t.Fatalf("body %q is not a JSON object of strings: %v", w.Body, err)
			}
			if tc.wantCode != "" {
				if doc["Code"] != tc.wantCode || doc["Message"] == "" {
					t.Errorf("error document = %v, want Code %s and a Message", doc, tc.wantCode)
				}
				if strings.Contains(w.Body.String(), "container/secret") || strings.Contains(w.Body.String(), tok) {
					t.Errorf("error document leaks a secret: %s", w.Body)
				}
				return
			}
			want := map[string]string{
				"AccessKeyId":     "ASIACONTAINER0000001",
				"SecretAccessKey": "container/secret/key/000000000000000000",
				"Token":           "IQoJb3JpZ2luX2VjCONTAINERTOKEN",
				"Expiration":      "2026-11-22T11:00:00Z",
				"RoleArn":         "arn:aws:iam::123456789012:role/deploy",
				"AccountId":       "123456789012",
			}
			if diff := cmp.Diff(want, doc); diff != "" {
				t.Errorf("credentials document (-want +got):\n%s", diff)
			}
		})
	}
}

// Credentials stop being served at ServeUntil (or expiry) and before the
// first publish: a JSON 503 naming why, never stale keys.
func TestContainerHandlerNoValidCredentials(t *testing.T) {
	now := containerNow
	h, tok := newContainerHandler(t, &now)
	do := func() (int, map[string]string) {
		r := httptest.NewRequest("GET", "http://127.0.0.1/roles/deploy", nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Authorization", tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var doc map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &doc)
		return w.Code, doc
	}
	if code, doc := do(); code != 503 || doc["Code"] != "CredentialsNotReady" {
		t.Errorf("before any publish: %d %v, want 503 CredentialsNotReady", code, doc)
	}
	s := containerCreds(now.Add(time.Hour))
	s.ServeUntil = now.Add(time.Hour - time.Minute)
	h.Publish("deploy", s)
	now = now.Add(time.Hour - time.Minute - time.Second)
	if code, _ := do(); code != 200 {
		t.Errorf("1s before ServeUntil: status %d, want 200", code)
	}
	now = now.Add(time.Second)
	if code, doc := do(); code != 503 || doc["Code"] != "CredentialsExpired" {
		t.Errorf("at ServeUntil: %d %v, want 503 CredentialsExpired", code, doc)
	}
	h.Publish("deploy", imds.Snapshot{ErrCode: "AccessDenied", ErrMessage: "not allowed to assume the role", ErrAt: now})
	if code, doc := do(); code != 503 || doc["Code"] != "AccessDenied" {
		t.Errorf("after a failure: %d %v, want 503 with the upstream code", code, doc)
	}
}

// A rotated token takes effect at once: the old one is refused.
func TestContainerTokenRotation(t *testing.T) {
	now := containerNow
	h, old := newContainerHandler(t, &now)
	h.Publish("deploy", containerCreds(now.Add(time.Hour)))
	oldID := h.TokenID("deploy")
	next := imds.NewContainerToken()
	if err := h.SetToken("deploy", next); err != nil {
		t.Fatal(err)
	}
	if h.TokenID("deploy") == oldID || len(h.TokenID("deploy")) != 12 {
		t.Errorf("TokenID after rotation = %q (before %q)", h.TokenID("deploy"), oldID)
	}
	for tok, want := range map[string]int{old: 403, next: 200} {
		r := httptest.NewRequest("GET", "http://127.0.0.1/roles/deploy", nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Authorization", tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("token %s after rotation: status %d, want %d", imds.ContainerTokenID(tok), w.Code, want)
		}
	}
	h.Remove("deploy")
	r := httptest.NewRequest("GET", "http://127.0.0.1/roles/deploy", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("Authorization", next)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 404 {
		t.Errorf("removed role: status %d, want 404", w.Code)
	}
}

func TestValidContainerToken(t *testing.T) {
	good := imds.NewContainerToken()
	if len(good) < 43 {
		t.Fatalf("NewContainerToken() = %d characters, want ≥ 43 (256 bits)", len(good))
	}
	for tok, ok := range map[string]bool{
		good:                        true,
		good + "\n":                 false, // the SDKs refuse a trailing newline (R9.4)
		good[:20]:                   false,
		good + "\r":                 false,
		good[:30] + " " + good[30:]: false,
		strings.Repeat("a", 1025):   false,
	} {
		if err := imds.ValidContainerToken(tok); (err == nil) != ok {
			t.Errorf("ValidContainerToken(%q) = %v, want ok %v", tok, err, ok)
		}
	}
}

// The real aws-sdk-go-v2 container provider (credentials/endpointcreds),
// chosen by the default chain from the two variables a container gets:
// AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
func TestContainerRealGoSDK(t *testing.T) {
	now := time.Now()
	h, tok := newContainerHandler(t, &now)
	s := containerCreds(now.Add(2 * time.Hour).Truncate(time.Second))
	h.Publish("deploy", s)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+imds.ContainerPath("deploy"))
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("Retrieve() = %v", err)
	}
	want := s.Credentials
	if got.AccessKeyID != want.AccessKeyID || got.SecretAccessKey != want.SecretAccessKey || got.SessionToken != want.SessionToken ||
		// endpointcreds refreshes 5 minutes early (SPEC.md R9.8).
		!got.Expires.Equal(want.Expires.Add(-5*time.Minute)) || got.AccountID != "123456789012" || got.Source != endpointcreds.ProviderName {
		t.Errorf("Retrieve() = %+v, want the published credentials (expiring %v) from %s", got, want.Expires, endpointcreds.ProviderName)
	}

	// A wrong token surfaces as the SDK's error, not as credentials.
	if err := os.WriteFile(tokenFile, []byte(imds.NewContainerToken()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := endpointcreds.New(srv.URL+imds.ContainerPath("deploy"), func(o *endpointcreds.Options) {
		o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
			b, err := os.ReadFile(tokenFile)
			return string(b), err
		})
	})
	if _, err := p.Retrieve(ctx); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("Retrieve() with a wrong token = %v, want the AccessDenied error", err)
	}
}

// BenchmarkContainerCredentials is the container endpoint's hot path, to
// compare with BenchmarkCredentials (IMDS).
func BenchmarkContainerCredentials(b *testing.B) {
	now := time.Now()
	h, tok := newContainerHandler(b, &now)
	h.Publish("deploy", containerCreds(now.Add(6*time.Hour)))
	r := httptest.NewRequest(http.MethodGet, "http://169.254.170.23/roles/deploy", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Authorization", tok)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.status != http.StatusOK || w.n == 0 {
		b.Fatalf("status %d, %d bytes", w.status, w.n)
	}
}

// FuzzContainerHandler: any method, path and Authorization header never
// panics, never answers 5xx but 503, is always JSON, and never returns
// credentials without the role's token.
func FuzzContainerHandler(f *testing.F) {
	now := containerNow
	h, tok := newContainerHandler(f, &now)
	h.Publish("deploy", containerCreds(now.Add(time.Hour)))
	f.Add("GET", "/roles/deploy", "x", "127.0.0.1:1")
	f.Add("GET", "/roles/deploy", tok[:42]+"A", "127.0.0.1:1")
	f.Add("HEAD", "/roles/deploy/", "", "[::1]:1")
	f.Add("PUT", "/roles/../roles/deploy", "Bearer x", "10.88.0.1:1")
	f.Add("GET", "/roles/deploy%00", "\x00", "192.0.2.1:1")
	f.Fuzz(func(t *testing.T, method, path, auth, remote string) {
		r, err := http.NewRequest(method, "http://127.0.0.1/", nil)
		if err != nil {
			return
		}
		r.URL.Path = path
		r.RemoteAddr = remote
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 && w.Code != 503 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("Content-Type %q", w.Header().Get("Content-Type"))
		}
		if strings.Contains(w.Body.String(), "container/secret") && auth != tok {
			t.Fatalf("credentials served to %s %q with Authorization %q", method, path, auth)
		}
	})
}
