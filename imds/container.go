package imds

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// The container credentials endpoint (SPEC.md §9): what the SDKs' container
// provider reads when AWS_CONTAINER_CREDENTIALS_FULL_URI points at it, with
// the token of AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) in the
// Authorization header. Each role exposed to containers has its own path
// (ContainerPath) and its own bearer token; IMDS session tokens play no part
// here. Like the IMDS handler it answers from pre-rendered bodies swapped
// in with one atomic store: a request never waits on a credential source.

// ContainerPathPrefix is where the roles' paths start: /roles/NAME.
const ContainerPathPrefix = "/roles/"

// ContainerPath is the path of role on the container endpoint.
func ContainerPath(role string) string { return ContainerPathPrefix + role }

// ContainerTokenBytes is the entropy of a container token: 256 bits.
const ContainerTokenBytes = 32

// NewContainerToken returns a random token for a role: 256 bits, URL-safe
// base64 without padding, so it holds no character that an HTTP header or
// the SDKs refuse (no CR or LF: SPEC.md R9.4).
func NewContainerToken() string {
	b := make([]byte, ContainerTokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadContainerToken is returned for a token that the SDKs would refuse
// to send or that is too short to be secret.
var ErrBadContainerToken = errors.New("container token must be 43..1024 printable ASCII characters without spaces, CR or LF")

// ValidContainerToken checks a token read from a file or configured: the
// SDKs refuse CR and LF anywhere (a trailing newline included), and a short
// token is guessable.
func ValidContainerToken(tok string) error {
	if len(tok) < 43 || len(tok) > 1024 { // 43 = 256 bits in base64
		return ErrBadContainerToken
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return ErrBadContainerToken
		}
	}
	return nil
}

// ContainerTokenID names a token in logs and the audit trail without
// revealing it: the first 12 hex digits of its SHA-256.
func ContainerTokenID(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:6])
}

// ContainerConfig configures a ContainerHandler.
type ContainerConfig struct {
	// AllowedClients are the networks, besides this host, whose clients
	// may connect: the container networks (e.g. 10.88.0.0/16 for podman,
	// 172.17.0.0/16 for Docker's default bridge).
	AllowedClients []netip.Prefix
	// Stats counts answers by status; optional, shared across rebuilds.
	Stats *RequestStats
	// Now is the clock; default time.Now.
	Now func() time.Time
	// LocalAddrs lists this host's addresses; default the interfaces'.
	LocalAddrs func() ([]netip.Addr, error)
	// Observer records every answer and refusal (access.go); optional.
	// A container's identity is its role's token: events carry its ID.
	Observer Observer
}

// ContainerHandler serves the container credentials endpoint for the roles
// given tokens with SetToken and credentials with Publish. It is safe for
// concurrent use.
type ContainerHandler struct {
	cfg   ContainerConfig
	log   zerolog.Logger
	deny  zerolog.Logger
	local localAddrs

	mu      sync.Mutex // serialises writers; readers only Load
	state   atomic.Pointer[map[string]*containerRole]
	allowed atomic.Pointer[[]netip.Prefix] // cfg.AllowedClients, then SetAllowedClients
}

// SetAllowedClients replaces the networks, besides this host, whose
// clients may connect (a reload's allow_clients).
func (h *ContainerHandler) SetAllowedClients(p []netip.Prefix) {
	p = append([]netip.Prefix(nil), p...)
	h.allowed.Store(&p)
}

// containerRole is one role's published state: immutable once stored.
type containerRole struct {
	token   []byte // nil: not exposed to containers (404)
	tokenID string
	snap    Snapshot
	creds   body      // zero when no credentials are held
	until   time.Time // serve creds before this instant
	errDoc  body      // served (503) when creds are absent or stale
}

// containerDoc is the success answer (SPEC.md R9.6).
type containerDoc struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	Token           string
	Expiration      string
	RoleArn         string `json:",omitempty"`
	AccountID       string `json:"AccountId,omitempty"`
}

// containerError is the error answer (SPEC.md R9.7).
type containerError struct {
	Code    string
	Message string
}

// Error bodies that depend on nothing published.
var (
	errMissingToken = mustJSON(containerError{"MissingAuthorizationToken", "Set AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (or AWS_CONTAINER_AUTHORIZATION_TOKEN) to the role's token; imdsd container-env NAME prints both."})
	errWrongToken   = mustJSON(containerError{"AccessDenied", "The authorization token is not the token of this role."})
	errNoRole       = mustJSON(containerError{"NotFound", "No role of that name is served to containers."})
	errMethod       = mustJSON(containerError{"MethodNotAllowed", "Only GET is served."})
	errClient       = mustJSON(containerError{"AccessDenied", "Clients of this network are not served; allow it with allow_client."})
	valJSON         = []string{"application/json"}
	valAllowGetOnly = []string{"GET, HEAD"}
)

func mustJSON(v any) body {
	b, err := json.Marshal(v)
	if err != nil {
		panic("imds: render " + err.Error())
	}
	return newBody(b)
}

// NewContainerHandler returns a handler that serves no role until SetToken.
func NewContainerHandler(cfg ContainerConfig, log zerolog.Logger) *ContainerHandler {
	h := &ContainerHandler{
		cfg:   cfg,
		log:   log,
		deny:  log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		local: localAddrs{list: cfg.LocalAddrs, now: cfg.Now},
	}
	h.state.Store(&map[string]*containerRole{})
	h.SetAllowedClients(cfg.AllowedClients)
	return h
}

// update replaces role's state by fn's answer (nil deletes it), copying the
// map so that readers never see it change.
func (h *ContainerHandler) update(role string, fn func(old *containerRole) *containerRole) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.state.Load()
	next := make(map[string]*containerRole, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if r := fn(old[role]); r != nil {
		next[role] = r
	} else {
		delete(next, role)
	}
	h.state.Store(&next)
}

// SetToken exposes role to containers that present tok (or replaces its
// token: the old one is refused from the next request on). tok must pass
// ValidContainerToken.
func (h *ContainerHandler) SetToken(role, tok string) error {
	if err := ValidContainerToken(tok); err != nil {
		return fmt.Errorf("role %s: %w", role, err)
	}
	h.update(role, func(old *containerRole) *containerRole {
		var snap Snapshot
		if old != nil {
			snap = old.snap
		}
		r := h.render(role, snap)
		r.token, r.tokenID = []byte(tok), ContainerTokenID(tok)
		return r
	})
	return nil
}

// Remove stops serving role to containers.
func (h *ContainerHandler) Remove(role string) {
	h.update(role, func(*containerRole) *containerRole { return nil })
}

// Publish renders role's answers for s. A role without a token is kept
// (with its credentials) but not served until SetToken.
func (h *ContainerHandler) Publish(role string, s Snapshot) {
	h.update(role, func(old *containerRole) *containerRole {
		r := h.render(role, s)
		if old != nil {
			r.token, r.tokenID = old.token, old.tokenID
		}
		return r
	})
}

// TokenID is the ID of role's current token, "" when it has none.
func (h *ContainerHandler) TokenID(role string) string {
	if r := (*h.state.Load())[role]; r != nil {
		return r.tokenID
	}
	return ""
}

func (h *ContainerHandler) render(role string, s Snapshot) *containerRole {
	r := &containerRole{snap: s}
	account := s.AccountID
	if account == "" {
		account = arnAccount(s.RoleARN)
	}
	if s.Credentials.HasKeys() && s.Credentials.CanExpire {
		b, err := json.Marshal(containerDoc{
			AccessKeyID:     s.Credentials.AccessKeyID,
			SecretAccessKey: s.Credentials.SecretAccessKey,
			Token:           s.Credentials.SessionToken,
			Expiration:      imdsTime(s.Credentials.Expires),
			RoleArn:         s.RoleARN,
			AccountID:       account,
		})
		if err != nil {
			panic("imds: render " + err.Error())
		}
		r.creds = newBody(b)
		r.until = serveUntil(s)
	}
	e := containerError{Code: s.ErrCode, Message: s.ErrMessage}
	switch {
	case e.Code != "":
	case r.creds.b != nil:
		e = containerError{"CredentialsExpired", "The credentials of role " + role + " expired and have not been renewed yet."}
	default:
		e = containerError{"CredentialsNotReady", "No credentials have been obtained for role " + role + " yet."}
	}
	r.errDoc = mustJSON(e)
	return r
}

// ServeHTTP answers GET /roles/NAME with the role's credentials when the
// Authorization header holds its token, else a JSON error (SPEC.md R9.7).
func (h *ContainerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !clientAllowed(r, *h.allowed.Load(), &h.local) {
		h.deny.Warn().Str("remote", r.RemoteAddr).Msg("refused container client from another network; allow it with allow_client")
		h.observe(r, Event{Reason: "client_not_allowed", Status: http.StatusForbidden})
		h.fail(w, r, http.StatusForbidden, errClient)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = valAllowGetOnly
		h.fail(w, r, http.StatusMethodNotAllowed, errMethod)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, ContainerPathPrefix)
	role := (*h.state.Load())[name]
	if !ok || role == nil || role.token == nil {
		h.observe(r, Event{Role: clip(name), Reason: "unknown_role", Status: http.StatusNotFound})
		h.fail(w, r, http.StatusNotFound, errNoRole)
		return
	}
	// SPEC.md R9.4: the token verbatim, no scheme; compared in constant
	// time. A second Authorization header is refused like a wrong one.
	switch tok := r.Header["Authorization"]; {
	case len(tok) == 0 || tok[0] == "":
		h.observe(r, Event{Role: name, Reason: "missing_token", Status: http.StatusUnauthorized})
		h.fail(w, r, http.StatusUnauthorized, errMissingToken)
		return
	case len(tok) > 1 || subtle.ConstantTimeCompare([]byte(tok[0]), role.token) != 1:
		h.deny.Warn().Str("remote", r.RemoteAddr).Str("role", name).Msg("refused container request with a wrong token")
		if h.cfg.Observer != nil {
			h.observe(r, Event{Role: name, Reason: "wrong_token", Status: http.StatusForbidden, TokenID: ContainerTokenID(tok[0])})
		}
		h.fail(w, r, http.StatusForbidden, errWrongToken)
		return
	}
	if role.creds.b == nil || !now(h.cfg.Now).Before(role.until) {
		h.observe(r, Event{Role: name, Allowed: true, Reason: "no_valid_credentials", Status: http.StatusServiceUnavailable, TokenID: role.tokenID})
		h.fail(w, r, http.StatusServiceUnavailable, role.errDoc)
		return
	}
	h.observe(r, Event{Role: name, Allowed: true, Reason: "served", Status: http.StatusOK, TokenID: role.tokenID, KeyID: role.snap.Credentials.AccessKeyID})
	h.cfg.Stats.observeRoute(routeContainer, http.StatusOK)
	hdr := w.Header()
	hdr["Content-Type"] = valJSON
	hdr["Content-Length"] = role.creds.len
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(role.creds.b)
	}
}

// observe hands e to the Observer, if any.
func (h *ContainerHandler) observe(r *http.Request, e Event) {
	if o := h.cfg.Observer; o != nil {
		e.Listener = "container"
		o.Observe(r, e)
	}
}

func (h *ContainerHandler) fail(w http.ResponseWriter, r *http.Request, status int, b body) {
	h.cfg.Stats.observeRoute(routeContainer, status)
	hdr := w.Header()
	hdr["Content-Type"] = valJSON
	hdr["Content-Length"] = b.len
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.b)
	}
}
