package daemon

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imdsd/imdsd/audit"

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
	requests imds.RequestStats
	mu       sync.Mutex                   // guards the maps (not the counters)
	byRole   map[string]*roleMetrics      // fetch counters by role, created on first use
	refusals map[[2]string]*atomic.Uint64 // access refusals by role and reason
	// trail reports the audit trail's counters, nil without one.
	trail atomic.Pointer[func() audit.Stats]
}

// refused counts an access refusal of role for reason (caller.Reason).
func (m *metrics) refused(role, reason string) {
	m.mu.Lock()
	if m.refusals == nil {
		m.refusals = map[[2]string]*atomic.Uint64{}
	}
	n := m.refusals[[2]string{role, reason}]
	if n == nil {
		n = new(atomic.Uint64)
		m.refusals[[2]string{role, reason}] = n
	}
	m.mu.Unlock()
	n.Add(1)
}

// roleMetrics are one role's fetch counters.
type roleMetrics struct {
	refreshes atomic.Uint64
	failures  [3]atomic.Uint64 // by rotator.Class
	buckets   [len(fetchBuckets)]atomic.Uint64
	count     atomic.Uint64
	sumMicros atomic.Uint64
}

func newMetrics() *metrics { return &metrics{byRole: map[string]*roleMetrics{}} }

// role returns role's counters, creating them.
func (m *metrics) role(name string) *roleMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byRole == nil {
		m.byRole = map[string]*roleMetrics{}
	}
	r := m.byRole[name]
	if r == nil {
		r = &roleMetrics{}
		m.byRole[name] = r
	}
	return r
}

// observer is the rotator's Observe hook for role.
func (m *metrics) observer(role string) func(time.Duration, error) {
	r := m.role(role)
	return r.observeFetch
}

// observeFetch counts one fetch.
func (m *roleMetrics) observeFetch(took time.Duration, err error) {
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

// roleState is what the metrics show of one role.
type roleState struct {
	name    string
	st      rotator.State
	pending bool
}

// write renders the Prometheus text exposition format (version 0.0.4) for
// the roles' running states; every role's series carry a role label.
// Hand-written: a few families do not justify client_golang, whose
// registry would double the daemon's idle memory.
func (m *metrics) write(w io.Writer, roles []roleState, now time.Time) {
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	family("imdsd_credentials_expiry_seconds", "gauge", "Seconds until the served credentials expire; negative once expired, absent before the first success.")
	for _, r := range roles {
		if c := r.st.Credentials; c.HasKeys() && c.CanExpire {
			fmt.Fprintf(w, "imdsd_credentials_expiry_seconds{role=%q} %d\n", r.name, int64(math.Floor(c.Expires.Sub(now).Seconds())))
		}
	}
	family("imdsd_refreshes_total", "counter", "Credential fetches that succeeded.")
	for _, r := range roles {
		fmt.Fprintf(w, "imdsd_refreshes_total{role=%q} %d\n", r.name, m.role(r.name).refreshes.Load())
	}
	family("imdsd_refresh_failures_total", "counter", "Credential fetches that failed, by class: transient (retried soon) or permanent (needs a person).")
	for _, r := range roles {
		rm := m.role(r.name)
		for _, c := range []rotator.Class{rotator.ClassTransient, rotator.ClassPermanent} {
			fmt.Fprintf(w, "imdsd_refresh_failures_total{role=%q,class=%q} %d\n", r.name, c.String(), rm.failures[c].Load())
		}
	}
	family("imdsd_sts_request_duration_seconds", "histogram", "Time each credential fetch took, STS calls and token commands included.")
	for _, r := range roles {
		rm := m.role(r.name)
		for i, le := range fetchBuckets {
			fmt.Fprintf(w, "imdsd_sts_request_duration_seconds_bucket{role=%q,le=\"%g\"} %d\n", r.name, le, rm.buckets[i].Load())
		}
		n := rm.count.Load()
		fmt.Fprintf(w, "imdsd_sts_request_duration_seconds_bucket{role=%q,le=\"+Inf\"} %d\n", r.name, n)
		fmt.Fprintf(w, "imdsd_sts_request_duration_seconds_sum{role=%q} %g\n", r.name, float64(rm.sumMicros.Load())/1e6)
		fmt.Fprintf(w, "imdsd_sts_request_duration_seconds_count{role=%q} %d\n", r.name, n)
	}
	family("imdsd_short_lifetime_seconds", "gauge", "The lifetime STS granted when under 35 minutes (then credentials are refreshed at half-life and may be served with under 30 minutes left), else 0.")
	for _, r := range roles {
		fmt.Fprintf(w, "imdsd_short_lifetime_seconds{role=%q} %d\n", r.name, int64(r.st.ShortLifetime.Seconds()))
	}
	family("imdsd_reload_pending", "gauge", "1 while a reloaded source has not obtained credentials and the previous one still serves, else 0.")
	for _, r := range roles {
		p := 0
		if r.pending {
			p = 1
		}
		fmt.Fprintf(w, "imdsd_reload_pending{role=%q} %d\n", r.name, p)
	}
	family("imdsd_access_refusals_total", "counter", "Credentials requests refused by a role's allow list, by role and reason (not_allowed, unknown_caller: the kernel could not name the caller, unknown_executable).")
	m.mu.Lock()
	keys := make([][2]string, 0, len(m.refusals))
	for k := range m.refusals {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	for _, k := range keys {
		fmt.Fprintf(w, "imdsd_access_refusals_total{role=%q,reason=%q} %d\n", k[0], k[1], m.refusals[k].Load())
	}
	m.mu.Unlock()
	if f := m.trail.Load(); f != nil {
		st := (*f)()
		family("imdsd_audit_records_total", "counter", "Audit trail records by outcome: written, dropped (the queue was full: never silently; also logged) and failed (the write failed).")
		fmt.Fprintf(w, "imdsd_audit_records_total{outcome=\"written\"} %d\n", st.Written)
		fmt.Fprintf(w, "imdsd_audit_records_total{outcome=\"dropped\"} %d\n", st.Dropped)
		fmt.Fprintf(w, "imdsd_audit_records_total{outcome=\"failed\"} %d\n", st.Failed)
	}
	family("imdsd_http_requests_total", "counter", "IMDS and container endpoint requests by route and status.")
	m.requests.Each(func(route string, status int, n uint64) {
		fmt.Fprintf(w, "imdsd_http_requests_total{route=%q,status=\"%d\"} %d\n", route, status, n)
	})
}
