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
		{"12h: half-life", creds(12 * time.Hour), ClassOK, 0, 6 * time.Hour},
		{"80m: half-life and 40m left agree", creds(80 * time.Minute), ClassOK, 0, 40 * time.Minute},
		{"1h: 40m left", creds(time.Hour), ClassOK, 0, 20 * time.Minute},
		{"1h full jitter: 10% earlier", creds(time.Hour), ClassOK, 0.999999, 18*time.Minute + 1*time.Millisecond},
		{"50m: 40m left and halfway to the floor agree", creds(50 * time.Minute), ClassOK, 0, 10 * time.Minute},
		{"45m: halfway to the 30m floor", creds(45 * time.Minute), ClassOK, 0, 7*time.Minute + 30*time.Second},
		{"40m: halfway to the 30m floor", creds(40 * time.Minute), ClassOK, 0, 5 * time.Minute},
		{"36m: halfway to the 30m floor", creds(36 * time.Minute), ClassOK, 0, 3 * time.Minute},
		{"35m: too short, half-life", creds(35 * time.Minute), ClassOK, 0, 17*time.Minute + 30*time.Second},
		{"15m: half-life", creds(15 * time.Minute), ClassOK, 0, 7*time.Minute + 30*time.Second},
		{"static keys: hourly", State{Credentials: Credentials{Credentials: aws.Credentials{AccessKeyID: "AKIA", SecretAccessKey: "s"}}}, ClassOK, 0, time.Hour},
		{"transient 1st failure, no jitter", failed(creds(12*time.Hour), 1), ClassTransient, 0, time.Second},
		{"transient 5th failure, top jitter", failed(creds(12*time.Hour), 5), ClassTransient, 0.5, time.Second + 7500*time.Millisecond},
		{"transient capped", failed(creds(12*time.Hour), 40), ClassTransient, 0.5, time.Second + (5*time.Minute-time.Second)/2},
		{"permanent: slow", failed(creds(12*time.Hour), 1), ClassPermanent, 0, time.Minute},
		{"permanent capped", failed(creds(12*time.Hour), 10), ClassPermanent, 0.999, time.Minute + time.Duration(0.999*float64(14*time.Minute))},
		// 21m lifetime: 20m until it stops being served.
		{"never past a quarter of the time left", failed(creds(21*time.Minute), 10), ClassPermanent, 0.5, 3*time.Minute + 45*time.Second},
		{"a quarter of the time left is not reached", failed(creds(21*time.Minute), 40), ClassTransient, 0.5, time.Second + (5*time.Minute-time.Second)/2},
		// 6m lifetime: 5m until it stops being served.
		{"last 5 minutes: transient every 5..10s", failed(creds(6*time.Minute), 40), ClassTransient, 0.5, 7*time.Second + 500*time.Millisecond},
		{"last 5 minutes: short back-off kept", failed(creds(6*time.Minute), 2), ClassTransient, 0.5, 1500 * time.Millisecond},
		{"last 5 minutes: permanent every 30..60s", failed(creds(6*time.Minute), 10), ClassPermanent, 0.999, 30*time.Second + time.Duration(0.999*float64(30*time.Second))},
		{"3 minutes to expiry, transient", failed(creds(3*time.Minute), 10), ClassTransient, 0.2, 6 * time.Second},
		{"within the expiry margin: not served", failed(creds(59*time.Second), 10), ClassTransient, 0.999, time.Second + time.Duration(0.999*float64(29*time.Second))},
		{"nothing served: transient capped at 30s", failed(State{}, 10), ClassTransient, 0.999, time.Second + time.Duration(0.999*float64(29*time.Second))},
		{"nothing served: permanent every minute", failed(State{}, 10), ClassPermanent, 0.999, time.Minute},
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

// SPEC.md R7.2: with lifetimes over 35 minutes, the planned refresh leaves
// at least 30 minutes plus min(10m, half the time above 30 minutes) for the
// fetch and its retries, whatever the jitter; 35 minutes or less are
// refreshed at half-life.
func TestNextRefreshKeepsThirtyMinutes(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	o := Options{}.withDefaults()
	lifetimes := []time.Duration{15 * time.Minute, 35 * time.Minute, 35*time.Minute + time.Second, 36 * time.Minute,
		40 * time.Minute, 49*time.Minute + 59*time.Second, 50 * time.Minute, 80 * time.Minute}
	for l := 35 * time.Minute; l <= 36*time.Hour; l += 7 * time.Minute {
		lifetimes = append(lifetimes, l)
	}
	for _, l := range lifetimes {
		for _, resync := range []bool{false, true} {
			for _, j := range []float64{0, 0.5, 0.999999} {
				s := State{Obtained: t0, resync: resync, Credentials: Credentials{Credentials: aws.Credentials{
					AccessKeyID: "A", SecretAccessKey: "s", CanExpire: true, Expires: t0.Add(l)}}}
				at := t0.Add(nextRefresh(t0, s, o, ClassOK, j))
				left := s.Credentials.Expires.Sub(at)
				want := minServed + min(10*time.Minute, (l-minServed)/2)
				if l <= shortLifetime {
					want = l / 2
				}
				if left < want {
					t.Errorf("lifetime %v, jitter %v, resync %v: refresh leaves %v, want ≥ %v", l, j, resync, left, want)
				}
			}
		}
	}
}
