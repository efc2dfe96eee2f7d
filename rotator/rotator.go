package rotator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rs/zerolog"
)

// Fetcher is one credential source. Fetch obtains a new set; it may block on
// the network and must honour ctx.
type Fetcher interface {
	Fetch(ctx context.Context) (Credentials, error)
}

// Credentials are one set obtained from a source and the identity they act
// as.
type Credentials struct {
	aws.Credentials
	// RoleARN is who the credentials act as: the role
	// (arn:aws:iam::ACCOUNT:role/NAME) for role sources, the IAM user or
	// federated user ARN for session and federation tokens, "" when the
	// source cannot tell. Its account feeds iam/info and the identity
	// document.
	RoleARN string
}

// Sentinel errors of Current.
var (
	ErrNotReady = errors.New("no credentials obtained yet")
	ErrExpired  = errors.New("credentials expired and could not be renewed")
)

// State is what a Rotator holds at one moment. It is immutable once
// published.
type State struct {
	// Credentials is the last good set; zero before the first success.
	Credentials Credentials
	// Obtained is when Credentials were fetched.
	Obtained time.Time
	// Err is the latest failure, nil once a refresh succeeds; ErrAt is
	// when it happened and Failures how many attempts in a row failed.
	Err      error
	ErrAt    time.Time
	Failures int
	// Next is when the next refresh is planned (wall clock).
	Next time.Time

	resync bool // see nextRefresh
}

// Options tune a Rotator. Zero values take the defaults in brackets.
type Options struct {
	// Source names the source in logs ("dev", "assume-role", …).
	Source string
	// MinLifetime is the shortest lifetime a source may hand out before
	// the rotator warns that clients may see credentials with under 30
	// minutes left [45m].
	MinLifetime time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after transient
	// failures [1s, 5m]; permanent failures (access denied, bad input)
	// retry between SlowBackoff and MaxSlowBackoff [1m, 15m].
	MinBackoff, MaxBackoff      time.Duration
	SlowBackoff, MaxSlowBackoff time.Duration
	// MaxBackoffUnserved caps the retry delay while no valid credentials
	// are held, so clients recover soon after the source does [30s].
	MaxBackoffUnserved time.Duration
	// FetchTimeout bounds one Fetch [1m].
	FetchTimeout time.Duration
	// WallCheck is how often the wall clock is compared with the plan;
	// Go timers do not advance while a machine sleeps [30s].
	WallCheck time.Duration
	// Now reads the wall clock [time.Now without its monotonic reading].
	Now func() time.Time
	// Jitter returns a uniform value in [0, 1) [math/rand/v2].
	Jitter func() float64
	// Publish receives every new State: after each success and each
	// failure. It must not block for long.
	Publish func(State)
	// Observe, if set, is told how long each fetch took and how it ended
	// (for metrics).
	Observe func(took time.Duration, err error)
	// Log receives refreshes and failures; never secrets.
	Log zerolog.Logger
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinLifetime, 45*time.Minute)
	def(&o.MinBackoff, time.Second)
	def(&o.MaxBackoff, 5*time.Minute)
	def(&o.SlowBackoff, time.Minute)
	def(&o.MaxSlowBackoff, 15*time.Minute)
	def(&o.MaxBackoffUnserved, 30*time.Second)
	def(&o.FetchTimeout, time.Minute)
	def(&o.WallCheck, 30*time.Second)
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().Round(0) }
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Publish == nil {
		o.Publish = func(State) {}
	}
	return o
}

// Rotator keeps credentials from a Fetcher fresh. Run drives it; Current and
// State may be called concurrently from any goroutine.
type Rotator struct {
	f     Fetcher
	o     Options
	state atomic.Pointer[State]
	kick  chan struct{}
	// lastFailLog rate-limits failure logs to one a minute.
	lastFailLog time.Time
}

// New returns a Rotator for f. Nothing happens until Run.
func New(f Fetcher, o Options) *Rotator {
	r := &Rotator{f: f, o: o.withDefaults(), kick: make(chan struct{}, 1)}
	r.state.Store(&State{})
	return r
}

// Current returns credentials that are valid now, ErrNotReady before the
// first success, or ErrExpired (joined with the latest failure) once the last
// good set has lapsed. It never blocks on the source.
func (r *Rotator) Current(ctx context.Context) (aws.Credentials, error) {
	s := r.state.Load()
	switch {
	case !s.Credentials.HasKeys():
		return aws.Credentials{}, errors.Join(ErrNotReady, s.Err)
	case s.Credentials.CanExpire && !r.o.Now().Before(s.Credentials.Expires):
		return aws.Credentials{}, errors.Join(ErrExpired, s.Err)
	}
	return s.Credentials.Credentials, nil
}

// State returns the current state (never nil).
func (r *Rotator) State() State { return *r.state.Load() }

// Refresh asks Run to refresh now instead of waiting for the plan.
func (r *Rotator) Refresh() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run fetches credentials at once and then on the schedule, until ctx ends.
// It returns nil on cancellation.
func (r *Rotator) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := r.refresh(ctx)
		// Wait until next by the wall clock, waking at least every
		// WallCheck: after a suspend the monotonic timer is late, the
		// wall clock is not.
		for wait := next.Sub(r.o.Now()); wait > 0; wait = next.Sub(r.o.Now()) {
			timer.Reset(min(wait, r.o.WallCheck))
			select {
			case <-ctx.Done():
				return nil
			case <-r.kick:
				wait = 0
			case <-timer.C:
			}
			if wait == 0 {
				break
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// refresh makes one attempt, publishes the outcome and returns when the next
// one is due.
func (r *Rotator) refresh(ctx context.Context) time.Time {
	prev := r.state.Load()
	fctx, cancel := context.WithTimeout(ctx, r.o.FetchTimeout)
	start := time.Now()
	c, err := r.f.Fetch(fctx)
	took := time.Since(start)
	cancel()
	now := r.o.Now()
	if err == nil {
		err = r.check(c, now)
	}
	if r.o.Observe != nil && ctx.Err() == nil {
		r.o.Observe(took, err)
	}
	next := *prev
	if err != nil {
		if ctx.Err() != nil {
			return now // shutting down; Run returns
		}
		next.Err, next.ErrAt, next.Failures = err, now, prev.Failures+1
		next.Next = now.Add(nextRefresh(now, next, r.o, Classify(err), r.o.Jitter()))
		r.logFailure(next)
	} else {
		// The first success after start or after failures is when many
		// hosts move in step (a fleet booted together, an STS outage
		// ending): spread that refresh widely.
		resync := !prev.Credentials.HasKeys() || prev.Failures > 0
		next = State{Credentials: c, Obtained: now, resync: resync}
		next.Next = now.Add(nextRefresh(now, next, r.o, ClassOK, r.o.Jitter()))
		r.logSuccess(next)
	}
	r.state.Store(&next)
	r.o.Publish(next)
	return next.Next
}

// check refuses what a source must never hand over.
func (r *Rotator) check(c Credentials, now time.Time) error {
	switch {
	case !c.HasKeys():
		return errors.New("source returned no access key")
	case !c.CanExpire:
		// Static keys: served as they are, refreshed now and then only to
		// pick up changes.
		return nil
	case !c.Expires.After(now):
		return fmt.Errorf("source returned credentials that expired at %s", c.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// nextRefresh returns how long after now the next attempt is due, given the
// state after the latest attempt. jitter is uniform in [0, 1).
//
// After a success the plan is issued + min(lifetime/2, lifetime − 40m) minus
// up to 10 % of that: with lifetimes of 45 minutes or more the served
// credentials keep at least 30 minutes (SPEC.md R7.2). Right after start or
// after failures (s.resync) the jitter spans 95 % of the interval instead:
// hosts started in the same second would otherwise call STS in step for
// hours, since 10 % jitter only widens their spread slowly (see
// TestFleetSpread). Refreshing early is always safe. After a failure it backs off
// exponentially with full jitter, slowly for errors a retry will not fix, but
// never past the point where the last good credentials would expire without
// another try.
func nextRefresh(now time.Time, s State, o Options, class Class, jitter float64) time.Duration {
	if class == ClassOK {
		c := s.Credentials
		if !c.CanExpire {
			return time.Hour
		}
		lifetime := c.Expires.Sub(s.Obtained)
		interval := min(lifetime/2, lifetime-40*time.Minute)
		if lifetime < o.MinLifetime {
			// Explicitly allowed short lifetimes: the 30-minute floor
			// cannot hold; refresh at half-life.
			interval = lifetime / 2
		}
		spread := 0.1
		if s.resync {
			spread = 0.95
		}
		interval -= time.Duration(jitter * spread * float64(interval))
		return max(s.Obtained.Add(interval).Sub(now), time.Second)
	}
	lo, hi := o.MinBackoff, o.MaxBackoff
	if class == ClassPermanent {
		lo, hi = o.SlowBackoff, o.MaxSlowBackoff
	}
	if c := s.Credentials; !c.HasKeys() || (c.CanExpire && !now.Before(c.Expires)) {
		// Clients are failing now: retry often enough that they recover
		// within seconds of the source, still with back-off.
		hi = max(lo, min(hi, o.MaxBackoffUnserved))
	}
	ceiling := hi
	if n := s.Failures - 1; n < 30 {
		ceiling = min(hi, lo<<n)
	}
	d := lo + time.Duration(jitter*float64(ceiling-lo))
	if c := s.Credentials; c.HasKeys() && c.CanExpire {
		// Do not sleep past the expiry of what is still being served:
		// try once more a little before it lapses.
		if left := c.Expires.Sub(now); left > lo && d > left-lo/2 {
			d = max(left-lo/2, lo)
		}
	}
	return d
}

func (r *Rotator) logSuccess(s State) {
	c := s.Credentials
	ev := r.o.Log.Info().Str("source", r.o.Source).Str("key_id", KeyIDForDisplay(c.AccessKeyID))
	if c.RoleARN != "" {
		ev = ev.Str("role", c.RoleARN)
	}
	if c.CanExpire {
		ev = ev.Time("expires_at", c.Expires).Stringer("expires_in", c.Expires.Sub(s.Obtained).Round(time.Second))
		if c.Expires.Sub(s.Obtained) < r.o.MinLifetime {
			r.o.Log.Warn().Str("source", r.o.Source).Stringer("lifetime", c.Expires.Sub(s.Obtained).Round(time.Second)).
				Msg("credentials live less than 45 minutes; SDKs may hold them until shortly before expiry")
		}
	}
	ev.Time("next_refresh", s.Next).Msg("credentials refreshed")
	r.lastFailLog = time.Time{}
}

func (r *Rotator) logFailure(s State) {
	now := s.ErrAt
	if !r.lastFailLog.IsZero() && now.Sub(r.lastFailLog) < time.Minute {
		return
	}
	r.lastFailLog = now
	class := Classify(s.Err)
	ev := r.o.Log.Error()
	if class == ClassTransient {
		ev = r.o.Log.Warn()
	}
	ev = ev.Err(s.Err).Str("source", r.o.Source).Str("class", class.String()).
		Int("attempt", s.Failures).Time("next_try", s.Next)
	if c := s.Credentials; c.HasKeys() && c.CanExpire {
		if left := c.Expires.Sub(now); left > 0 {
			ev = ev.Stringer("serving_for", left.Round(time.Second))
		} else {
			ev = ev.Bool("serving", false)
		}
	}
	ev.Msg("credentials refresh failed")
}

// KeyIDForDisplay shows only the last four characters of an access key ID,
// enough to tell sets apart in logs.
func KeyIDForDisplay(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return "****" + id[len(id)-4:]
}
