package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imdsd/imdsd/audit"
	"github.com/imdsd/imdsd/caller"
	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/rotator"
	"github.com/rs/zerolog"
)

// daemon is the running service: one configuration at a time, switched on
// SIGHUP without dropping the listeners that stay or the tokens already
// issued. Each role has its own rotator (a generation); one IMDS handler
// serves every role by name, and one container handler the roles exposed
// to containers. A failing role never affects another.
type daemon struct {
	log        zerolog.Logger
	tokens     *imds.Tokens           // kept across reloads: issued tokens stay valid
	served     handlerRef             // what every IMDS listener serves
	containers *imds.ContainerHandler // what every container listener serves
	access     *accessControl         // who may have which role; the audit trail
	ready      chan struct{}          // closed once every role has tried to get credentials
	held       chan struct{}          // closed once a role first holds credentials
	onceH      sync.Once
	// waiting is closed when a source first waits for a person (an MFA
	// code for imdsd mfa): systemd must not time the start out then.
	waiting chan struct{}
	onceW   sync.Once
	started time.Time
	metrics *metrics                // kept across reloads
	inbox   *rotator.MFAInbox       // codes from imdsd mfa, when a source takes them
	reloads chan chan reloadStarted // reload requests of the admin API (imdsd reload)
	quit    chan struct{}           // closed when serve stops taking reloads
	// drains owns the goroutines that drain the listeners a reload
	// removed; serve waits for them, and tests can.
	drains sync.WaitGroup
	// pubMu orders what reaches the handlers: a generation's publish, a
	// promotion and a handler swap. Nothing waits while holding it; it is
	// taken after mu, never before.
	pubMu sync.Mutex

	mu       sync.Mutex // guards the fields below
	cfg      Config
	roles    map[string]*roleSlot    // by role name
	servers  map[string]*http.Server // IMDS listeners, by address
	cservers map[string]*http.Server // container listeners, by address
	wg       sync.WaitGroup          // server and rotator goroutines, supervisors of pending sources
}

// roleSlot is one role: the generation serving it and a reloaded one that
// has not taken over yet (reload_source.go).
type roleSlot struct {
	gen     *generation
	pending *generation
}

// handlerRef lets every listener switch to a new handler with one atomic
// store.
type handlerRef struct{ p atomic.Pointer[imds.Handler] }

func (r *handlerRef) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.p.Load().ServeHTTP(w, req)
}

// generation is one role's credential source: its rotator, built from one
// configuration.
type generation struct {
	role    atomic.Pointer[string] // the role's name (name, rename)
	cfg     Config                 // the role's, as built
	rot     *rotator.Rotator
	serving atomic.Bool // its state reaches the handlers (it is the role's running one)
	// container: its state reaches the container endpoint too. It starts
	// as cfg.Container; a reload that keeps the source may change it.
	container atomic.Bool
	tried     chan struct{} // closed after the first attempt
	onceT     sync.Once
	ok        chan struct{} // closed at the first success
	onceOK    sync.Once
	took      chan struct{} // closed when a pending generation takes over
	changed   broadcast     // signalled after every attempt
	created   time.Time
	// failingSince is when the first of its attempts failed, while it
	// never succeeded (zero otherwise).
	failingSince atomic.Pointer[time.Time]
	ended        <-chan struct{} // closed at stop
	cancel       context.CancelFunc
	done         chan struct{}
}

// newDaemon is newDaemonRoles for the one role of c.
func newDaemon(c Config, src rotator.Fetcher, log zerolog.Logger) (*daemon, error) {
	return newDaemonRoles(c, map[string]rotator.Fetcher{c.defaultRoleName(): src}, log)
}

// newDaemonRoles builds the daemon of c with each role's source; nothing
// runs until serve.
func newDaemonRoles(c Config, srcs map[string]rotator.Fetcher, log zerolog.Logger) (*daemon, error) {
	tokens, err := imds.NewTokens(imds.NewTokenKey(), nil)
	if err != nil {
		return nil, err
	}
	d := &daemon{log: log, tokens: tokens, ready: make(chan struct{}), held: make(chan struct{}), waiting: make(chan struct{}), cfg: c,
		roles: map[string]*roleSlot{}, servers: map[string]*http.Server{}, cservers: map[string]*http.Server{},
		started: time.Now(), metrics: newMetrics(), reloads: make(chan chan reloadStarted), quit: make(chan struct{})}
	d.access = &accessControl{metrics: d.metrics}
	st, err := d.prepareAccess(c)
	if err != nil {
		return nil, err
	}
	if err := d.build(c, srcs, st); err != nil {
		d.abandonAccess(st)
		return nil, err
	}
	d.commitAccess(st)
	return d, nil
}

// build makes the handlers and every role's generation of d for c, to run
// with the access state st.
func (d *daemon) build(c Config, srcs map[string]rotator.Fetcher, st *accessState) error {
	log := d.log
	if sys, err := caller.NewSystem(caller.Options{}); err != nil {
		log.Warn().Err(err).Msg("caller lookup unavailable: roles with allow: refuse every caller")
	} else {
		d.access.lookup = sys
	}
	allowed, _ := c.allowedClients()
	d.containers = imds.NewContainerHandler(imds.ContainerConfig{AllowedClients: allowed, Stats: &d.metrics.requests, Observer: d.access},
		log.With().Str("component", "containers").Logger())
	h, err := d.newHandler(c, st)
	if err != nil {
		return err
	}
	d.served.p.Store(h)
	for _, r := range c.roleConfigs() {
		src := srcs[r.RoleName]
		if src == nil {
			return fmt.Errorf("role %s: no credential source", r.RoleName)
		}
		g := d.newGeneration(r, src)
		g.serving.Store(true)
		d.roles[r.RoleName] = &roleSlot{gen: g}
	}
	return d.exposeContainers(c)
}

// prepareAccess builds c's access state: its policies, and its audit
// trail, the running one kept (and reopened, for logrotate) when the path
// and audit_to_log stay, else opened (the old one closes at commit). Nothing of it is enforced until commitAccess; a
// refused configuration hands it to abandonAccess.
func (d *daemon) prepareAccess(c Config) (*accessState, error) {
	st, warnings, err := compileAccess(c)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		d.log.Warn().Msg(w)
	}
	if c.AuditLog == "" {
		return st, nil
	}
	if old := d.access.state.Load(); old != nil && old.trail != nil && old.trail.Path() == c.AuditLog && old.trail.Echo() == c.AuditToLog {
		if err := old.trail.Reopen(); err != nil {
			d.log.Error().Err(err).Str("audit_log", c.AuditLog).Msg("audit trail not reopened; writing on to the old file")
		}
		st.trail = old.trail
		return st, nil
	}
	w, err := audit.Open(audit.Options{Path: c.AuditLog, Log: d.log.With().Str("component", "audit").Logger(), Echo: c.AuditToLog})
	if err != nil {
		return nil, fmt.Errorf("open the audit trail: %w", err)
	}
	st.trail = w
	return st, nil
}

// commitAccess makes st the enforced access state; a running audit trail
// st does not keep is closed (it drains first).
func (d *daemon) commitAccess(st *accessState) {
	old := d.access.state.Swap(st)
	if st.trail != nil {
		stats := st.trail.Stats
		d.metrics.trail.Store(&stats)
	} else {
		d.metrics.trail.Store(nil)
	}
	if old != nil && old.trail != nil && old.trail != st.trail {
		_ = old.trail.Close()
	}
}

// abandonAccess closes the audit trail prepareAccess opened for st, if it
// is not the running one.
func (d *daemon) abandonAccess(st *accessState) {
	if st == nil || st.trail == nil {
		return
	}
	if running := d.access.state.Load(); running == nil || running.trail != st.trail {
		_ = st.trail.Close()
	}
}

// closeAccess closes the audit trail, after the last request.
func (d *daemon) closeAccess() {
	if st := d.access.state.Load(); st != nil && st.trail != nil {
		if err := st.trail.Close(); err != nil {
			d.log.Error().Err(err).Msg("close the audit trail")
		}
	}
}

// newHandler builds the IMDS handler of c, which asks d.access only when
// st, the access state it will run with, has something to enforce or
// record.
func (d *daemon) newHandler(c Config, st *accessState) (*imds.Handler, error) {
	ic := c.imdsConfig()
	ic.Tokens, ic.Stats = d.tokens, &d.metrics.requests
	if len(st.policies) > 0 || st.defaults != nil {
		ic.Access = d.access
	}
	if st.trail != nil {
		ic.Observer = d.access
	}
	return imds.NewHandler(ic, d.log.With().Str("component", "imds").Logger())
}

// newGeneration builds role r's generation; it publishes only while it
// is the role's running one.
func (d *daemon) newGeneration(r Config, src rotator.Fetcher) *generation {
	g := &generation{cfg: r, tried: make(chan struct{}), ok: make(chan struct{}), took: make(chan struct{}), done: make(chan struct{}), created: time.Now()}
	g.container.Store(r.Container)
	g.rename(r.RoleName)
	g.rot = rotator.New(src, rotator.Options{
		Source: r.Source,
		Publish: func(s rotator.State) {
			d.pubMu.Lock()
			if g.serving.Load() {
				d.publishState(d.served.p.Load(), g, s)
			}
			d.pubMu.Unlock()
			if s.Credentials.HasKeys() {
				d.onceH.Do(func() { close(d.held) })
			} else if errors.Is(s.Err, rotator.ErrNoMFACode) {
				d.onceW.Do(func() { close(d.waiting) })
			}
			if s.Credentials.HasKeys() && s.Err == nil {
				g.onceOK.Do(func() { close(g.ok) })
			} else if s.Err != nil && !s.Credentials.HasKeys() && g.failingSince.Load() == nil {
				at := s.ErrAt
				g.failingSince.Store(&at)
			}
			g.onceT.Do(func() { close(g.tried) })
			g.changed.signal()
		},
		Observe: d.metrics.observer(r.RoleName),
		Log:     d.log.With().Str("component", "rotator").Str("role", r.RoleName).Logger(),
	})
	return g
}

// name is the name of g's role.
func (g *generation) name() string { return *g.role.Load() }

// rename gives g's role a new name (the one role's role_name changed).
func (g *generation) rename(name string) { g.role.Store(&name) }

// publishState hands g's state s to the IMDS handler h and, when g's role
// is served to containers, to the container handler. d.pubMu must be held.
func (d *daemon) publishState(h *imds.Handler, g *generation, s rotator.State) {
	snap := snapshotOf(s)
	_ = h.PublishRole(g.name(), snap) // a removed role is no longer known: fine
	if g.container.Load() {
		d.containers.Publish(g.name(), snap)
	}
}

// swapHandler makes h the IMDS handler, with the state of every running
// generation published into it first: no request sees it empty. Under
// pubMu, no publish falls between. d.mu must be held.
func (d *daemon) swapHandler(h *imds.Handler) {
	d.pubMu.Lock()
	defer d.pubMu.Unlock()
	for _, s := range d.roles {
		d.publishState(h, s.gen, s.gen.rot.State())
	}
	d.served.p.Store(h)
}

// start runs the generation's rotator until stop, which waits for it.
func (g *generation) start(ctx context.Context) {
	ctx, g.cancel = context.WithCancel(ctx)
	g.ended = ctx.Done()
	go func() {
		defer close(g.done)
		_ = g.rot.Run(ctx)
	}()
}

func (g *generation) stop() {
	g.cancel()
	<-g.done
}

// serve opens the admin socket, binds every listener, runs the rotators,
// prints the export line once every role has tried to get credentials,
// reloads on each value from hup and each imdsd reload, and blocks until
// ctx ends; then it drains requests in flight. It fails at once, before
// binding anything, when the admin socket is another imdsd's or is not
// safe to use.
func (d *daemon) serve(ctx context.Context, stdout io.Writer, hup <-chan os.Signal, reload reloadFunc) error {
	d.mu.Lock()
	adminPath := d.cfg.AdminSocket
	d.mu.Unlock()
	// The admin socket comes first: a second imdsd given the same one
	// must not start and leave imdsd status talking to the first.
	stopAdmin, err := d.serveAdmin(adminPath, d.log.With().Str("component", "admin").Logger())
	if err != nil {
		return err
	}
	defer stopAdmin()

	d.mu.Lock()
	// One call for both kinds: under socket activation the first call
	// takes what systemd passed and closes the rest.
	all, err := listenAll(append(slices.Clone(d.cfg.Listen), d.cfg.ContainerListen...))
	if err != nil {
		d.mu.Unlock()
		return err
	}
	lns, clns := all[:len(d.cfg.Listen)], all[len(d.cfg.Listen):]
	errc := make(chan error, 16)
	for i, ln := range lns {
		d.startServer(d.cfg.Listen[i], ln, errc)
	}
	for i, ln := range clns {
		d.startContainerServer(d.cfg.ContainerListen[i], ln, errc)
	}
	var tried []chan struct{}
	for _, s := range d.roles {
		s.gen.start(ctx)
		tried = append(tried, s.gen.tried)
	}
	d.mu.Unlock()
	d.wg.Go(func() {
		defer close(d.ready)
		for _, t := range tried {
			select {
			case <-t:
			case <-ctx.Done():
				return
			}
		}
	})

	select {
	case <-d.ready:
		fmt.Fprintf(stdout, "export AWS_EC2_METADATA_SERVICE_ENDPOINT=%s\n", endpointURL(lns[0].Addr()))
		for _, ln := range clns {
			fmt.Fprintf(stdout, "# container endpoint: %s%s (imdsd container-env ROLE)\n", endpointBase(ln.Addr()), imds.ContainerPathPrefix)
		}
	case <-ctx.Done():
	case err = <-errc:
	}
	// systemd (Type=notify) counts the service as started once it holds
	// credentials, not merely once it tried; or once it waits for an MFA
	// code, which only a person can give, and only to a started service.
	held, waiting := d.held, d.waiting
	for err == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case err = <-errc:
		case <-held:
			sdNotify("READY=1\nSTATUS=serving credentials")
			held, waiting = nil, nil
		case <-waiting:
			sdNotify("READY=1\nSTATUS=waiting for an MFA code: run imdsd mfa CODE")
			waiting = nil
		case <-hup:
			_, _ = d.reload(ctx, reload, errc) // logged
		case reply := <-d.reloads:
			p, rerr := d.reload(ctx, reload, errc)
			reply <- reloadStarted{pending: p, err: rerr}
		}
	}
	close(d.quit)

	sdNotify("STOPPING=1")
	d.log.Info().Msg("shutting down")
	d.mu.Lock()
	servers := make([]*http.Server, 0, len(d.servers)+len(d.cservers))
	for _, srv := range d.servers {
		servers = append(servers, srv)
	}
	for _, srv := range d.cservers {
		servers = append(servers, srv)
	}
	d.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	for _, srv := range servers {
		if e := srv.Shutdown(sctx); e != nil {
			err = errors.Join(err, fmt.Errorf("drain: %w", e))
		}
	}
	d.stopSources()
	d.drains.Wait()
	d.closeAccess()
	return err
}

// stopSources stops every role's generations, and waits for every
// goroutine on d.wg. It never waits holding d.mu: a pending source's
// supervisor takes it to switch over.
func (d *daemon) stopSources() {
	d.mu.Lock()
	var running []*generation
	for _, s := range d.roles {
		if s.pending != nil {
			s.pending.cancel() // its supervisor stops it
			s.pending = nil    // it can no longer take over
		}
		running = append(running, s.gen)
	}
	d.mu.Unlock()
	for _, g := range running {
		g.stop()
	}
	d.wg.Wait()
}

// current returns the running configuration and the default role's
// rotator.
func (d *daemon) current() (Config, *rotator.Rotator) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg, d.roles[d.cfg.defaultRoleName()].gen.rot
}

// defaultGen is the default role's running generation.
func (d *daemon) defaultGen() *generation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.roles[d.cfg.defaultRoleName()].gen
}

// role returns the running and pending generations of role name, nil when
// there is no such role.
func (d *daemon) role(name string) (running, pending *generation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.roles[name]; s != nil {
		return s.gen, s.pending
	}
	return nil, nil
}

// reloadFunc re-reads the configuration and builds every role's source.
type reloadFunc func(ctx context.Context) (Config, map[string]rotator.Fetcher, error)

// reload switches to the configuration reload returns. An invalid one is
// refused with its errors and the running one stays. Listeners whose
// address did not change keep their sockets; tokens stay valid.
//
// Roles are compared by name. A role whose source settings did not change
// keeps its rotator and credentials. A new role starts at once. A removed
// role stops. A role whose source changed does not take over at once: its
// new source starts beside the running one as the role's pending
// generation, returned, and takes over on its first success, or when the
// running source has no valid credentials left (reload_source.go). Until
// every pending source has taken over, the listeners a reload removes keep
// serving. A further reload replaces a pending generation. reload never
// waits for a source: the admin API must answer while STS does not.
func (d *daemon) reload(ctx context.Context, reload reloadFunc, errc chan<- error) ([]*generation, error) {
	sdNotify("RELOADING=1")
	defer sdNotify("READY=1") // systemd needs it to end the reload, ready or not
	d.log.Info().Msg("reloading configuration")
	refuse := func(err error) ([]*generation, error) {
		d.log.Error().Err(err).Msg("configuration refused; the running one stays")
		return nil, err
	}
	// Reading files and building clients happens outside d.mu, which the
	// admin API needs; reloads are serialised by serve's loop.
	c, srcs, err := reload(ctx)
	if err != nil {
		return refuse(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cfg
	if c.LogFormat != old.LogFormat || c.LogLevel != old.LogLevel {
		d.log.Warn().Msg("log_format and log_level take effect at the next restart")
	}
	if c.AdminSocket != old.AdminSocket {
		d.log.Warn().Str("admin", old.AdminSocket).Msg("admin_socket takes effect at the next restart")
	}
	if c.MaxConnections != old.MaxConnections {
		d.log.Warn().Msg("max_connections applies to listeners bound from now on; restart to apply it to all")
	}
	// Which roles change their source.
	type plan struct {
		r    Config
		keep bool // same source: keep the running generation
	}
	var plans []plan
	changing := false
	if len(old.Roles) == 0 && len(c.Roles) == 0 && old.RoleName != c.RoleName {
		// The one role renamed (role_name): the same role, its rotator
		// and credentials kept.
		s := d.roles[old.RoleName]
		delete(d.roles, old.RoleName)
		d.roles[c.RoleName] = s
		d.pubMu.Lock()
		s.gen.rename(c.RoleName)
		if s.pending != nil {
			s.pending.rename(c.RoleName)
		}
		d.pubMu.Unlock()
	}
	for _, r := range c.roleConfigs() {
		s := d.roles[r.RoleName]
		keep := s != nil && sameSource(s.gen.cfg, r)
		if s != nil && !keep {
			changing = true
		}
		if !keep && srcs[r.RoleName] == nil {
			return refuse(fmt.Errorf("role %s: no credential source", r.RoleName))
		}
		plans = append(plans, plan{r, keep})
	}
	want := c.Listen
	if changing || d.anyPending() {
		// The running sources keep serving their listeners until the new
		// ones take over.
		want = unionOf(old.Listen, c.Listen)
	}
	added := missing(want, d.servers)
	lns, err := listenAll(added)
	if err != nil {
		return refuse(err)
	}
	cadded := missing(c.ContainerListen, d.cservers)
	clns, err := listenAll(cadded)
	if err != nil {
		closeAll(lns)
		return refuse(err)
	}
	st, err := d.prepareAccess(c)
	var h *imds.Handler
	if err == nil {
		h, err = d.newHandler(c, st)
	}
	if err == nil {
		err = d.exposeContainers(c)
	}
	if err != nil {
		d.abandonAccess(st)
		closeAll(lns)
		closeAll(clns)
		return refuse(err)
	}
	d.commitAccess(st)

	d.cfg = c
	allowed, _ := c.allowedClients() // valid: reload checked c
	d.containers.SetAllowedClients(allowed)
	for i, ln := range lns {
		d.startServer(added[i], ln, errc)
	}
	for i, ln := range clns {
		d.startContainerServer(cadded[i], ln, errc)
	}
	var pendings []*generation
	for _, p := range plans {
		s := d.roles[p.r.RoleName]
		if s != nil && s.pending != nil {
			s.pending.cancel() // its supervisor waits for it
			d.log.Info().Str("role", p.r.RoleName).Str("source", s.pending.cfg.Source).Msg("pending source replaced by this reload")
			s.pending = nil
		}
		switch {
		case p.keep:
			// The role's settings beyond the source (container: …) may
			// have changed; its rotator stays.
			s.gen.container.Store(p.r.Container)
		case s == nil:
			g := d.newGeneration(p.r, srcs[p.r.RoleName])
			g.serving.Store(true)
			d.roles[p.r.RoleName] = &roleSlot{gen: g}
			g.start(context.WithoutCancel(ctx))
			d.log.Info().Str("role", p.r.RoleName).Str("source", p.r.Source).Msg("role added")
		default:
			ng := d.newGeneration(p.r, srcs[p.r.RoleName])
			s.pending = ng
			ng.start(context.WithoutCancel(ctx))
			running := s.gen
			d.wg.Go(func() { d.supervise(ng, running) })
			pendings = append(pendings, ng)
			d.log.Info().Str("role", p.r.RoleName).Str("source", p.r.Source).Msg("new source starting; the running one serves until it obtains credentials")
		}
	}
	names := c.roleNames()
	for name, s := range d.roles {
		if slices.Contains(names, name) {
			continue
		}
		delete(d.roles, name)
		if s.pending != nil {
			s.pending.cancel()
		}
		g := s.gen
		g.serving.Store(false)
		d.wg.Go(g.stop)
		d.log.Info().Str("role", name).Msg("role removed")
	}
	d.swapHandler(h)
	d.dropServers(d.servers, want, "stopped listening")
	d.dropServers(d.cservers, c.ContainerListen, "container endpoint stopped listening")
	if len(pendings) == 0 {
		d.log.Info().Strs("roles", names).Strs("listen", c.Listen).Msg("configuration reloaded")
	}
	return pendings, nil
}

// anyPending reports whether a role has a pending generation. d.mu must be
// held.
func (d *daemon) anyPending() bool {
	for _, s := range d.roles {
		if s.pending != nil {
			return true
		}
	}
	return false
}

// missing are the addresses of want not served yet.
func missing(want []string, servers map[string]*http.Server) []string {
	var out []string
	for _, a := range want {
		if servers[a] == nil {
			out = append(out, a)
		}
	}
	return out
}

// sameSource reports whether a and b describe the same credential source
// of a role, so that its rotator and the credentials it holds can be kept.
func sameSource(a, b Config) bool {
	strip := func(c Config) Config {
		c.Listen, c.TokenMode, c.AllowClient, c.RoleName, c.Region = nil, "", nil, "", ""
		c.LogFormat, c.LogLevel, c.AdminSocket, c.MaxConnections, c.DebugPprof = "", "", "", 0, false
		c.Roles, c.roleEntries, c.DefaultRole, c.Container = nil, nil, "", false
		c.ContainerListen, c.ContainerTokenDir, c.ContainerTokenGroup = nil, "", ""
		c.Allow, c.DefaultRoles, c.AuditLog, c.AuditToLog = nil, nil, "", false
		c.AllowedHosts = nil
		return c
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// listenAll binds addrs, or takes them from systemd when it passed them
// (socket activation: imdsd.socket); sockets passed but not asked for are
// closed.
func listenAll(addrs []string) ([]net.Listener, error) {
	inherited, err := inheritedListeners(os.Getenv) // nil after the first call
	if err != nil {
		return nil, err
	}
	var lns []net.Listener
	for _, addr := range addrs {
		if ln, ok := inherited[addr]; ok {
			lns = append(lns, ln)
			delete(inherited, addr)
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	for _, ln := range inherited {
		ln.Close()
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		l.Close()
	}
}

// startServer serves IMDS on ln; d.mu must be held.
func (d *daemon) startServer(addr string, ln net.Listener, errc chan<- error) {
	srv := imds.NewServer(&d.served, d.cfg.MaxConnections, d.log.With().Str("component", "http").Logger())
	if d.access.lookup != nil {
		// Who is calling, once per connection, when a policy or the
		// audit trail first asks (package caller).
		srv.ConnContext = caller.ConnContext(d.access.lookup)
	}
	d.servers[addr] = srv
	d.serveOn(srv, ln, errc)
	d.log.Info().Str("addr", ln.Addr().String()).Str("token_mode", d.cfg.TokenMode).Msg("listening")
}

// serveOn serves srv on ln until it is shut down, on d.wg; a failure goes
// to errc. srv.Addr records the address ln is bound to (status shows it:
// a configured port 0 is the one the kernel chose).
func (d *daemon) serveOn(srv *http.Server, ln net.Listener, errc chan<- error) {
	srv.Addr = ln.Addr().String()
	d.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	})
}
