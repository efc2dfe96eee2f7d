package daemon

import (
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/rotator"
)

// fetchBuckets are the upper bounds, in seconds, of the fetch latency
// histogram: STS answers in tens of milliseconds; an MFA or SAML command
// can take seconds.
var fetchBuckets = [...]float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// metrics are the process's counters, kept across reloads. Everything is
// atomic: fetches are rare, but scrapes may run any time.
type metrics struct {
	requests  imds.RequestStats
	refreshes atomic.Uint64
	failures  [3]atomic.Uint64 // by rotator.Class
	buckets   [len(fetchBuckets)]atomic.Uint64
	count     atomic.Uint64
	sumMicros atomic.Uint64
}

// observeFetch is the rotator's Observe hook.
func (m *metrics) observeFetch(took time.Duration, err error) {
	if err == nil {
		m.refreshes.Add(1)
	} else {
		m.failures[rotator.Classify(err)].Add(1)
	}
	s := took.Seconds()
	for i, le := range fetchBuckets {
		if s <= le {
			m.buckets[i].Add(1)
		}
	}
	m.count.Add(1)
	m.sumMicros.Add(uint64(took.Microseconds()))
}

// write renders the Prometheus text exposition format (version 0.0.4)
// for the running source's state st; pending says whether a reloaded
// source has yet to take over. Hand-written: six families do not justify
// client_golang, whose registry would double the daemon's idle memory.
func (m *metrics) write(w io.Writer, st rotator.State, pending bool, now time.Time) {
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	family("imdsd_credentials_expiry_seconds", "gauge", "Seconds until the served credentials expire; negative once expired, absent before the first success.")
	if c := st.Credentials; c.HasKeys() && c.CanExpire {
		fmt.Fprintf(w, "imdsd_credentials_expiry_seconds %d\n", int64(math.Floor(c.Expires.Sub(now).Seconds())))
	}
	family("imdsd_refreshes_total", "counter", "Credential fetches that succeeded.")
	fmt.Fprintf(w, "imdsd_refreshes_total %d\n", m.refreshes.Load())
	family("imdsd_refresh_failures_total", "counter", "Credential fetches that failed, by class: transient (retried soon) or permanent (needs a person).")
	for _, c := range []rotator.Class{rotator.ClassTransient, rotator.ClassPermanent} {
		fmt.Fprintf(w, "imdsd_refresh_failures_total{class=%q} %d\n", c.String(), m.failures[c].Load())
	}
	family("imdsd_sts_request_duration_seconds", "histogram", "Time each credential fetch took, STS calls and token commands included.")
	for i, le := range fetchBuckets {
		fmt.Fprintf(w, "imdsd_sts_request_duration_seconds_bucket{le=\"%g\"} %d\n", le, m.buckets[i].Load())
	}
	n := m.count.Load()
	fmt.Fprintf(w, "imdsd_sts_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", n)
	fmt.Fprintf(w, "imdsd_sts_request_duration_seconds_sum %g\n", float64(m.sumMicros.Load())/1e6)
	fmt.Fprintf(w, "imdsd_sts_request_duration_seconds_count %d\n", n)
	family("imdsd_reload_pending", "gauge", "1 while a reloaded source has not obtained credentials and the previous one still serves, else 0.")
	p := 0
	if pending {
		p = 1
	}
	fmt.Fprintf(w, "imdsd_reload_pending %d\n", p)
	family("imdsd_http_requests_total", "counter", "IMDS requests by route and status.")
	m.requests.Each(func(route string, status int, n uint64) {
		fmt.Fprintf(w, "imdsd_http_requests_total{route=%q,status=\"%d\"} %d\n", route, status, n)
	})
}
