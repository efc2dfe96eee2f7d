package rotator

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestFleetSpread simulates 10,000 hosts started within the same second,
// each refreshing 1-hour credentials (the STS default, and the most
// frequent schedule) on the plan Run follows, for 24 hours. After the first
// hour, the busiest second must see at most 3× the mean STS call rate.
// Figures go to BENCHMARKS.md: go test ./rotator -run TestFleetSpread -v
func TestFleetSpread(t *testing.T) {
	const (
		hosts    = 10000
		lifetime = time.Hour
		day      = 24 * time.Hour
	)
	o := Options{}.withDefaults()
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	perSecond := make([]int, int(day/time.Second))
	total := 0
	for range hosts {
		now := t0.Add(time.Duration(rng.Float64() * float64(time.Second)))
		resync := true
		for now.Sub(t0) < day {
			perSecond[int(now.Sub(t0)/time.Second)]++
			total++
			s := State{Obtained: now, resync: resync, Credentials: Credentials{Credentials: aws.Credentials{
				AccessKeyID: "A", SecretAccessKey: "s", CanExpire: true, Expires: now.Add(lifetime),
			}}}
			now = now.Add(nextRefresh(now, s, o, ClassOK, rng.Float64()))
			resync = false
		}
	}
	mean := float64(total) / day.Seconds()
	peakFirst, peakAfter := 0, 0
	for sec, n := range perSecond {
		if sec < 3600 {
			peakFirst = max(peakFirst, n)
		} else {
			peakAfter = max(peakAfter, n)
		}
	}
	ratio := float64(peakAfter) / mean
	t.Logf("%d hosts, %v credentials, 24h: %d STS calls, mean %.2f/s; peak %d/s in the first hour (the start), %d/s after it: peak/mean %.2f",
		hosts, lifetime, total, mean, peakFirst, peakAfter, ratio)
	if ratio > 3 {
		t.Errorf("peak/mean after the first hour = %.2f, want ≤ 3", ratio)
	}
}
