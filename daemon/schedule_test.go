package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/imdsd/imdsd/rotator"
	"github.com/imdsd/imdsd/rotator/ststest"
	"github.com/rs/zerolog"
)

const (
	baseKeyID  = "AKIAIOSFODNN7EXAMPLE"
	baseSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRole   = "arn:aws:iam::123456789012:role/imdsd-test"
)

// stsFixture is imdsd wired as `imdsd run --source assume-role` wires it,
// with the real *sts.Client talking to ststest in-process, inside a
// synctest bubble: hours of schedule run in milliseconds.
type stsFixture struct {
	sts *ststest.Server
	d   *daemon
}

func newSTSFixture(t *testing.T, duration time.Duration) *stsFixture {
	t.Helper()
	srv := ststest.New(
		ststest.WithBaseCredentials(baseKeyID, baseSecret, "arn:aws:iam::123456789012:user/alice"),
		ststest.WithRole(ststest.Role{ARN: testRole, MaxSessionDuration: 12 * time.Hour}),
	)
	c := defaultConfig()
	c.Source, c.RoleARN, c.Duration = "assume-role", testRole, duration
	c.STSEndpoint = "https://sts.us-east-1.amazonaws.com"
	c = c.withDefaults(func(string) string { return "" })
	deps := stsDeps{
		loadConfig: func(context.Context, Config) (aws.Config, error) {
			return aws.Config{
				Region:      "us-east-1",
				Credentials: credentials.NewStaticCredentialsProvider(baseKeyID, baseSecret, ""),
			}, nil
		},
		httpClient: &http.Client{Transport: srv.Transport()},
		getenv:     func(string) string { return "" },
		now:        time.Now,
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	src, err := buildSource(t.Context(), c, deps)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(c, src, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return &stsFixture{sts: srv, d: d}
}

// observation is what a client saw at one moment.
type observation struct {
	at   time.Duration
	code string
	key  string
	left time.Duration
}

// poll runs the rotator and a client polling every period until the end,
// and returns what the client saw.
// ready, if not nil, runs once the first credentials are held.
func (f *stsFixture) poll(t *testing.T, period, end time.Duration, ready func()) []observation {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = f.d.defaultGen().rot.Run(ctx) })
	<-f.d.defaultGen().tried
	if ready != nil {
		ready()
	}
	start := time.Now()
	var seen []observation
	for time.Since(start) <= end {
		seen = append(seen, observe(t, &f.d.served, time.Since(start)))
		time.Sleep(period)
	}
	cancel()
	wg.Wait()
	return seen
}

func observe(t *testing.T, h http.Handler, at time.Duration) observation {
	t.Helper()
	doc, err := fetchRaw(h)
	if err != nil {
		t.Fatalf("at %v: %v", at, err)
	}
	o := observation{at: at, code: doc["Code"], key: doc["AccessKeyId"]}
	if exp, err := time.Parse(time.RFC3339, doc["Expiration"]); err == nil {
		o.left = time.Until(exp)
	}
	return o
}

// Healthy STS over three days: every served credential has ≥ 30 min left,
// and every set served was issued by STS.
func TestScheduleHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newSTSFixture(t, time.Hour)
		seen := f.poll(t, time.Minute, 72*time.Hour, nil)
		issued := map[string]bool{}
		for _, c := range f.sts.Issued() {
			issued[c.AccessKeyID] = true
		}
		for _, o := range seen {
			if o.code != "Success" || o.left < 30*time.Minute || !issued[o.key] {
				t.Fatalf("at %v: Code %s, %v left, issued by STS %v", o.at, o.code, o.left, issued[o.key])
			}
		}
		if n := len(issued); n < 72*3 || n > 81*3 {
			t.Errorf("%d sets issued in 72h of 1h credentials, want 216..243", n)
		}
	})
}

// A 2-hour STS outage over the planned refresh of 12-hour credentials:
// clients notice nothing.
func TestScheduleOutageInvisibleWithLongCredentials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newSTSFixture(t, 12*time.Hour)
		// Two hours of outage around the first planned refresh.
		seen := f.poll(t, 30*time.Second, 14*time.Hour, func() {
			next := f.d.defaultGen().rot.State().Next
			f.sts.Outage(next.Add(-time.Hour), next.Add(time.Hour))
		})
		for _, o := range seen {
			if o.code != "Success" || o.left < 30*time.Minute {
				t.Fatalf("at %v: Code %s, %v left; want valid credentials throughout", o.at, o.code, o.left)
			}
		}
		if st := f.sts.Stats("AssumeRole"); st.Failures == 0 {
			t.Errorf("no AssumeRole failed: the outage missed the refresh, the test proves nothing")
		}
	})
}

// With 1-hour credentials and a long outage, the error document appears
// exactly rotator.ExpiryMargin before the real expiry (no client is handed
// a set that dies in its hands), names the upstream error, and valid
// credentials return at once when STS does.
func TestScheduleOutageExpiryAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newSTSFixture(t, time.Hour)
		start := time.Now()
		f.sts.Outage(start.Add(time.Second), start.Add(3*time.Hour))
		seen := f.poll(t, 10*time.Second, 4*time.Hour, nil)
		firstErr, recovered := time.Duration(-1), time.Duration(-1)
		for _, o := range seen {
			switch {
			case o.code != "Success" && firstErr < 0:
				firstErr = o.at
				if o.code != "ServiceUnavailable" {
					t.Errorf("error document Code = %q, want the upstream ServiceUnavailable", o.code)
				}
			case o.code == "Success" && firstErr >= 0 && recovered < 0:
				recovered = o.at
			case o.code == "Success" && o.left < rotator.ExpiryMargin:
				t.Fatalf("at %v: credentials with %v left served, want at least %v", o.at, o.left, rotator.ExpiryMargin)
			}
		}
		if want := time.Hour - rotator.ExpiryMargin; firstErr != want {
			t.Errorf("error document first seen at %v, want %v (the expiry, 1h, less the margin)", firstErr, want)
		}
		if recovered < 3*time.Hour || recovered > 3*time.Hour+40*time.Second {
			t.Errorf("credentials back at %v, want within 40s of the outage's end at 3h", recovered)
		}
	})
}

// fetchRaw reads the role document as an SDK does, error documents too.
func fetchRaw(h http.Handler) (map[string]string, error) {
	w := doRequest(h, "PUT", "/latest/api/token", http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"300"}})
	auth := http.Header{"X-Aws-Ec2-Metadata-Token": {w.Body.String()}}
	w = doRequest(h, "GET", "/latest/meta-data/iam/security-credentials/imdsd-test", auth)
	var doc map[string]string
	err := json.Unmarshal(w.Body.Bytes(), &doc)
	return doc, err
}
