package imds

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/rs/zerolog"

	"github.com/imdsd/imdsd/internal/endpoint"
)

// Header names as Go's server canonicalises them (SPEC.md R1.5: clients send
// them in any case).
const (
	hdrToken    = "X-Aws-Ec2-Metadata-Token"
	hdrTokenTTL = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	tokenPath   = "/latest/api/token"
)

// Header values shared by every response. They are assigned into the header
// map directly (no Header.Set: no canonicalisation, no allocation); net/http
// only reads them.
//
// Every key in the map costs net/http a copy, a sort and a validity scan
// per response, so a response carries only what clients use: Server and
// Content-Type (SPEC.md R1.6, R1.7), the TTL echo on token PUTs (R2.4), and
// Allow on 405s. Content-Length is net/http's to add, outside the map, to a
// body written at once that fits its buffer (autoLengthMax); Date it adds
// anyway. Last-Modified, Accept-Ranges and Connection, seen in captures of
// real IMDS, are not sent: no client reads them (R1.7 is a SHOULD).
var (
	valTextPlain = []string{"text/plain"}
	valServer    = []string{"EC2ws"}
	valAllowGet  = []string{"GET, HEAD"}
	valAllowPut  = []string{"PUT"}
	valZero      = []string{"0"}
)

// autoLengthMax is the longest body net/http sends with a Content-Length
// of its own making: a handler's single Write up to its response buffer
// (bufferBeforeChunkingSize, 2 KiB) when the handler returns. A longer body
// would go out chunked, and a HEAD answer writes no body, so those name
// their length themselves. handler_test checks both sides of the bound
// through a real server.
const autoLengthMax = 2048

// Handler serves the IMDS HTTP surface. Build it with NewHandler, feed it
// with Publish, serve it with an [http.Server] (see NewServer). It is safe
// for concurrent use.
type Handler struct {
	cfg    Config
	log    zerolog.Logger
	deny   zerolog.Logger // sampled: refused clients must not flood the log
	tokens *Tokens
	router *httprouter.Router
	stats  *RequestStats
	snap   *atomic.Pointer[rendered]            // the default role's
	roles  map[string]*atomic.Pointer[rendered] // every role's; fixed keys
	listen map[netip.Addr]bool                  // hosts accepted in Host, besides loopback and IMDS
	hosts  allowedHostSet                       // Config.AllowedHosts (hosts.go)
	local  localAddrs

	lastTTL  atomic.Pointer[ttlValue] // putToken's last TTL echo
	lastHost atomic.Pointer[string]   // the last Host header hostAllowed accepted for itself
}

// NewHandler validates cfg and returns a handler that serves the
// "credentials not ready" error document until the first Publish.
func NewHandler(cfg Config, log zerolog.Logger) (*Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Tokens == nil {
		t, err := NewTokens(NewTokenKey(), cfg.Now)
		if err != nil {
			return nil, err
		}
		cfg.Tokens = t
	}
	h := &Handler{
		cfg:    cfg,
		log:    log,
		deny:   log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		tokens: cfg.Tokens,
		stats:  cfg.Stats,
		listen: map[netip.Addr]bool{},
		hosts:  newAllowedHostSet(cfg.AllowedHosts),
		local:  localAddrs{list: cfg.LocalAddrs, now: cfg.Now},
		roles:  map[string]*atomic.Pointer[rendered]{},
	}
	for _, name := range append([]string{cfg.RoleName}, cfg.Roles...) {
		h.roles[name] = new(atomic.Pointer[rendered])
	}
	h.snap = h.roles[cfg.RoleName]
	for _, l := range cfg.ListenAddrs {
		host, _ := ParseListen(l) // validated above
		if a, err := netip.ParseAddr(host); err == nil {
			h.listen[a.Unmap()] = true
		}
	}
	h.router = h.routes()
	for name := range h.roles {
		_ = h.PublishRole(name, Snapshot{})
	}
	return h, nil
}

// Tokens returns the token issuer, to be kept across handler rebuilds.
func (h *Handler) Tokens() *Tokens { return h.tokens }

// Publish renders every response that depends on s and makes it visible to
// all later requests with one atomic store. Requests in flight finish with
// the snapshot they loaded. Call it whenever the credentials or the last
// error change; it is safe for concurrent use.
func (h *Handler) Publish(s Snapshot) { h.snap.Store(h.render(s)) }

// ErrUnknownRole is returned by PublishRole for a role the handler was
// not configured with.
var ErrUnknownRole = errors.New("role not configured on this handler")

// PublishRole is Publish for the role name: the default role (RoleName) or
// one of Config.Roles.
func (h *Handler) PublishRole(name string, s Snapshot) error {
	p := h.roles[name]
	if p == nil {
		return fmt.Errorf("publish %s: %w", name, ErrUnknownRole)
	}
	p.Store(h.render(s))
	return nil
}

// ServeHTTP applies the guards (same-host client, Host allow-list, session
// token) and then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Server: EC2ws, for legacy code that checks it is talking to EC2.
	w.Header()["Server"] = valServer
	if !clientAllowed(r, h.cfg.AllowedClients, &h.local) {
		h.deny.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).
			Msg("refused client from another host; allow its network with --allow-client")
		h.fail(w, r, http.StatusForbidden)
		return
	}
	if !h.hostAllowed(r) {
		h.deny.Warn().Str("remote", r.RemoteAddr).Str("host", clip(r.Host)).
			Msg("refused request with a foreign Host header (DNS rebinding guard)")
		h.fail(w, r, http.StatusForbidden)
		return
	}
	if !isTokenPath(r.URL.Path) {
		switch tok := r.Header[hdrToken]; {
		case len(tok) == 0 && h.cfg.TokenMode == TokenRequired,
			len(tok) > 1,
			len(tok) == 1 && !h.tokens.Valid(tok[0]):
			h.log.Debug().Str("path", r.URL.Path).Int("tokens", len(tok)).Msg("missing or invalid session token")
			h.fail(w, r, http.StatusUnauthorized)
			return
		}
	}
	if e := h.log.Debug(); e.Enabled() {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		h.router.ServeHTTP(sw, r)
		e.Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
			Dur("took", time.Since(start)).Msg("request")
		return
	}
	h.router.ServeHTTP(w, r)
}

// isTokenPath reports whether p is a token path, /latest/api/token or a
// versioned one (/2021-03-23/api/token). Token paths are exempt from the
// token check: the PUT creates the token, and wrong methods or versions get
// their own answers (405, 403).
func isTokenPath(p string) bool {
	rest, ok := strings.CutSuffix(p, "/api/token")
	return ok && len(rest) > 1 && rest[0] == '/' && strings.IndexByte(rest[1:], '/') < 0
}

// fail answers an error status with an empty body (Content-Length: 0,
// net/http's but for HEAD).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int) {
	h.stats.observe(r.URL.Path, status)
	hdr := w.Header()
	hdr["Content-Type"] = valTextPlain
	if r.Method == http.MethodHead {
		hdr["Content-Length"] = valZero
	}
	w.WriteHeader(status)
}

// write answers 200 with b; HEAD gets the headers only.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, b body) {
	h.stats.observe(r.URL.Path, http.StatusOK)
	hdr := w.Header()
	hdr["Content-Type"] = valTextPlain
	if r.Method == http.MethodHead {
		hdr["Content-Length"] = b.len
		w.WriteHeader(http.StatusOK)
		return
	}
	if len(b.b) > autoLengthMax {
		hdr["Content-Length"] = b.len
	}
	_, _ = w.Write(b.b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// localAddrs caches this host's addresses; an unknown client address
// refreshes the cache at most every few seconds (interfaces change, say on a
// laptop moving between networks).
type localAddrs struct {
	list func() ([]netip.Addr, error)
	now  func() time.Time

	mu      sync.Mutex
	set     atomic.Pointer[map[netip.Addr]bool]
	fetched time.Time
}

const localAddrsRefresh = 5 * time.Second

func (l *localAddrs) contains(a netip.Addr) bool {
	if m := l.set.Load(); m != nil && (*m)[a] {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.set.Load(); m != nil && (now(l.now).Sub(l.fetched) < localAddrsRefresh) {
		return (*m)[a]
	}
	list := l.list
	if list == nil {
		list = interfaceAddrs
	}
	addrs, err := list()
	m := make(map[netip.Addr]bool, len(addrs))
	for _, x := range addrs {
		m[x.Unmap()] = true
	}
	if err == nil {
		l.set.Store(&m)
	}
	l.fetched = now(l.now)
	return m[a]
}

func now(f func() time.Time) time.Time {
	if f == nil {
		return time.Now()
	}
	return f()
}

func interfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

// clientAllowed admits clients on this host (loopback, the address the
// client connected to, or any of the host's addresses) and the configured
// networks.
func clientAllowed(r *http.Request, allowed []netip.Prefix, local *localAddrs) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.IsLoopback() {
		return true
	}
	for _, p := range allowed {
		if p.Contains(a) {
			return true
		}
	}
	if l, ok := connLocal(r); ok && l == a {
		return true
	}
	return local.contains(a)
}

// connLocal returns the address the client connected to.
func connLocal(r *http.Request) (netip.Addr, bool) {
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return la.AddrPort().Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// hostAllowed is the DNS-rebinding guard: a browser tricked into calling
// the endpoint sends the attacker's host name, so only IP literals that
// name this endpoint, localhost and the configured AllowedHosts are
// accepted.
//
// The last Host header accepted for itself (not for the connection's own
// address) is kept: a host's clients send the same one again and again,
// and comparing it costs less than parsing it.
func (h *Handler) hostAllowed(r *http.Request) bool {
	if last := h.lastHost.Load(); last != nil && *last == r.Host {
		return true
	}
	host, _, err := splitHostPort(r.Host)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || h.hosts.has(host) {
		h.rememberHost(r.Host)
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return false
	}
	a = a.Unmap()
	if a.IsLoopback() || a == endpoint.IMDSv4 || a == endpoint.IMDSv6 || h.listen[a] {
		h.rememberHost(r.Host)
		return true
	}
	l, ok := connLocal(r)
	return ok && l == a
}

func (h *Handler) rememberHost(host string) { h.lastHost.Store(&host) }
