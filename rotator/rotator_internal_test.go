package rotator

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestNextRefresh(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	o := Options{}.withDefaults()
	creds := func(lifetime time.Duration) State {
		return State{Obtained: t0, Credentials: Credentials{Credentials: aws.Credentials{
			AccessKeyID: "ASIA", SecretAccessKey: "s", CanExpire: true, Expires: t0.Add(lifetime),
		}}}
	}
	failed := func(s State, n int) State { s.Failures = n; return s }
	tests := []struct {
		name   string
		s      State
		class  Class
		jitter float64
		want   time.Duration
	}{
		{"1h: lifetime-40m wins", creds(time.Hour), ClassOK, 0, 20 * time.Minute},
		{"1h full jitter: 10% earlier", creds(time.Hour), ClassOK, 0.999999, 18*time.Minute + 1*time.Millisecond},
		{"45m minimum", creds(45 * time.Minute), ClassOK, 0, 5 * time.Minute},
		{"12h: half-life wins", creds(12 * time.Hour), ClassOK, 0, 6 * time.Hour},
		{"80m: both equal", creds(80 * time.Minute), ClassOK, 0, 40 * time.Minute},
		{"15m allowed short: half-life", creds(15 * time.Minute), ClassOK, 0, 7*time.Minute + 30*time.Second},
		{"static keys: hourly", State{Credentials: Credentials{Credentials: aws.Credentials{AccessKeyID: "AKIA", SecretAccessKey: "s"}}}, ClassOK, 0, time.Hour},
		{"transient 1st failure, no jitter", failed(creds(12*time.Hour), 1), ClassTransient, 0, time.Second},
		{"transient 5th failure, top jitter", failed(creds(12*time.Hour), 5), ClassTransient, 0.5, time.Second + 7500*time.Millisecond},
		{"transient capped", failed(creds(12*time.Hour), 40), ClassTransient, 0.5, time.Second + (5*time.Minute-time.Second)/2},
		{"permanent: slow", failed(creds(12*time.Hour), 1), ClassPermanent, 0, time.Minute},
		{"permanent capped", failed(creds(12*time.Hour), 10), ClassPermanent, 0.999, time.Minute + time.Duration(0.999*float64(14*time.Minute))},
		{"nothing served: transient capped at 30s", failed(State{}, 10), ClassTransient, 0.999, time.Second + time.Duration(0.999*float64(29*time.Second))},
		{"nothing served: permanent every minute", failed(State{}, 10), ClassPermanent, 0.999, time.Minute},
		{"retry before the served set expires", failed(creds(3*time.Minute), 10), ClassPermanent, 0.999, 2*time.Minute + 30*time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := nextRefresh(t0, tc.s, o, tc.class, tc.jitter)
			if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("nextRefresh() = %v, want %v", got, tc.want)
			}
		})
	}
}

// With lifetimes of 45 minutes or more, the planned refresh always leaves
// at least 40 minutes (so 30 after any fetch delay), whatever the jitter.
func TestNextRefreshKeepsThirtyMinutes(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	o := Options{}.withDefaults()
	for lifetime := 45 * time.Minute; lifetime <= 36*time.Hour; lifetime += 7 * time.Minute {
		for _, j := range []float64{0, 0.5, 0.999999} {
			s := State{Obtained: t0, Credentials: Credentials{Credentials: aws.Credentials{AccessKeyID: "A", SecretAccessKey: "s", CanExpire: true, Expires: t0.Add(lifetime)}}}
			at := t0.Add(nextRefresh(t0, s, o, ClassOK, j))
			if left := s.Credentials.Expires.Sub(at); left < 40*time.Minute {
				t.Fatalf("lifetime %v jitter %v: refresh leaves %v, want ≥ 40m", lifetime, j, left)
			}
		}
	}
}
