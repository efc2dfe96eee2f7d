package rotator_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rs/zerolog"

	"github.com/imdsd/imdsd/rotator"
	"github.com/imdsd/imdsd/rotator/ststest"
)

// These tests run the Rotator on an assume-role source whose real
// *sts.Client (with the SDK's own retries) talks to ststest in process,
// inside a synctest bubble: a day of schedule takes a moment.

// stsRotator returns a Rotator on an assume-role source asking rt's STS
// for 1-hour credentials, with a seeded jitter.
func stsRotator(t *testing.T, rt http.RoundTripper, o rotator.Options) *rotator.Rotator {
	t.Helper()
	client := sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://sts.test"),
		Credentials:  srcBase(),
		HTTPClient:   &http.Client{Transport: rt},
	})
	src, err := rotator.NewAssumeRole(client, srcRoleARN, rotator.AssumeRoleOptions{
		SessionOptions: rotator.SessionOptions{RoleSessionName: "imdsd-test", Duration: time.Hour},
	})
	if err != nil {
		t.Fatalf("NewAssumeRole() = %v", err)
	}
	o.Source = "assume-role"
	o.Jitter = rand.New(rand.NewPCG(7, 11)).Float64
	return rotator.New(src, o)
}

// run starts r and returns a function that stops it and waits for Run.
func run(t *testing.T, r *rotator.Rotator) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	synctest.Wait()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil on cancel", err)
		}
	}
}

// syncBuffer is a log sink safe for the rotator's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

const shortWarning = "credentials too short-lived to keep 30 minutes left"

// SPEC.md R7.2 with an STS that grants 40 minutes although imdsd asks for
// an hour: over a day, sampled every 10 seconds, what Current returns always
// has at least 30 minutes left, and nothing warns of short lifetimes.
func TestServedKeepsThirtyMinutesWhenSTSCapsLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.New(ststest.WithBaseCredentials(srcAKID, srcSecret, srcUserARN), ststest.WithMaxLifetime(40*time.Minute))
		defer srv.Close()
		var logs syncBuffer
		r := stsRotator(t, srv.Transport(), rotator.Options{Log: zerolog.New(&logs)})
		stop := run(t, r)
		defer stop()

		start := time.Now()
		minLeft, keys := 24*time.Hour, map[string]bool{}
		for time.Since(start) < 24*time.Hour {
			got, err := r.Current(t.Context())
			if err != nil {
				t.Fatalf("Current() at +%v = %v, want credentials", time.Since(start), err)
			}
			left := time.Until(got.Expires)
			if left < 30*time.Minute {
				t.Fatalf("Current() at +%v has %v left, want ≥ 30m", time.Since(start), left)
			}
			minLeft = min(minLeft, left)
			keys[got.AccessKeyID] = true
			time.Sleep(10 * time.Second)
		}
		if is := srv.Issued(); is[0].Expiration.Sub(start) != 40*time.Minute {
			t.Fatalf("first set lives %v, want the 40m cap", is[0].Expiration.Sub(start))
		}
		if st := r.State(); st.ShortLifetime != 0 {
			t.Errorf("State().ShortLifetime = %v, want 0 for 40m credentials", st.ShortLifetime)
		}
		if strings.Contains(logs.String(), shortWarning) {
			t.Errorf("40m credentials logged the short-lifetime warning:\n%s", logs.String())
		}
		calls := srv.Stats("AssumeRole")
		t.Logf("24h of 40m credentials: %d sets served, %d AssumeRole calls, least time left %v", len(keys), calls.Calls, minLeft)
		if calls.Failures != 0 {
			t.Errorf("AssumeRole stats = %+v, want no failures", calls)
		}
	})
}

// Below 35 minutes the floor cannot hold: credentials are refreshed at
// half-life, State.ShortLifetime says so, and the log warns once.
func TestShortLifetimeHalfLifeWarnedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.New(ststest.WithBaseCredentials(srcAKID, srcSecret, srcUserARN), ststest.WithMaxLifetime(30*time.Minute))
		defer srv.Close()
		var logs syncBuffer
		r := stsRotator(t, srv.Transport(), rotator.Options{Log: zerolog.New(&logs)})
		stop := run(t, r)
		defer stop()

		start := time.Now()
		for time.Since(start) < 3*time.Hour {
			got, err := r.Current(t.Context())
			if err != nil {
				t.Fatalf("Current() at +%v = %v, want credentials", time.Since(start), err)
			}
			if left := time.Until(got.Expires); left < 15*time.Minute {
				t.Fatalf("Current() at +%v has %v left, want ≥ 15m (half of 30m)", time.Since(start), left)
			}
			time.Sleep(10 * time.Second)
		}
		// STS writes Expiration in whole seconds.
		if st := r.State(); st.ShortLifetime <= 30*time.Minute-time.Second || st.ShortLifetime > 30*time.Minute {
			t.Errorf("State().ShortLifetime = %v, want 30m (less the fraction of a second STS cut off)", st.ShortLifetime)
		}
		if n := srv.Stats("AssumeRole").Calls; n < 10 {
			t.Fatalf("%d AssumeRole calls in 3h, want a refresh every 15m or so", n)
		}
		out := logs.String()
		if n := strings.Count(out, shortWarning); n != 1 {
			t.Errorf("short-lifetime warning logged %d times, want once:\n%s", n, out)
		}
		for line := range strings.SplitSeq(out, "\n") {
			if strings.Contains(line, shortWarning) && (!strings.Contains(line, `"lifetime":"30m0s"`) || !strings.Contains(line, "role chaining")) {
				t.Errorf("warning = %s, want the granted lifetime and the likely causes", line)
			}
		}
	})
}

// STS down from just after the first fetch until 3 minutes before the
// served set expires: clients are served throughout, and fresh credentials
// are served within 15 seconds of STS coming back.
func TestRecoveryWithinSecondsNearExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.New(ststest.WithBaseCredentials(srcAKID, srcSecret, srcUserARN))
		defer srv.Close()
		r := stsRotator(t, srv.Transport(), rotator.Options{})
		stop := run(t, r)
		defer stop()

		first, err := r.Current(t.Context())
		if err != nil {
			t.Fatalf("Current() = %v, want credentials", err)
		}
		back := first.Expires.Add(-3 * time.Minute)
		srv.Outage(time.Now().Add(time.Second), back)
		for time.Now().Before(back) {
			got, err := r.Current(t.Context())
			if err != nil || got.AccessKeyID != first.AccessKeyID {
				t.Fatalf("Current() during the outage = %v, %v, want the first set", got.AccessKeyID, err)
			}
			time.Sleep(time.Second)
		}
		for {
			got, err := r.Current(t.Context())
			if err != nil {
				t.Fatalf("Current() %v after STS is back = %v, want credentials", time.Since(back), err)
			}
			if got.AccessKeyID != first.AccessKeyID {
				t.Logf("fresh credentials %v after STS came back", time.Since(back))
				break
			}
			if time.Since(back) > 15*time.Second {
				t.Fatalf("still serving the first set %v after STS came back; want fresh credentials within 15s (next try %v)",
					time.Since(back), r.State().Next.Sub(back))
			}
			time.Sleep(time.Second)
		}
		if n := srv.Stats("AssumeRole").Failures; n == 0 {
			t.Error("no AssumeRole failed: the outage did not happen")
		}
	})
}

// flaky fails every other request on average (seeded), as a dial error.
type flaky struct {
	rt  http.RoundTripper
	mu  sync.Mutex
	rng *rand.Rand
	n   int
}

func (f *flaky) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	fail := f.rng.IntN(2) == 0
	if fail {
		f.n++
	}
	f.mu.Unlock()
	if fail {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return f.rt.RoundTrip(req)
}

// Half of all STS requests failing, with 40-minute credentials, for a day:
// once the first set is held, Current never fails, since an earlier set is
// always still valid.
func TestFlakySTSNeverInterruptsServing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.New(ststest.WithBaseCredentials(srcAKID, srcSecret, srcUserARN), ststest.WithMaxLifetime(40*time.Minute))
		defer srv.Close()
		rt := &flaky{rt: srv.Transport(), rng: rand.New(rand.NewPCG(3, 5))}
		r := stsRotator(t, rt, rotator.Options{})
		stop := run(t, r)
		defer stop()
		for !r.State().Credentials.HasKeys() {
			time.Sleep(time.Second) // the first fetch may fail too
		}

		start := time.Now()
		for time.Since(start) < 24*time.Hour {
			if _, err := r.Current(t.Context()); err != nil {
				t.Fatalf("Current() at +%v = %v, want credentials", time.Since(start), err)
			}
			time.Sleep(10 * time.Second)
		}
		rt.mu.Lock()
		failed := rt.n
		rt.mu.Unlock()
		if failed == 0 {
			t.Error("no request failed: the flaky transport did nothing")
		}
	})
}

// A source handing out a set that expires within ExpiryMargin is refused:
// it would never be served, and must not replace a good set.
func TestRunRefusesCredentialsWithinExpiryMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &scripted{lifetime: time.Hour, now: time.Now}
		r := rotator.New(src, rotator.Options{Jitter: func() float64 { return 0 }})
		stop := run(t, r)
		defer stop()
		good, err := r.Current(t.Context())
		if err != nil {
			t.Fatalf("Current() = %v, want credentials", err)
		}
		src.mu.Lock()
		src.lifetime = rotator.ExpiryMargin
		src.mu.Unlock()
		r.Refresh()
		synctest.Wait()
		got, err := r.Current(t.Context())
		if err != nil || got.AccessKeyID != good.AccessKeyID {
			t.Errorf("Current() = %v, %v, want the good set kept", got.AccessKeyID, err)
		}
		if st := r.State(); st.Failures != 1 || !strings.Contains(st.Err.Error(), "within 1m0s") {
			t.Errorf("State() = %d failures, error %v; want the set refused", st.Failures, st.Err)
		}
	})
}
