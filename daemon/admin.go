package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/rotator"
	"github.com/rs/zerolog"
)

// The admin API: status, health, metrics, refresh, reload and MFA codes,
// for the `imdsd status|creds|mfa|reload` commands and monitoring. It is
// never served on an IMDS listener: it listens on a unix socket only the
// service user can open (mode 0600 in a 0700 directory, or 0660 for the
// group a directory such as systemd's RuntimeDirectory admits), checked by
// daemon and clients alike (adminsock_unix.go), or on Windows on loopback
// with a random token (adminsock_windows.go). Its handlers never wait on a
// lock a reload holds, so status, healthz and metrics answer while a new
// source waits on STS.

// adminFlagHint is the way out every refusal of an admin socket names.
const adminFlagHint = "give this imdsd its own socket with --admin-socket PATH (admin_socket in the config file)"

// statusDoc is GET /status: what an operator needs, never a secret.
type statusDoc struct {
	Version     string     `json:"version"`
	Source      string     `json:"source"`
	RoleName    string     `json:"role_name"`
	RoleARN     string     `json:"role_arn,omitempty"`
	Region      string     `json:"region"`
	Listen      []string   `json:"listen"`
	TokenMode   string     `json:"token_mode"`
	Healthy     bool       `json:"healthy"`
	Credentials *credsInfo `json:"credentials,omitempty"`
	NextRefresh time.Time  `json:"next_refresh"`
	LastError   *errorInfo `json:"last_error,omitempty"`
	// Pending is the source of a reload that has not taken over yet;
	// everything above is the running configuration, which serves
	// until it does.
	Pending   *pendingInfo `json:"pending,omitempty"`
	StartedAt time.Time    `json:"started_at"`
	// ShortLifetime is the lifetime STS granted the default role when
	// under 35 minutes: then it is refreshed at half-life.
	ShortLifetime string `json:"short_lifetime,omitempty"`
	// DefaultRole and Roles describe every role (the fields above are the
	// default role's); ContainerListen the container endpoint.
	DefaultRole     string       `json:"default_role"`
	Roles           []roleStatus `json:"roles"`
	ContainerListen []string     `json:"container_listen,omitempty"`
}

// roleStatus is one role in GET /status.
type roleStatus struct {
	Name          string       `json:"name"`
	Source        string       `json:"source"`
	RoleARN       string       `json:"role_arn,omitempty"`
	Healthy       bool         `json:"healthy"`
	Credentials   *credsInfo   `json:"credentials,omitempty"`
	NextRefresh   time.Time    `json:"next_refresh"`
	LastError     *errorInfo   `json:"last_error,omitempty"`
	Pending       *pendingInfo `json:"pending,omitempty"`
	ShortLifetime string       `json:"short_lifetime,omitempty"`
	// ContainerTokenID names the role's container token (never the
	// token) when the role is served to containers.
	ContainerTokenID string `json:"container_token_id,omitempty"`
}

// pendingInfo is a reloaded source that has not obtained credentials yet.
type pendingInfo struct {
	Source       string     `json:"source"`
	RoleARN      string     `json:"role_arn,omitempty"`
	Since        time.Time  `json:"since"`                   // when the reload started it
	FailingSince *time.Time `json:"failing_since,omitempty"` // its first failed attempt
	NextAttempt  time.Time  `json:"next_attempt,omitzero"`
	LastError    *errorInfo `json:"last_error,omitempty"`
}

type credsInfo struct {
	KeyID      string    `json:"key_id"` // last four characters only
	ObtainedAt time.Time `json:"obtained_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ExpiresIn  string    `json:"expires_in"`
}

type errorInfo struct {
	Code     string    `json:"code"`
	Class    string    `json:"class"`
	Message  string    `json:"message"`
	At       time.Time `json:"at"`
	Failures int       `json:"failures"`
}

// processCreds is GET /credentials, the credential_process document
// (SPEC.md R12.1): Version is the integer 1.
type processCreds struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken,omitempty"`
	Expiration      string `json:"Expiration,omitempty"`
	AccountID       string `json:"AccountId,omitempty"`
}

func (d *daemon) status(now time.Time) statusDoc {
	d.mu.Lock()
	c := d.cfg
	type pair struct{ g, p *generation }
	gens := map[string]pair{}
	for name, s := range d.roles {
		gens[name] = pair{s.gen, s.pending}
	}
	listen, clisten := boundAddrs(c.Listen, d.servers), boundAddrs(c.ContainerListen, d.cservers)
	d.mu.Unlock()
	doc := statusDoc{
		Version: version, Region: c.Region, Listen: listen, TokenMode: c.TokenMode, StartedAt: d.started,
		DefaultRole: c.defaultRoleName(), ContainerListen: clisten, Healthy: true,
	}
	for _, name := range c.roleNames() {
		pr, ok := gens[name]
		if !ok {
			continue
		}
		rs := roleStatusOf(pr.g, pr.p, now)
		if pr.g.container.Load() {
			rs.ContainerTokenID = d.containers.TokenID(name)
		}
		doc.Healthy = doc.Healthy && rs.Healthy
		doc.Roles = append(doc.Roles, rs)
		if name == doc.DefaultRole {
			doc.Source, doc.RoleName, doc.RoleARN = rs.Source, rs.Name, rs.RoleARN
			doc.Credentials, doc.NextRefresh, doc.LastError, doc.Pending = rs.Credentials, rs.NextRefresh, rs.LastError, rs.Pending
			doc.ShortLifetime = rs.ShortLifetime
		}
	}
	return doc
}

// roleStatusOf describes a role from its running generation g and its
// pending one p (nil when none).
func roleStatusOf(g, p *generation, now time.Time) roleStatus {
	st := g.rot.State()
	rs := roleStatus{Name: g.name(), Source: g.cfg.Source, RoleARN: st.Credentials.RoleARN, NextRefresh: st.Next}
	if cr := st.Credentials; cr.HasKeys() {
		rs.Credentials = &credsInfo{
			KeyID:      rotator.KeyIDForDisplay(cr.AccessKeyID),
			ObtainedAt: st.Obtained, ExpiresAt: cr.Expires,
			ExpiresIn: cr.Expires.Sub(now).Round(time.Second).String(),
		}
	}
	if st.ShortLifetime > 0 {
		rs.ShortLifetime = st.ShortLifetime.String()
	}
	_, err := g.rot.Current(context.Background())
	rs.Healthy = err == nil
	rs.LastError = errorInfoOf(st)
	if p != nil {
		ps := p.rot.State()
		rs.Pending = &pendingInfo{Source: p.cfg.Source, RoleARN: p.cfg.RoleARN, Since: p.created,
			FailingSince: p.failingSince.Load(), NextAttempt: ps.Next, LastError: errorInfoOf(ps)}
	}
	return rs
}

// roleOf resolves the ?role= of an admin request: the named role, or the
// default one; ok false (and the answer written) for an unknown name.
func (d *daemon) roleOf(w http.ResponseWriter, r *http.Request) (running, pending *generation, ok bool) {
	name := r.URL.Query().Get("role")
	if name == "" {
		d.mu.Lock()
		name = d.cfg.defaultRoleName()
		d.mu.Unlock()
	}
	running, pending = d.role(name)
	if running == nil {
		d.mu.Lock()
		names := d.cfg.roleNames()
		d.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no role %q; the roles are %s", name, strings.Join(names, ", "))})
		return nil, nil, false
	}
	return running, pending, true
}

func errorInfoOf(st rotator.State) *errorInfo {
	if st.Err == nil {
		return nil
	}
	return &errorInfo{
		Code: rotator.ErrorCode(st.Err), Class: rotator.Classify(st.Err).String(),
		Message: st.Err.Error(), At: st.ErrAt, Failures: st.Failures,
	}
}

// boundAddrs is addrs with each address its server is bound to, where
// there is one (a configured port 0 names the kernel's choice).
func boundAddrs(addrs []string, servers map[string]*http.Server) []string {
	if addrs == nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a
		if s := servers[a]; s != nil && s.Addr != "" {
			out[i] = s.Addr
		}
	}
	return out
}

// adminHandler serves the admin API for d.
func (d *daemon) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.status(time.Now()))
	})
	// GET /healthz is ok when every role serves valid credentials.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		var bad []string
		for _, rs := range d.status(time.Now()).Roles {
			if !rs.Healthy {
				msg := "no valid credentials"
				if rs.LastError != nil {
					msg = rs.LastError.Code
				}
				bad = append(bad, rs.Name+": "+msg)
			}
		}
		if len(bad) > 0 {
			http.Error(w, "unhealthy: "+strings.Join(bad, "; "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		var roles []roleState
		for _, name := range d.cfg.roleNames() {
			if s := d.roles[name]; s != nil {
				roles = append(roles, roleState{name: name, st: s.gen.rot.State(), pending: s.pending != nil})
			}
		}
		d.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		d.metrics.write(w, roles, time.Now())
	})
	// GET /credentials?role=NAME: the role's credentials (default: the
	// default role) as credential_process JSON.
	mux.HandleFunc("GET /credentials", func(w http.ResponseWriter, r *http.Request) {
		g, _, ok := d.roleOf(w, r)
		if !ok {
			return
		}
		c, err := g.rot.Current(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": strings.ReplaceAll(err.Error(), "\n", "; ")})
			return
		}
		writeJSON(w, http.StatusOK, processCreds{
			Version: 1, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
			Expiration: c.Expires.UTC().Format("2006-01-02T15:04:05Z"), AccountID: c.AccountID,
		})
	})
	// POST /container-token?role=NAME replaces the role's container
	// token; the old one is refused from then on.
	mux.HandleFunc("POST /container-token", func(w http.ResponseWriter, r *http.Request) {
		role := r.URL.Query().Get("role")
		id, err := d.rotateContainerToken(role)
		if err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "token of role " + role + " rotated; new token id " + id})
	})
	// POST /refresh retries now: every role's running source and pending
	// one.
	mux.HandleFunc("POST /refresh", func(w http.ResponseWriter, r *http.Request) {
		d.refreshAll()
		d.log.Info().Msg("refresh requested through the admin API")
		writeJSON(w, http.StatusAccepted, map[string]string{"result": "refresh started"})
	})
	// POST /reload is SIGHUP with an answer (reloadAnswer): applied,
	// pending (a changed source has not obtained credentials within
	// ?wait=, default 30s; the running one serves), refused, or replaced.
	// It holds no lock while it waits. The unit's ExecReload calls it
	// (imdsd reload), so systemctl reload reports the outcome.
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		wait := defaultReloadWait
		if s := r.URL.Query().Get("wait"); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v < 0 || v > maxReloadWait {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("wait: must be a duration of 0..%s (got %q)", maxReloadWait, s)})
				return
			}
			wait = v
		}
		a := d.requestReload(r.Context(), wait)
		writeJSON(w, a.httpStatus(), a)
	})
	// /debug/pprof/ is Go's profiler (net/http/pprof), when debug_pprof
	// is on in the running configuration (a reload turns it on or off).
	// The admin socket is the user's or root's only, like the credentials.
	mux.Handle("GET /debug/pprof/", d.pprofOnly(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/cmdline", d.pprofOnly(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("GET /debug/pprof/profile", d.pprofOnly(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/symbol", d.pprofOnly(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("GET /debug/pprof/trace", d.pprofOnly(http.HandlerFunc(pprof.Trace)))
	mux.HandleFunc("POST /mfa", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64))
		takesCodes := func(c Config) bool { return c.MFASerial != "" && c.MFACommand == "" }
		g, p, ok := d.roleOf(w, r)
		if !ok {
			return
		}
		if d.inbox == nil || !takesCodes(g.cfg) && (p == nil || !takesCodes(p.cfg)) {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "role " + g.name() + " takes no MFA codes from imdsd mfa (no mfa_serial, or mfa_command is set)"})
			return
		}
		if err := d.inbox.Deliver(strings.TrimSpace(string(body))); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		// The code is for this role: only its sources ask for it now.
		g.rot.Refresh()
		if p != nil {
			p.rot.Refresh()
		}
		d.log.Info().Msg("MFA code delivered; refreshing")
		writeJSON(w, http.StatusAccepted, map[string]string{"result": "code accepted; refreshing"})
	})
	return mux
}

// refreshAll asks every role's running source, and pending one, to
// refresh now.
func (d *daemon) refreshAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.roles {
		s.gen.rot.Refresh()
		if s.pending != nil {
			s.pending.rot.Refresh()
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// pprofOnly serves next while debug_pprof is on, else 404 with the fix.
func (d *daemon) pprofOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		on := d.cfg.DebugPprof
		d.mu.Unlock()
		if !on {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": errPprofOff})
			return
		}
		next.ServeHTTP(w, r)
	})
}

const errPprofOff = "profiling is off: set debug_pprof: true in the config file and run imdsd reload (or start imdsd run with --debug-pprof)"

// serveAdmin listens on the admin endpoint until stop, which also removes
// the socket. It fails when the endpoint is another imdsd's or is not safe
// (listenAdmin).
func (d *daemon) serveAdmin(path string, log zerolog.Logger) (stop func(), err error) {
	ln, err := listenAdmin(path)
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket %s: %w", path, err)
	}
	srv := &http.Server{Handler: adminAuth(ln, d.adminHandler()), ReadHeaderTimeout: imds.ReadHeaderTimeout, ReadTimeout: imds.ReadTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("admin API stopped")
		}
	}()
	log.Info().Str("admin", path).Msg("admin API listening")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		_ = ln.Close() // Shutdown closed it unless Serve had not started; removes the socket
	}, nil
}

// adminAuth guards the admin API beyond the socket's permissions: nothing
// on unix, the random token on Windows.
var adminAuth = func(_ net.Listener, next http.Handler) http.Handler { return next }

// adminClient is an HTTP client that reaches the admin API at path, each
// request bounded by timeout. It checks first that path is safe to trust
// (dialAdmin); its errors carry the exit code of their case.
func adminClient(path string, timeout time.Duration) (*http.Client, string, error) {
	dial, base, err := dialAdmin(path)
	if err != nil {
		return nil, "", err
	}
	return &http.Client{Timeout: timeout, Transport: authTransport{&http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dial(ctx)
	}}}}, base, nil
}

// authTransport adds the Windows admin token when there is one.
type authTransport struct{ http.RoundTripper }

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if adminToken != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+adminToken)
	}
	return t.RoundTripper.RoundTrip(r)
}
