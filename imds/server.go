package imds

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Bounds on every connection, so slow or oversized requests cannot pile up.
// IMDS requests are a request line and a few short headers; SDKs give up on
// IMDS after a second or so (SPEC.md R1.4).
//
// ReadTimeout equals ReadHeaderTimeout: an IMDS request has no body, so
// the one deadline covers it, and net/http then sets one read deadline
// per request instead of two.
const (
	MaxHeaderBytes    = 8 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = ReadHeaderTimeout
	WriteTimeout      = 10 * time.Second
	// IdleTimeout closes keep-alive connections idle this long. SDKs send
	// their requests in a burst milliseconds apart (token, role name,
	// credentials) and come back minutes or hours later, so a connection
	// idle for seconds is not reused; every one kept costs a goroutine and
	// its buffers (BENCHMARKS.md, "Idle connections"). Real IMDS keeps none
	// (Connection: close, SPEC.md R1.7). Go's client notices the close and
	// retries on a new connection.
	IdleTimeout = 5 * time.Second
)

// DefaultMaxConns is the default cap on the connections one server holds
// open at once (NewServer): far above what the SDKs of one host open, and
// small enough that a flood of connections costs a bounded amount of
// memory: about 20 KiB each, and as much again of garbage-collector
// headroom while a flood churns (BENCHMARKS.md, "Idle connections").
const DefaultMaxConns = 1024

// NewServer returns an http.Server for h with the bounds above, holding at
// most maxConns connections open at once (DefaultMaxConns when maxConns is
// 0 or less), counted over every listener it serves. Its errors go to log.
//
// At the cap a new connection is still accepted, and the connection that
// has waited longest without a request in flight (new or idle) is closed;
// only when every connection has a request in flight is the one active the
// longest closed. Refusing new connections instead would let anyone on the
// host lock clients out by holding the cap with idle connections, and SDK
// clients often open a new connection per request; closing the stalest
// one makes a flood evict itself while requests that are moving get
// served.
func NewServer(h http.Handler, maxConns int, log zerolog.Logger) *http.Server {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	l := &connLimit{
		max:   maxConns,
		log:   log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute}),
		conns: make(map[net.Conn]*connEntry),
	}
	srv := &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ConnState:         l.connState,
		ErrorLog:          newStdLogger(log),
	}
	if kernelWriteBound {
		// The kernel bounds writes (boundWrites, at each new
		// connection) instead of a deadline net/http sets at every
		// request: the same bound, without a timer change and a clock
		// read per answer (BENCHMARKS.md, "Cost of an answer").
		srv.WriteTimeout = 0
		l.writeBound = writeBound
	}
	return srv
}

// connLimit holds a server's open connections in two lists, each ordered
// by the time of the connection's last state change, oldest first: waiting
// (new or idle: no request in flight) and busy (a request is being read or
// answered). net/http reports every change through ConnState, from the
// accept loop for StateNew and from the connection's goroutine after.
//
// A state change moves an entry in place: no allocation per request. Each
// connection costs one entry and one map slot, freed when it closes.
type connLimit struct {
	max        int
	log        zerolog.Logger // sampled: a flood must not flood the log
	writeBound time.Duration  // > 0: boundWrites each new connection

	mu            sync.Mutex
	conns         map[net.Conn]*connEntry
	waiting, busy connList
	evicted       uint64 // connections closed at the cap, for the log
}

type connEntry struct {
	conn       net.Conn
	list       *connList
	prev, next *connEntry
}

// connList is a doubly linked list of entries, oldest at head.
type connList struct{ head, tail *connEntry }

func (l *connList) pushBack(e *connEntry) {
	e.list, e.prev, e.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *connList) remove(e *connEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.list, e.prev, e.next = nil, nil, nil
}

func (l *connLimit) connState(c net.Conn, state http.ConnState) {
	var victim net.Conn
	var evicted uint64
	l.mu.Lock()
	e := l.conns[c]
	switch state {
	case http.StateNew:
		if l.writeBound > 0 {
			if err := boundWrites(c, l.writeBound); err != nil {
				// Unbounded writes, on this connection only; the cap
				// still closes it when it is the stalest.
				l.log.Warn().Err(err).Msg("cannot bound the connection's writes (TCP_USER_TIMEOUT)")
			}
		}
		if e == nil {
			e = &connEntry{conn: c}
			l.conns[c] = e
			l.waiting.pushBack(e)
		}
		if len(l.conns) > l.max {
			v := l.waiting.head
			if v == nil || v == e {
				v = l.busy.head
			}
			if v != nil && v != e {
				v.list.remove(v)
				delete(l.conns, v.conn)
				victim = v.conn
				l.evicted++
				evicted = l.evicted
			}
		}
	case http.StateActive, http.StateIdle:
		// An entry closed at the cap is gone from the map: its goroutine
		// may still report a change before it sees the close.
		if e != nil {
			e.list.remove(e)
			if state == http.StateActive {
				l.busy.pushBack(e)
			} else {
				l.waiting.pushBack(e)
			}
		}
	case http.StateClosed, http.StateHijacked:
		if e != nil {
			e.list.remove(e)
			delete(l.conns, c)
		}
	}
	l.mu.Unlock()
	if victim != nil {
		_ = victim.Close()
		l.log.Warn().Int("max_connections", l.max).Uint64("closed_total", evicted).
			Str("remote", victim.RemoteAddr().String()).
			Msg("connection limit reached: closed the connection waiting longest; raise max_connections if real clients need more")
	}
}
