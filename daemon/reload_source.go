package daemon

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imdsd/imdsd/rotator"
)

// A reload that changes the source must never take working credentials
// away. The new source runs as the pending generation beside the running
// one, which keeps serving; the pending one takes over on its first
// success. A failing pending source keeps retrying on its rotator's
// back-off and shows in imdsd status. If the running source's credentials
// lapse meanwhile, the pending one takes over anyway: clients are failing
// then, and the new source is no worse. A further reload replaces it.

// superviseCheck is the longest the supervisor of a pending source sleeps
// between looks at the running source's credentials: timers stop while a
// laptop sleeps, the wall clock does not.
const superviseCheck = 30 * time.Second

// supervise switches to p on its first success, or once running no longer
// has valid credentials to serve, and stops p if it is replaced or the
// daemon stops first. It runs on d.wg.
func (d *daemon) supervise(p, running *generation) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-p.ended:
			p.stop()
			return
		case <-p.ok:
			if !d.promote(p, "the new source obtained credentials") {
				p.stop()
			}
			return
		case <-timer.C:
			if _, err := running.rot.Current(context.Background()); err != nil {
				if !d.promote(p, "the running source has no valid credentials left") {
					p.stop()
				}
				return
			}
			timer.Reset(untilUnservable(running.rot.State(), time.Now()))
		}
	}
}

// untilUnservable is how long to wait before looking again whether s
// still has credentials to serve: until ExpiryMargin before they expire,
// at most superviseCheck.
func untilUnservable(s rotator.State, now time.Time) time.Duration {
	c := s.Credentials
	if !c.CanExpire {
		return superviseCheck
	}
	return min(max(c.Expires.Add(-rotator.ExpiryMargin).Sub(now), 0), superviseCheck)
}

// promote makes p, the pending generation of its role, the running one;
// it reports false when p is no longer pending (replaced, or the daemon
// stops).
func (d *daemon) promote(p *generation, why string) bool {
	d.mu.Lock()
	slot := d.roles[p.name()]
	if slot == nil || slot.pending != p {
		d.mu.Unlock()
		return false
	}
	old := slot.gen
	slot.gen, slot.pending = p, nil
	d.pubMu.Lock()
	old.serving.Store(false)
	p.serving.Store(true)
	d.publishState(d.served.p.Load(), p, p.rot.State())
	d.pubMu.Unlock()
	if !d.anyPending() {
		d.dropServers(d.servers, d.cfg.Listen, "stopped listening")
	}
	d.mu.Unlock()
	close(p.took)
	old.stop()
	d.log.Info().Str("role", p.name()).Str("source", p.cfg.Source).Bool("source_changed", true).Strs("listen", p.cfg.Listen).
		Str("reason", why).Msg("configuration reloaded")
	return true
}

// dropServers stops the servers of servers whose address is not in keep,
// logging msg for each; the drains are owned by d.drains. d.mu must be
// held.
func (d *daemon) dropServers(servers map[string]*http.Server, keep []string, msg string) {
	for addr, srv := range servers {
		if slices.Contains(keep, addr) {
			continue
		}
		delete(servers, addr)
		d.drains.Go(func() {
			sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
		d.log.Info().Str("addr", addr).Msg(msg)
	}
}

// unionOf is a followed by the elements of b not in a.
func unionOf(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// pendingGen returns the default role's pending generation, nil when there
// is none.
func (d *daemon) pendingGen() *generation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.roles[d.cfg.defaultRoleName()].pending
}

// reloadStarted is serve's answer to a reload request: the refusal, or
// the pending generations of the roles whose source changed (none when the
// new configuration runs already).
type reloadStarted struct {
	pending []*generation
	err     error
}

// The outcomes of imdsd reload (reloadAnswer.Result).
const (
	reloadApplied  = "applied"  // the new configuration runs
	reloadPending  = "pending"  // its source has not taken over; the running one serves
	reloadRefused  = "refused"  // invalid: nothing changed
	reloadReplaced = "replaced" // a later reload (or the shutdown) replaced it before it took over
)

// reloadAnswer is the answer of POST /reload. Error is set when the
// configuration was refused, when its source is pending with a failure, and
// when it was applied but its source fails (it took over because the
// running one had nothing valid left).
type reloadAnswer struct {
	Result  string `json:"result"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

// httpStatus is the status POST /reload answers with a.
func (a reloadAnswer) httpStatus() int {
	switch a.Result {
	case reloadApplied:
		return http.StatusOK
	case reloadPending:
		return http.StatusAccepted
	}
	return http.StatusConflict
}

// The bounds of the time POST /reload waits for a new source.
const (
	defaultReloadWait = 30 * time.Second
	maxReloadWait     = 10 * time.Minute
)

// requestReload has serve reload and waits at most wait for a changed
// source to take over. It never holds d.mu while it waits.
func (d *daemon) requestReload(ctx context.Context, wait time.Duration) reloadAnswer {
	reply := make(chan reloadStarted, 1)
	select {
	case d.reloads <- reply:
	case <-d.quit:
		return reloadAnswer{Result: reloadRefused, Message: "imdsd is shutting down", Error: "imdsd is shutting down"}
	case <-ctx.Done():
		return reloadAnswer{Result: reloadRefused, Message: "the caller went away", Error: ctx.Err().Error()}
	}
	st := <-reply // serve always answers a request it took
	switch {
	case st.err != nil:
		return reloadAnswer{Result: reloadRefused, Message: "the configuration was refused; the running one stays", Error: st.err.Error()}
	case len(st.pending) == 0:
		return reloadAnswer{Result: reloadApplied, Message: "configuration reloaded"}
	}
	return awaitSources(ctx, st.pending, wait)
}

// awaitSources is awaitSource for the pending generations of several
// roles, all within wait: applied when every one took over, else the
// worst outcome, with the message of each role that did not.
func awaitSources(ctx context.Context, ps []*generation, wait time.Duration) reloadAnswer {
	if len(ps) == 1 {
		return awaitSource(ctx, ps[0], wait)
	}
	deadline := time.Now().Add(wait)
	rank := map[string]int{reloadApplied: 0, reloadPending: 1, reloadReplaced: 2, reloadRefused: 3}
	out := reloadAnswer{Result: reloadApplied, Message: "configuration reloaded"}
	var msgs, errs []string
	for _, p := range ps {
		a := awaitSource(ctx, p, max(time.Until(deadline), 0))
		if a.Result != reloadApplied || a.Error != "" {
			msgs = append(msgs, "role "+p.name()+": "+a.Message)
			if a.Error != "" {
				errs = append(errs, "role "+p.name()+": "+a.Error)
			}
		}
		if rank[a.Result] > rank[out.Result] {
			out.Result = a.Result
		}
	}
	if len(msgs) > 0 {
		out.Message = strings.Join(msgs, "; ")
	}
	out.Error = strings.Join(errs, "\n")
	return out
}

// awaitSource waits, at most wait, until the pending generation p has
// taken over with credentials, or has failed in a way a retry will not
// fix, and says which. A transient failure is retried by p's rotator
// within the wait.
func awaitSource(ctx context.Context, p *generation, wait time.Duration) reloadAnswer {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	src := p.cfg.Source
	pending := func(st rotator.State) reloadAnswer {
		a := reloadAnswer{Result: reloadPending}
		if st.Err == nil {
			a.Message = fmt.Sprintf("the new source (%s) has not answered after %s; the running one serves until it obtains credentials (imdsd status shows it)", src, wait)
			return a
		}
		a.Message = fmt.Sprintf("the new source (%s) failed (%s, %d attempts); the running one serves until it obtains credentials, retried on its back-off (imdsd status shows it)",
			src, rotator.ErrorCode(st.Err), st.Failures)
		a.Error = st.Err.Error()
		return a
	}
	took := p.took // nil once closed: then only its attempt is waited for
	for {
		changed := p.changed.wait()
		st := p.rot.State()
		select {
		case <-p.took:
			took = nil
			switch {
			case st.Err == nil && st.Credentials.HasKeys():
				return reloadAnswer{Result: reloadApplied, Message: fmt.Sprintf("the new source (%s) took over; key %s", src, rotator.KeyIDForDisplay(st.Credentials.AccessKeyID))}
			case st.Err != nil:
				return reloadAnswer{Result: reloadApplied, Error: st.Err.Error(),
					Message: fmt.Sprintf("the new source (%s) took over because the running one had no valid credentials left, but it fails too (%s); no valid credentials are served", src, rotator.ErrorCode(st.Err))}
			}
			// Took over before its first attempt ended: wait for it.
			select {
			case <-p.ended:
				return reloadAnswer{Result: reloadApplied, Message: fmt.Sprintf("the new source (%s) took over; imdsd stopped before its first attempt ended", src)}
			default:
			}
		default:
			select {
			case <-p.ended:
				return reloadAnswer{Result: reloadReplaced, Message: "replaced by a later reload, or imdsd stopped, before the new source took over"}
			default:
			}
			if st.Err != nil && rotator.Classify(st.Err) == rotator.ClassPermanent {
				return pending(st)
			}
		}
		select {
		case <-changed:
		case <-took:
		case <-p.ended:
		case <-timer.C:
			return pending(p.rot.State())
		case <-ctx.Done():
			return pending(p.rot.State())
		}
	}
}

// broadcast wakes every goroutine waiting on it. The zero value is ready
// to use.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next signal.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
