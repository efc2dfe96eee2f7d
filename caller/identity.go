package caller

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Identity is what is known about the caller at the other end of one
// connection. The zero value is not meaningful: an unknown caller is
// [Unknown](err), whose UID is -1.
//
// Identities are values; the slices they hold are shared between the
// identities of one user and must not be modified.
type Identity struct {
	// Known reports that the OS named the owner of the peer socket: its
	// uid on Linux, its process (and through it the user) on Windows.
	// A policy with an allow list refuses a caller that is not Known.
	Known bool
	// UID is the socket owner's uid; -1 when unknown, and always -1 on
	// Windows, which has none (see SID).
	UID int
	// SID is the Windows security identifier of the process's user;
	// "" elsewhere.
	SID string
	// User is the user's account name from the user database ("DOMAIN\name"
	// on Windows); "" when the uid has no entry or the caller is unknown.
	User string
	// GIDs are the user's groups in the user database (the primary group
	// first, then the supplementary ones), and Groups their names ("" for a
	// gid without a name), index for index. Unix only: nil on Windows.
	// These are the account's memberships, not the process's own
	// credentials: a process that dropped a group still matches it.
	GIDs   []int
	Groups []string
	// PID is the process holding the peer socket; 0 when not (yet) found.
	// Several processes can share a socket (fork); PID is one of them.
	PID int
	// Exe is the absolute path of that process's executable as the kernel
	// reports it (Linux appends " (deleted)" when the file was replaced);
	// "" when not found. For a script it is the interpreter.
	Exe string
	// Cgroup is the process's cgroup (v2 path, e.g.
	// /system.slice/docker-ID.scope); "" when unknown. Linux only.
	Cgroup string
	// Inode is the peer socket's inode on Linux; 0 elsewhere.
	Inode uint64
	// Err says why the caller is not Known, or why the process fields are
	// empty after a search; nil when nothing failed.
	Err error
}

// Unknown returns the identity of a caller that could not be identified,
// for the reason err.
func Unknown(err error) Identity { return Identity{UID: -1, Err: err} }

// Lookup finds the owner of the peer socket of a TCP connection: local and
// remote are the accepted connection's own addresses (as seen by this
// server), so the peer socket is the one bound to remote and connected to
// local. IPv4-mapped IPv6 addresses are accepted.
//
// Lookup must be safe for concurrent use and cheap (it runs once per
// accepted connection); it never blocks on anything but the kernel. On
// failure it returns [Unknown] with the same error.
type Lookup interface {
	Lookup(local, remote netip.AddrPort) (Identity, error)
}

// LookupFunc adapts a function to [Lookup], for tests.
type LookupFunc func(local, remote netip.AddrPort) (Identity, error)

// Lookup calls f.
func (f LookupFunc) Lookup(local, remote netip.AddrPort) (Identity, error) { return f(local, remote) }

// ProcessFinder is implemented by lookups that find the owning process
// separately from the socket's owner, because it costs much more (Linux:
// a walk of /proc). FindProcess returns id with PID, Exe and Cgroup set,
// or id with Err set and an error when no process could be found. It is
// safe for concurrent use and blocks for the search.
type ProcessFinder interface {
	FindProcess(id Identity) (Identity, error)
}

// Errors of a lookup. Each is wrapped with the OS's detail; test with
// errors.Is.
var (
	// ErrUnsupported: this OS's lookup is not implemented (macOS and
	// others). A policy that needs it is refused by Compile.
	ErrUnsupported = errors.New("caller lookup is not implemented on this operating system")
	// ErrNoSocket: no socket of this host's network namespace has the
	// peer's address. The peer closed the connection already, or it is in
	// another network namespace: a container on a bridge is identified by
	// its container token, not by this lookup.
	ErrNoSocket = errors.New("no socket of this host's network namespace is the peer (it closed, or it is in another network namespace such as a container's)")
	// ErrPeerClosed: the peer socket exists but no process holds it any
	// more (closed, waiting out its FIN or TIME_WAIT), so it has no owner.
	ErrPeerClosed = errors.New("the peer socket is closed: it has no owner any more")
	// ErrNoProcess: no process that imdsd can see holds the socket: it
	// exited or handed the socket on, it is in another pid namespace, or
	// imdsd may not read its /proc entries (running as another user
	// without CAP_SYS_PTRACE).
	ErrNoProcess = errors.New("no visible process holds the peer socket")
	// ErrNotTCP: the connection is not a TCP connection.
	ErrNotTCP = errors.New("not a TCP connection")
)

// Peer is the caller of one connection. Its socket's owner is looked up
// on the first call of Identity or WithProcess, and its process on the
// first call of WithProcess; each at most once per connection, however
// many requests the connection carries. A connection that only asks for
// a token or metadata never costs a lookup. It is safe for concurrent use.
type Peer struct {
	lookup func() Identity // the socket lookup; nil for a NewPeer
	finder ProcessFinder   // nil: there is nothing more to find

	idOnce sync.Once
	id     Identity

	procOnce sync.Once
	full     atomic.Pointer[Identity] // set once the process search ran
}

// NewPeer returns the peer of a connection whose owner is already known
// to be id; finder, if not nil, finds its process when WithProcess is
// first called.
func NewPeer(id Identity, finder ProcessFinder) *Peer {
	return &Peer{id: id, finder: finder}
}

// resolve runs the socket lookup, once.
func (p *Peer) resolve() {
	if p.lookup != nil {
		p.id = p.lookup()
		p.lookup = nil
	}
}

// Identity returns the owner of the peer socket, looking it up on the
// first call (blocking on the kernel: about 10 µs on Linux). The process
// fields are set only when the OS gave them with the socket (Windows) or
// WithProcess found them.
func (p *Peer) Identity() Identity {
	if f := p.full.Load(); f != nil {
		return *f
	}
	p.idOnce.Do(p.resolve)
	return p.id
}

// WithProcess returns the identity with the owning process, searching for
// it on the first call (blocking: a /proc walk on Linux, from about 20 µs
// for a process seen before to a few milliseconds on a busy host) and
// returning the same result after. An unknown caller is not searched.
func (p *Peer) WithProcess() Identity {
	p.procOnce.Do(func() {
		p.idOnce.Do(p.resolve)
		id := p.id
		if p.finder != nil && id.Known && id.PID == 0 {
			id, _ = p.finder.FindProcess(id)
		}
		p.full.Store(&id)
	})
	return *p.full.Load()
}

type ctxKey struct{}

// ConnContext returns a function for http.Server.ConnContext that stores
// a *Peer in each accepted connection's context for [FromContext]. It
// only notes the connection's addresses: the lookup with l runs when a
// handler first asks (Peer.Identity), in that request's goroutine, so it
// neither slows the server's accept loop nor costs anything for requests
// that do not need it. When l is also a [ProcessFinder], the peer's
// process is found through it on demand (Peer.WithProcess).
//
// A connection that is not TCP, or whose lookup fails, has an unknown
// Peer whose Identity().Err says why.
func ConnContext(l Lookup) func(context.Context, net.Conn) context.Context {
	finder, _ := l.(ProcessFinder)
	return func(ctx context.Context, c net.Conn) context.Context {
		p := &Peer{finder: finder}
		la, ok1 := c.LocalAddr().(*net.TCPAddr)
		ra, ok2 := c.RemoteAddr().(*net.TCPAddr)
		if ok1 && ok2 {
			local, remote := la.AddrPort(), ra.AddrPort()
			p.lookup = func() Identity {
				id, err := l.Lookup(local, remote)
				if err != nil {
					id = Unknown(err)
				}
				return id
			}
		} else {
			p.id = Unknown(ErrNotTCP)
		}
		return context.WithValue(ctx, ctxKey{}, p)
	}
}

// LookupConn looks up the peer of the accepted connection c with l, now.
// Its error, if any, is in the result's Err.
func LookupConn(l Lookup, c net.Conn) Identity {
	la, ok1 := c.LocalAddr().(*net.TCPAddr)
	ra, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return Unknown(ErrNotTCP)
	}
	id, err := l.Lookup(la.AddrPort(), ra.AddrPort())
	if err != nil {
		id = Unknown(err)
	}
	return id
}

// FromContext returns the Peer that ConnContext stored in ctx (a request's
// context carries its connection's), or nil when there is none.
func FromContext(ctx context.Context) *Peer {
	p, _ := ctx.Value(ctxKey{}).(*Peer)
	return p
}

// WithPeer returns a copy of ctx carrying p, as ConnContext does; for
// tests of handlers that read FromContext.
func WithPeer(ctx context.Context, p *Peer) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}
