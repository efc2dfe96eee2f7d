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
	"sync"
	"sync/atomic"
	"time"

	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/rotator"
	"github.com/rs/zerolog"
)

// daemon is the running service: one configuration at a time, switched on
// SIGHUP without dropping the listeners that stay or the tokens already
// issued.
type daemon struct {
	log    zerolog.Logger
	tokens *imds.Tokens  // kept across reloads: issued tokens stay valid
	served handlerRef    // what every listener serves
	ready  chan struct{} // closed after the first attempt to get credentials
	once   sync.Once
	held   chan struct{} // closed once credentials are first held
	onceH  sync.Once
	// waiting is closed when the source first waits for a person (an MFA
	// code for imdsd mfa): systemd must not time the start out then.
	waiting chan struct{}
	onceW   sync.Once
	started time.Time
	metrics *metrics                // kept across reloads
	inbox   *rotator.MFAInbox       // codes from imdsd mfa, when the source takes them
	reloads chan chan reloadStarted // reload requests of the admin API (imdsd reload)
	quit    chan struct{}           // closed when serve stops taking reloads
	// drains owns the goroutines that drain the listeners a reload
	// removed; serve waits for them, and tests can.
	drains sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	cfg     Config
	gen     *generation
	pending *generation             // a reloaded source not serving yet (reload_source.go)
	servers map[string]*http.Server // by listen address
	wg      sync.WaitGroup          // server and rotator goroutines, supervisors of pending sources
}

// handlerRef lets every listener switch to a new handler with one atomic
// store.
type handlerRef struct{ p atomic.Pointer[imds.Handler] }

func (r *handlerRef) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.p.Load().ServeHTTP(w, req)
}

// generation is one credential source: its rotator and the handler it
// feeds, built from one configuration.
type generation struct {
	cfg     Config // as built; d.cfg is the running one
	handler atomic.Pointer[imds.Handler]
	rot     *rotator.Rotator
	ok      chan struct{} // closed at the first success
	onceOK  sync.Once
	took    chan struct{} // closed when a pending generation takes over
	changed broadcast     // signalled after every attempt
	created time.Time
	// failingSince is when the first of its attempts failed, while it
	// never succeeded (zero otherwise).
	failingSince atomic.Pointer[time.Time]
	ended        <-chan struct{} // closed at stop
	cancel       context.CancelFunc
	done         chan struct{}
}

func newDaemon(c Config, src rotator.Fetcher, log zerolog.Logger) (*daemon, error) {
	tokens, err := imds.NewTokens(imds.NewTokenKey(), nil)
	if err != nil {
		return nil, err
	}
	d := &daemon{log: log, tokens: tokens, ready: make(chan struct{}), held: make(chan struct{}), waiting: make(chan struct{}), cfg: c, servers: map[string]*http.Server{},
		started: time.Now(), metrics: &metrics{}, reloads: make(chan chan reloadStarted), quit: make(chan struct{})}
	g, err := d.newGeneration(c, src)
	if err != nil {
		return nil, err
	}
	d.gen = g
	d.served.p.Store(g.handler.Load())
	return d, nil
}

func (d *daemon) newHandler(c Config) (*imds.Handler, error) {
	ic := c.imdsConfig()
	ic.Tokens, ic.Stats = d.tokens, &d.metrics.requests
	return imds.NewHandler(ic, d.log.With().Str("component", "imds").Logger())
}

func (d *daemon) newGeneration(c Config, src rotator.Fetcher) (*generation, error) {
	h, err := d.newHandler(c)
	if err != nil {
		return nil, err
	}
	g := &generation{cfg: c, ok: make(chan struct{}), took: make(chan struct{}), done: make(chan struct{}), created: time.Now()}
	g.handler.Store(h)
	g.rot = rotator.New(src, rotator.Options{
		Source: c.Source,
		Publish: func(s rotator.State) {
			g.handler.Load().Publish(snapshotOf(s))
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
			// The daemon is ready once its first source has tried.
			d.once.Do(func() { close(d.ready) })
			g.changed.signal()
		},
		Observe: d.metrics.observeFetch,
		Log:     d.log.With().Str("component", "rotator").Logger(),
	})
	return g, nil
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

// serve opens the admin socket, binds every listener, runs the rotator,
// prints the export line once the first attempt to get credentials is
// done, reloads on each value from hup and each imdsd reload, and blocks
// until ctx ends; then it drains requests in flight. It fails at once,
// before binding anything, when the admin socket is another imdsd's or
// is not safe to use.
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
	lns, err := listenAll(d.cfg.Listen)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	errc := make(chan error, 16)
	for i, ln := range lns {
		d.startServer(d.cfg.Listen[i], ln, errc)
	}
	d.gen.start(ctx)
	d.mu.Unlock()

	select {
	case <-d.ready:
		fmt.Fprintf(stdout, "export AWS_EC2_METADATA_SERVICE_ENDPOINT=%s\n", endpointURL(lns[0].Addr()))
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
	servers := make([]*http.Server, 0, len(d.servers))
	for _, srv := range d.servers {
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
	return err
}

// stopSources stops the running generation and a pending one, and waits
// for every goroutine on d.wg. It never waits holding d.mu: a pending
// source's supervisor takes it to switch over.
func (d *daemon) stopSources() {
	d.mu.Lock()
	p, g := d.pending, d.gen
	d.pending = nil // it can no longer take over; its supervisor stops it
	d.mu.Unlock()
	if p != nil {
		p.cancel()
	}
	g.stop()
	d.wg.Wait()
}

// current returns the running configuration and rotator.
func (d *daemon) current() (Config, *rotator.Rotator) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg, d.gen.rot
}

// reloadFunc re-reads the configuration and builds its source.
type reloadFunc func(ctx context.Context) (Config, rotator.Fetcher, error)

// reload switches to the configuration reload returns. An invalid one is
// refused with its errors and the running one stays. Listeners whose
// address did not change keep their sockets; tokens stay valid.
//
// A changed source does not take over at once: it starts beside the
// running one as the pending generation, returned, and takes over on its
// first success, or when the running source has no valid credentials left
// (reload_source.go). Until then the running configuration serves, on its
// listeners and on those the new one adds. A further reload replaces a
// pending generation. reload never waits for a source: the admin API must
// answer while STS does not.
func (d *daemon) reload(ctx context.Context, reload reloadFunc, errc chan<- error) (*generation, error) {
	sdNotify("RELOADING=1")
	defer sdNotify("READY=1") // systemd needs it to end the reload, ready or not
	d.log.Info().Msg("reloading configuration")
	refuse := func(err error) (*generation, error) {
		d.log.Error().Err(err).Msg("configuration refused; the running one stays")
		return nil, err
	}
	// Reading files and building clients happens outside d.mu, which the
	// admin API needs; reloads are serialised by serve's loop.
	c, src, err := reload(ctx)
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
	same := sameSource(old, c)
	want := c.Listen
	if !same {
		// The running source keeps serving its listeners until the new
		// one takes over.
		want = unionOf(old.Listen, c.Listen)
	}
	var added []string
	for _, a := range want {
		if d.servers[a] == nil {
			added = append(added, a)
		}
	}
	lns, err := listenAll(added)
	if err != nil {
		return refuse(err)
	}
	var h *imds.Handler
	var ng *generation
	if same {
		h, err = d.newHandler(c)
	} else {
		ng, err = d.newGeneration(c, src)
	}
	if err != nil {
		closeAll(lns)
		return refuse(err)
	}

	for i, ln := range lns {
		d.startServer(added[i], ln, errc)
	}
	if p := d.pending; p != nil {
		d.pending = nil
		p.cancel() // its supervisor waits for it
		d.log.Info().Str("source", p.cfg.Source).Msg("pending source replaced by this reload")
	}
	d.dropListeners(want)
	if same {
		g := d.gen
		// Store first, then publish the latest state: a publish racing
		// with the switch lands in h either way.
		g.handler.Store(h)
		h.Publish(snapshotOf(g.rot.State()))
		d.cfg = c
		d.served.p.Store(h)
		d.log.Info().Str("source", c.Source).Bool("source_changed", false).
			Strs("listen", c.Listen).Msg("configuration reloaded")
		return nil, nil
	}
	d.pending = ng
	ng.start(context.WithoutCancel(ctx))
	running := d.gen
	d.wg.Go(func() { d.supervise(ng, running) })
	d.log.Info().Str("source", c.Source).Msg("new source starting; the running one serves until it obtains credentials")
	return ng, nil
}

// sameSource reports whether a and b describe the same credential source,
// so that the rotator and the credentials it holds can be kept.
func sameSource(a, b Config) bool {
	strip := func(c Config) Config {
		c.Listen, c.TokenMode, c.AllowClient, c.RoleName, c.Region = nil, "", nil, "", ""
		c.LogFormat, c.LogLevel, c.AdminSocket = "", "", ""
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

// startServer serves ln; d.mu must be held.
func (d *daemon) startServer(addr string, ln net.Listener, errc chan<- error) {
	srv := imds.NewServer(&d.served, d.cfg.MaxConnections, d.log.With().Str("component", "http").Logger())
	d.servers[addr] = srv
	d.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	})
	d.log.Info().Str("addr", ln.Addr().String()).Str("token_mode", d.cfg.TokenMode).Msg("listening")
}
