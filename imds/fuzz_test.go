package imds_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imdsd/imdsd/imds"
)

func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"1", "300", "21600", "21601", "0", "", "-1", "+5", " 1", "1e3", "99999", "000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ttl, err := imds.ParseTTL(s)
		if err != nil {
			if ttl != 0 {
				t.Errorf("ParseTTL(%q) = %v with error %v", s, ttl, err)
			}
			return
		}
		if ttl < time.Second || ttl > imds.MaxTokenTTL || ttl%time.Second != 0 {
			t.Errorf("ParseTTL(%q) = %v, outside 1s..6h", s, ttl)
		}
		for _, c := range s {
			if c < '0' || c > '9' {
				t.Errorf("ParseTTL(%q) accepted a non-digit", s)
			}
		}
	})
}

// FuzzTokenValid: no input the fuzzer builds is valid, and no change to an
// issued token keeps it valid. Each run gets its own key: the fuzzer learns
// the operands of comparisons, so a token issued with a key it saw before
// could come back as an input, valid for that key (it did, once).
func FuzzTokenValid(f *testing.F) {
	clock := &fakeClock{t: t0}
	old, _ := imds.NewTokens(imds.NewTokenKey(), clock.Now)
	good := old.Issue(time.Hour)
	f.Add(good, uint16(0), byte(0))
	f.Add(good[:len(good)-1]+"A", uint16(0), byte(0))
	f.Add("AQAAAPm_49V6IGWwyABYuQXrWfdP6yrb3-iy6UsOKg5zeol4pFOp_g==", uint16(3), byte(1))
	f.Add("", uint16(70), byte(0x20))
	f.Fuzz(func(t *testing.T, s string, pos uint16, flip byte) {
		tk, err := imds.NewTokens(imds.NewTokenKey(), clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Valid(s) {
			t.Errorf("Valid(%q) = true for a token that was never issued", s)
		}
		tok := tk.Issue(time.Hour)
		if !tk.Valid(tok) {
			t.Fatalf("Valid(fresh token) = false")
		}
		m := []byte(tok)
		m[int(pos)%len(m)] ^= flip
		if string(m) != tok && tk.Valid(string(m)) {
			t.Errorf("Valid(%q) = true: issued %q changed at %d", m, tok, int(pos)%len(m))
		}
	})
}

// FuzzHandler sends random methods, paths and headers through the whole
// handler in required mode: it must never panic, never answer 5xx, and never
// hand out the secret without a valid token.
func FuzzHandler(f *testing.F) {
	// A key of this process only: a token saved in the corpus by another
	// run must not be valid here.
	fx := newFixture(f, func(c *imds.Config) {
		c.Tokens, _ = imds.NewTokens(imds.NewTokenKey(), c.Now)
	})
	fx.publish()
	valid := fx.token(f, "300")
	f.Add("GET", "/latest/meta-data/iam/security-credentials/imdsd-dev", "X-aws-ec2-metadata-token", "bogus", "127.0.0.1:1", "169.254.169.254")
	f.Add("PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", "21600", "127.0.0.1:1", "localhost")
	f.Add("HEAD", "/latest/meta-data/iam/security-credentials-extended/imdsd-dev/", "X-Forwarded-For", "1.2.3.4", "[::1]:1", "[::1]")
	f.Add("GET", "/latest/meta-data/iam/security-credentials/imdsd-dev", "X-aws-ec2-metadata-token", valid[:len(valid)-2], "10.0.0.1:1", "169.254.169.254")
	f.Add("PUT", "/2021-03-23/api/token", "", "", "127.0.0.1:1", "")
	f.Fuzz(func(t *testing.T, method, path, hk, hv, remote, host string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method = method
		r.URL.Path = path
		r.RemoteAddr = remote
		r.Host = host
		if hk != "" {
			r.Header[http.CanonicalHeaderKey(hk)] = []string{hv}
		}
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: status %d", method, path, w.Code)
		}
		if strings.Contains(w.Body.String(), testCreds.SecretAccessKey) && (hv != valid || !strings.EqualFold(hk, "X-aws-ec2-metadata-token")) {
			t.Fatalf("%s %q with %s: %q served the secret without a valid token", method, path, hk, hv)
		}
	})
}
