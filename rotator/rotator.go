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
	ErrExpired  = errors.New("credentials expired, or expire within a minute, and could not be renewed")
)

// ExpiryMargin is how long before its Expiration a set stops being served:
// from Expires − ExpiryMargin on, Current returns ErrExpired instead. A
// client that got the set a moment before would otherwise sign requests
// that reach AWS after the key died (clock skew, retries, slow uploads);
// this way it gets the IMDS error document and asks again.
const ExpiryMargin = time.Minute

// The rotation contract (SPEC.md R7.2, DESIGN.md "Rotation policy"): while
// the source is healthy, every set Current returns has at least minServed
// left, provided the source grants more than shortLifetime. A shorter
// lifetime cannot keep that floor with any useful refresh interval; such
// sets are refreshed at half-life instead (see nextRefresh and
// State.ShortLifetime).
const (
	minServed     = 30 * time.Minute
	shortLifetime = 35 * time.Minute
)

// Failure retries tighten as the served set nears the point where Current
// stops serving it (Expires − ExpiryMargin): no retry waits more than
// 1/retryFraction of the time left, and within urgentWindow of that point
// retries come at most urgentRetry apart (jittered), so clients see fresh
// credentials within seconds of the source recovering. Neither applies
// below the class's shortest back-off (see nextRefresh).
const (
	retryFraction = 4
	urgentWindow  = 5 * time.Minute
	urgentRetry   = 10 * time.Second
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
	// ShortLifetime is the lifetime the source granted Credentials
	// (Expires − Obtained) when it is 35 minutes or less, else 0. Such
	// sets cannot be served with 30 minutes left (SPEC.md R7.2): they are
	// refreshed at half-life, so clients may get them with as little as
	// half that left. The usual causes are a short --duration, a
	// profile's duration_seconds, a SAML assertion's SessionNotOnOrAfter,
	// or a session capped by role chaining. A Rotator logs a warning the
	// first time it sees one, and only then (a reload's new Rotator warns
	// again).
	ShortLifetime time.Duration

	resync bool // see nextRefresh
}

// Options tune a Rotator. Zero values take the defaults in brackets.
type Options struct {
	// Source names the source in logs ("dev", "assume-role", …).
	Source string
	// MinBackoff and MaxBackoff bound the retry delay after transient
	// failures [1s, 5m]; permanent failures (access denied, bad input)
	// retry between SlowBackoff and MaxSlowBackoff [1m, 15m]. While a set
	// is being served, the delay is further capped as it nears its end
	// (see nextRefresh).
	MinBackoff, MaxBackoff      time.Duration
	SlowBackoff, MaxSlowBackoff time.Duration
	// MaxBackoffUnserved caps the retry delay while no valid credentials
	// are served, so clients recover soon after the source does [30s].
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

	// Used by Run's goroutine only.
	lastFailLog time.Time // failure logs are rate-limited to one a minute
	warnedShort bool      // the short-lifetime warning is logged once
}

// New returns a Rotator for f. Nothing happens until Run.
func New(f Fetcher, o Options) *Rotator {
	r := &Rotator{f: f, o: o.withDefaults(), kick: make(chan struct{}, 1)}
	r.state.Store(&State{})
	return r
}

// Current returns the credentials to hand out now: the last good set, until
// ExpiryMargin before it expires. Before the first success it returns
// ErrNotReady, and from Expires − ExpiryMargin on ErrExpired, each joined
// with the latest failure. It never blocks on the source.
func (r *Rotator) Current(ctx context.Context) (aws.Credentials, error) {
	s := r.state.Load()
	switch {
	case !s.Credentials.HasKeys():
		return aws.Credentials{}, errors.Join(ErrNotReady, s.Err)
	case !servable(s.Credentials, r.o.Now()):
		return aws.Credentials{}, errors.Join(ErrExpired, s.Err)
	}
	return s.Credentials.Credentials, nil
}

// servable reports whether c may be handed out at now: keys that do not
// expire, or ExpiryMargin or more before Expires.
func servable(c Credentials, now time.Time) bool {
	return c.HasKeys() && (!c.CanExpire || now.Before(c.Expires.Add(-ExpiryMargin)))
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
		if l := c.Expires.Sub(now); c.CanExpire && l <= shortLifetime {
			next.ShortLifetime = l
		}
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
	case !servable(c, now):
		// Current would never serve them, and they would replace a
		// set that may still be good.
		return fmt.Errorf("source returned credentials that expire at %s, within %s", c.Expires.UTC().Format(time.RFC3339), ExpiryMargin)
	}
	return nil
}

// refreshInterval is how long after it was obtained a set of lifetime l is
// refreshed, before jitter (which only makes it earlier):
//
//	l > 35m:  min(l/2, max(l − 40m, (l − 30m)/2))
//	l ≤ 35m:  l/2
//
// So a set of 80 minutes or more is refreshed at half-life (40m or more
// left), one of 50..80 minutes with 40 minutes left (10 minutes of retries
// before the 30-minute floor), and one of 35..50 minutes halfway between
// issue and the floor (the other half, 2.5..10 minutes, is left for the
// fetch and its retries). At the planned refresh a set over 35 minutes
// always has at least 30m + min(10m, (l − 30m)/2) left. Sets of 35
// minutes or less cannot keep the floor (State.ShortLifetime) and are
// refreshed at half-life.
func refreshInterval(l time.Duration) time.Duration {
	if l <= shortLifetime {
		return l / 2
	}
	return min(l/2, max(l-40*time.Minute, (l-minServed)/2))
}

// nextRefresh returns how long after now the next attempt is due, given the
// state after the latest attempt. jitter is uniform in [0, 1).
//
// After a success (class ClassOK): for credentials that expire,
// I − jitter·spread·I after Obtained, where I = refreshInterval(lifetime)
// and spread is 10 %, or 95 % right after start or after failures
// (s.resync): hosts started in the same second would otherwise call STS in
// step for hours, since 10 % jitter only widens their spread slowly (see
// TestFleetSpread). Jitter only makes a refresh earlier, which is always
// safe. Never less than 1s from now. Keys that do not expire: hourly.
//
// After a failure: capped exponential back-off with full jitter,
// lo + jitter·(min(hi, lo·2^(failures−1)) − lo), with lo, hi = MinBackoff,
// MaxBackoff, or SlowBackoff, MaxSlowBackoff for failures a retry will not
// fix; hi is at most MaxBackoffUnserved (but not under lo) once nothing is
// being served. While a set is still being served, with left the time
// until it stops being served (Expires − ExpiryMargin), the delay is at
// most limit = max(lo, left/4), or max(lo, 10s) once left ≤ 5m (so every
// 5..10s for transient failures, 30..60s for the others by default); a
// longer delay is replaced by limit/2 + jitter·limit/2.
func nextRefresh(now time.Time, s State, o Options, class Class, jitter float64) time.Duration {
	c := s.Credentials
	if class == ClassOK {
		if !c.CanExpire {
			return time.Hour
		}
		interval := refreshInterval(c.Expires.Sub(s.Obtained))
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
	serving := servable(c, now)
	if !serving {
		// Clients are failing now: retry often enough that they recover
		// within seconds of the source, still with back-off.
		hi = max(lo, min(hi, o.MaxBackoffUnserved))
	}
	ceiling := hi
	if n := s.Failures - 1; n < 30 {
		ceiling = min(hi, lo<<n)
	}
	d := lo + time.Duration(jitter*float64(ceiling-lo))
	if serving && c.CanExpire {
		// Never sleep through the end of what is being served: the
		// closer it is, the more often to try.
		left := c.Expires.Add(-ExpiryMargin).Sub(now)
		limit := left / retryFraction
		if left <= urgentWindow {
			limit = urgentRetry
		}
		// Failures a retry will not fix need a person, who can also
		// ask for a refresh (Refresh): not faster than lo for those.
		limit = max(limit, lo)
		if d > limit {
			d = limit/2 + time.Duration(jitter*float64(limit/2))
		}
	}
	return d
}

func (r *Rotator) logSuccess(s State) {
	c := s.Credentials
	ev := r.o.Log.Info().Str("source", r.o.Source).Str("key_id", KeyIDForDisplay(c.AccessKeyID))
	if c.RoleARN != "" {
		ev = ev.Str("role_arn", c.RoleARN)
	}
	if c.CanExpire {
		ev = ev.Time("expires_at", c.Expires).Stringer("expires_in", c.Expires.Sub(s.Obtained).Round(time.Second))
	}
	if s.ShortLifetime > 0 && !r.warnedShort {
		r.warnedShort = true
		r.o.Log.Warn().Str("source", r.o.Source).Stringer("lifetime", s.ShortLifetime.Round(time.Second)).
			Str("reason", "the source granted 35 minutes or less: a short --duration or profile duration_seconds, "+
				"a SAML assertion's SessionNotOnOrAfter, or a session capped by role chaining").
			Msg("credentials too short-lived to keep 30 minutes left; refreshing at half-life, so SDKs may hold them until shortly before expiry")
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
		if servable(c, now) {
			ev = ev.Stringer("serving_for", c.Expires.Add(-ExpiryMargin).Sub(now).Round(time.Second))
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
