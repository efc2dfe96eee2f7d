package imds_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/imdsd/imdsd/imds"
)

// discardWriter is a ResponseWriter that keeps nothing, reusing its header
// map, so a benchmark counts the handler's own allocations only.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(s int)   { d.status = s }
func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK // as net/http: Write without WriteHeader is a 200
	}
	d.n += len(p)
	return len(p), nil
}

// BenchmarkCredentials is the hot path: token check and the credentials
// document through the full router and guards.
func BenchmarkCredentials(b *testing.B) {
	f := newFixture(b, func(c *imds.Config) { c.Now = time.Now; c.Stats = &imds.RequestStats{} })
	f.publish()
	tok := f.token(b, "21600")
	r := httptest.NewRequest(http.MethodGet, "http://169.254.169.254/latest/meta-data/iam/security-credentials/imdsd-dev", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("X-aws-ec2-metadata-token", tok)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		f.h.ServeHTTP(w, r)
	}
	if w.status != http.StatusOK || w.n == 0 {
		b.Fatalf("status %d, %d bytes", w.status, w.n)
	}
}

// BenchmarkToken issues a token and validates it.
func BenchmarkToken(b *testing.B) {
	f := newFixture(b)
	tk := f.h.Tokens()
	b.ReportAllocs()
	for b.Loop() {
		if !tk.Valid(tk.Issue(6 * time.Hour)) {
			b.Fatal("fresh token invalid")
		}
	}
}

// BenchmarkTokenPUT is the whole token request through the handler.
func BenchmarkTokenPUT(b *testing.B) {
	f := newFixture(b)
	r := httptest.NewRequest(http.MethodPut, "http://169.254.169.254/latest/api/token", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		f.h.ServeHTTP(w, r)
	}
	if w.status != http.StatusOK {
		b.Fatalf("status %d", w.status)
	}
}

// BenchmarkTokenValid checks a token seen before (an SDK's next request):
// a table lookup, no MAC.
func BenchmarkTokenValid(b *testing.B) {
	tk := newFixture(b).h.Tokens()
	tok := tk.Issue(6 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if !tk.Valid(tok) {
			b.Fatal("token invalid")
		}
	}
}

// BenchmarkTokenValidNew checks tokens never seen before: the MAC every
// time (a flood of distinct tokens), 0 allocations.
func BenchmarkTokenValidNew(b *testing.B) {
	tk := newFixture(b).h.Tokens()
	toks := make([]string, 4096)
	for i := range toks {
		toks[i] = tk.Issue(6 * time.Hour)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !tk.Valid(toks[i%len(toks)]) {
			b.Fatal("token invalid")
		}
		i++
	}
}
