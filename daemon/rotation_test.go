package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The dev source wired exactly as `imdsd run` wires it, under a fake clock:
// over 24 simulated hours every credential served has at least 30 minutes
// left, rotation happens, no request fails across a swap, and no secret
// reaches the log.
func TestDevRotationOverADay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := defaultConfig().withDefaults(func(string) string { return "" })
		var logs syncBuffer
		src, err := buildSource(t.Context(), c, stsDeps{now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		d, err := newDaemon(c, src, newLogger(&logs, "json", "info"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { _ = d.defaultGen().rot.Run(ctx) })
		<-d.defaultGen().tried

		start := time.Now()
		var mu sync.Mutex
		secrets := map[string]bool{}
		keys := map[string]bool{}
		var requests, minLeft = 0, 24 * time.Hour
		// Three clients, polling at different periods so requests land on
		// every phase of the schedule, including the swap instants.
		for _, period := range []time.Duration{7 * time.Second, 10 * time.Second, 61 * time.Second} {
			wg.Go(func() {
				for time.Since(start) < 24*time.Hour {
					doc, err := fetchCredentials(&d.served)
					if err != nil {
						t.Errorf("at %v: %v", time.Since(start), err)
						return
					}
					exp, err := time.Parse(time.RFC3339, doc["Expiration"])
					if err != nil {
						t.Errorf("Expiration %q: %v", doc["Expiration"], err)
						return
					}
					left := time.Until(exp)
					mu.Lock()
					requests++
					minLeft = min(minLeft, left)
					keys[doc["AccessKeyId"]] = true
					secrets[doc["SecretAccessKey"]] = true
					secrets[doc["Token"]] = true
					mu.Unlock()
					if left < 30*time.Minute {
						t.Errorf("at %v: served credentials with %v left, want ≥ 30m", time.Since(start), left)
					}
					time.Sleep(period)
				}
			})
		}
		time.Sleep(24*time.Hour + 2*time.Minute)
		cancel()
		wg.Wait()

		// 1h credentials refreshed at 18..20 min: 72..80 sets a day.
		if n := len(keys); n < 72 || n > 81 {
			t.Errorf("%d distinct credentials served in 24h, want 72..81", n)
		}
		t.Logf("%d requests, %d credential sets, least time left %v", requests, len(keys), minLeft)
		out := logs.String()
		if n := strings.Count(out, `"message":"credentials refreshed"`); n < 72 {
			t.Errorf("%d refreshes logged, want one per rotation", n)
		}
		for s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("a secret reached the log")
			}
		}
		for k := range keys {
			if strings.Contains(out, k) {
				t.Fatalf("a whole access key ID reached the log; only its last 4 characters may")
			}
		}
	})
}

// fetchCredentials does what an SDK does: token, role listing, document.
func fetchCredentials(h http.Handler) (map[string]string, error) {
	do := func(method, path string, hdr http.Header) *httptest.ResponseRecorder {
		return doRequest(h, method, path, hdr)
	}
	w := do("PUT", "/latest/api/token", http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"21600"}})
	if w.Code != 200 {
		return nil, errorf("token: status %d", w.Code)
	}
	auth := http.Header{"X-Aws-Ec2-Metadata-Token": {w.Body.String()}}
	w = do("GET", "/latest/meta-data/iam/security-credentials/", auth)
	if w.Code != 200 {
		return nil, errorf("listing: status %d", w.Code)
	}
	w = do("GET", "/latest/meta-data/iam/security-credentials/"+w.Body.String(), auth)
	var doc map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		return nil, err
	}
	if w.Code != 200 || doc["Code"] != "Success" {
		return nil, errorf("credentials: status %d, Code %q", w.Code, doc["Code"])
	}
	return doc, nil
}

func doRequest(h http.Handler, method, path string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://127.0.0.1:8169"+path, nil)
	r.RemoteAddr = "127.0.0.1:50000"
	r.Header = hdr
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
