package ststest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// apiVersion is the only STS API version the Query protocol accepts.
const apiVersion = "2011-06-15"

// maxBody bounds request bodies; the largest legal request (a 100 000
// character SAML assertion plus policy and tags) is far smaller.
const maxBody = 1 << 20

// Server is a fake STS endpoint. Create it with [NewServer] (listening) or
// [New] (a plain [http.Handler]). All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the listening server, for example
	// "http://127.0.0.1:53124", suitable for sts.Options.BaseEndpoint.
	// It is empty for a Server made by [New].
	URL string

	http        *httptest.Server
	now         func() time.Time
	maxLifetime time.Duration // WithMaxLifetime; 0: no cap
	closing     chan struct{}
	once        sync.Once

	mu       sync.Mutex
	keys     map[string]*principal // access key ID → owner
	roles    map[string]Role       // role ARN → rules
	mfa      map[string]func(code string) bool
	faults   []*faultState
	requests []Request
	issued   []Credentials
	stats    map[string]Stats
}

// Option configures a Server; see the With* functions.
type Option func(*Server)

// WithClock makes the server read the time from now instead of time.Now. The
// clock decides Expiration of issued credentials, whether an issued key has
// expired, the expiry of web identity and SAML tokens, and fault windows.
// now must be safe for concurrent use.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithMaxLifetime makes every set of credentials the server issues expire
// at most d after it was issued, whatever DurationSeconds asked for and
// without any error, the way real STS silently shortens some sessions: a
// SAML assertion's SessionNotOnOrAfter, root users' one-hour cap, or a
// profile's credential process or SSO session handing out short ones. It
// tests what a client does when granted less than it asked for.
func WithMaxLifetime(d time.Duration) Option {
	return func(s *Server) { s.maxLifetime = d }
}

// WithBaseCredentials registers a long-term IAM user access key. Requests
// signed with it act as userARN (for example
// "arn:aws:iam::123456789012:user/alice"), which GetCallerIdentity returns
// and which may call GetSessionToken and GetFederationToken.
func WithBaseCredentials(accessKeyID, secretAccessKey, userARN string) Option {
	return func(s *Server) {
		s.keys[accessKeyID] = &principal{
			kind:    kindUser,
			secret:  secretAccessKey,
			arn:     userARN,
			userID:  "AIDA" + stableID(userARN, 17),
			account: arnAccount(userARN),
		}
	}
}

// WithRole sets the rules of one role, matched by exact ARN. Roles not
// configured can be assumed by anyone with any well-formed ARN and a
// MaxSessionDuration of one hour.
func WithRole(r Role) Option {
	return func(s *Server) { s.roles[r.ARN] = r }
}

// WithMFADevice registers an MFA device by serial number (a hardware serial
// or an ARN such as "arn:aws:iam::123456789012:mfa/alice"). A SerialNumber
// and TokenCode sent by a client are accepted only if serial is registered
// and valid(code) is true. valid must be safe for concurrent use.
func WithMFADevice(serial string, valid func(code string) bool) Option {
	return func(s *Server) { s.mfa[serial] = valid }
}

// Role holds the per-role rules the server enforces, as IAM would.
type Role struct {
	// ARN is the role ARN, e.g. "arn:aws:iam::123456789012:role/app".
	ARN string
	// MaxSessionDuration caps DurationSeconds; zero means one hour, the IAM
	// default.
	MaxSessionDuration time.Duration
	// ExternalID, if not empty, must equal the ExternalId of AssumeRole,
	// else the call is denied (403 AccessDenied).
	ExternalID string
	// RequireMFA denies AssumeRole unless the call carries a valid
	// SerialNumber and TokenCode or the caller's session was created by
	// GetSessionToken with MFA.
	RequireMFA bool
	// WebIdentityAudience, if not empty, must equal the aud claim of the
	// token passed to AssumeRoleWithWebIdentity (else InvalidIdentityToken).
	WebIdentityAudience string
}

// Request is one request as the server decoded it.
type Request struct {
	// Action is the Action parameter ("" if missing).
	Action string
	// Params holds every decoded form parameter, Action and Version
	// included.
	Params url.Values
	// AccessKeyID is the key named in the Authorization header, or "" if
	// the request was not signed. It is recorded even if authentication
	// failed.
	AccessKeyID string
	// Time is the server clock when the request arrived (before any
	// Delay fault).
	Time time.Time
	// Status is the HTTP status answered, or 0 if no response was sent
	// (dropped connection or client gone).
	Status int
}

// Credentials is one set of temporary credentials the server issued.
type Credentials struct {
	// Action is the action that issued them.
	Action          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Expiration is whole seconds in UTC, exactly as sent on the wire.
	Expiration time.Time
	// ARN is the identity the credentials act as: the assumed-role,
	// federated-user or (GetSessionToken) IAM user ARN.
	ARN string
}

// Stats counts requests of one action.
type Stats struct {
	// Calls is the number of requests received, counted on arrival.
	Calls int
	// Failures is the number of those that finished with a status ≥ 400 or
	// without any response.
	Failures int
}

type principalKind int

const (
	kindUser      principalKind = iota // long-term IAM user key
	kindRole                           // issued by an AssumeRole* action
	kindSession                        // issued by GetSessionToken
	kindFederated                      // issued by GetFederationToken
)

// principal is the owner of an access key.
type principal struct {
	kind    principalKind
	secret  string
	token   string    // session token; "" for long-term keys
	expires time.Time // zero for long-term keys
	arn     string
	userID  string
	account string
	mfa     bool // session authenticated with MFA
}

// New returns a Server that is not listening, for mounting as an
// [http.Handler] (for example behind an in-process RoundTripper). Its URL is
// empty and Close only stops pending delays. Dropped-connection faults need
// a ResponseWriter that supports hijacking; otherwise they answer 502 with
// an empty body.
func New(opts ...Option) *Server {
	s := &Server{
		now:     time.Now,
		closing: make(chan struct{}),
		keys:    make(map[string]*principal),
		roles:   make(map[string]Role),
		mfa:     make(map[string]func(string) bool),
		stats:   make(map[string]Stats),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// NewServer starts a Server on a random port of 127.0.0.1, like
// httptest.NewServer. The caller must call Close when done.
func NewServer(opts ...Option) *Server {
	s := New(opts...)
	s.http = httptest.NewServer(s)
	s.URL = s.http.URL
	return s
}

// Close makes pending delays end at once and, for a listening Server, shuts
// the listener down and blocks until all requests have finished. It is safe
// to call more than once.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	if s.http != nil {
		s.http.Close()
	}
}

// Requests returns a copy of every request finished so far, in order of
// completion. A request still in progress (for example in a Delay) is not
// included yet.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Params = cloneValues(r.Params)
		out[i] = r
	}
	return out
}

// Issued returns a copy of every set of credentials handed out so far, in
// order of issue.
func (s *Server) Issued() []Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Credentials(nil), s.issued...)
}

// Stats returns the counters of action, or the totals over all requests if
// action is "".
func (s *Server) Stats(action string) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats[action]
}

// ServeHTTP answers one STS Query API request: POST with a form body (as
// the SDKs send), or any other method with the parameters in the query
// string. It applies injected faults, authenticates, validates, runs the
// action and records the request before the client can see the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{Time: s.now(), AccessKeyID: signingKey(r.Header.Get("Authorization"))}
	reqID := newRequestID()

	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	raw := string(body)
	if r.Method != http.MethodPost {
		raw = r.URL.RawQuery
	}
	params, parseErr := url.ParseQuery(raw)
	if readErr == nil && parseErr == nil {
		rec.Action, rec.Params = params.Get("Action"), params
	}
	s.arrive(rec.Action)

	// Every path records the request before the client can see the
	// outcome, so a test that got an answer also sees it in Requests.
	var rep reply
	switch {
	case readErr != nil:
		rep = errorReply(reqID, errf(http.StatusBadRequest, "MalformedInput", "could not read request body"))
	case parseErr != nil:
		rep = errorReply(reqID, errf(http.StatusBadRequest, "MalformedQueryString", "the request body is not valid form data"))
	default:
		f, faulty := s.takeFault(rec.Action, rec.Time)
		if faulty {
			rep = s.applyFault(r.Context(), reqID, f)
		}
		if !faulty || rep.kind == replyNormal {
			// Read the clock again: after a Delay, the request is
			// processed (and credentials issued) later than it arrived.
			rep = s.serve(r, body, params, s.now(), reqID)
		}
	}

	switch rep.kind {
	case replyNone:
		s.record(rec)
	case replyDrop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			// No way to drop (HTTP/2, a recorder): the nearest thing a
			// client can see is a bare gateway error.
			rec.Status = http.StatusBadGateway
			s.record(rec)
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		s.record(rec)
		_ = conn.Close()
	default:
		rec.Status = rep.status
		s.record(rec)
		rep.send(w)
	}
}

// serve answers a request that no fault intercepted.
func (s *Server) serve(r *http.Request, body []byte, params url.Values, now time.Time, reqID string) reply {
	out, apiErr := s.dispatch(r, body, params, now)
	if apiErr != nil {
		return errorReply(reqID, apiErr)
	}
	return xmlReply(http.StatusOK, reqID, envelope{
		XMLName: stsName(params.Get("Action") + "Response"),
		Result:  out,
		Meta:    responseMetadata{RequestID: reqID},
	})
}

// arrive counts a request when it arrives.
func (s *Server) arrive(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bump("", func(st *Stats) { st.Calls++ })
	if action != "" {
		s.bump(action, func(st *Stats) { st.Calls++ })
	}
}

// record stores a finished request and counts it as a failure if it was
// not answered with success.
func (s *Server) record(rec Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rec)
	if rec.Status != 0 && rec.Status < 400 {
		return
	}
	s.bump("", func(st *Stats) { st.Failures++ })
	if rec.Action != "" {
		s.bump(rec.Action, func(st *Stats) { st.Failures++ })
	}
}

// bump updates the counters of key; s.mu must be held.
func (s *Server) bump(key string, f func(*Stats)) {
	st := s.stats[key]
	f(&st)
	s.stats[key] = st
}

// dispatch checks version and authentication and runs the action.
func (s *Server) dispatch(r *http.Request, body []byte, p url.Values, now time.Time) (any, *apiError) {
	action, version := p.Get("Action"), p.Get("Version")
	if action == "" {
		return nil, errf(http.StatusBadRequest, "MissingAction", "Missing Action")
	}
	op, ok := operations[action]
	if version != apiVersion {
		if version == "" {
			version = "NO_VERSION_SPECIFIED"
		}
		ok = false
	}
	if !ok {
		return nil, errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, version)
	}
	var caller *principal
	if op.signed {
		var err *apiError
		if caller, err = s.authenticate(r, body, now); err != nil {
			return nil, err
		}
	}
	return op.run(s, call{params: p, caller: caller, now: now})
}

// issue creates a new temporary key owned by p (whose secret, token and
// expiry it fills in) with a session token of at least minToken bytes, and
// records it.
func (s *Server) issue(action string, p *principal, now time.Time, dur time.Duration, minToken int) Credentials {
	if s.maxLifetime > 0 {
		dur = min(dur, s.maxLifetime)
	}
	akid := "ASIA" + randomBase32(16)
	p.secret = randomBase64(30) // 40 characters
	p.token = sessionToken(minToken)
	p.expires = now.Add(dur).UTC().Truncate(time.Second)
	c := Credentials{
		Action:          action,
		AccessKeyID:     akid,
		SecretAccessKey: p.secret,
		SessionToken:    p.token,
		Expiration:      p.expires,
		ARN:             p.arn,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[akid] = p
	s.issued = append(s.issued, c)
	return c
}

func (s *Server) lookupKey(akid string) (*principal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.keys[akid]
	return p, ok
}

func (s *Server) lookupRole(arn string) (Role, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[arn]
	return r, ok
}

func (s *Server) lookupMFA(serial string) (func(string) bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.mfa[serial]
	return f, ok
}

// apiError is an STS error response.
type apiError struct {
	status  int
	code    string
	message string
}

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// randomBase32 returns n random characters of A-Z2-7, the alphabet of real
// access key IDs.
func randomBase32(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand contract since Go 1.24)
	return b32.EncodeToString(b)[:n]
}

// randomBase64 returns the standard base64 encoding of n random bytes.
func randomBase64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// sessionToken returns a token that looks like a real one: base64 of a
// binary blob starting with the "origin" marker real tokens carry
// ("IQoJb3JpZ2luX2Vj…"), at least minLen characters long.
func sessionToken(minLen int) string {
	n := max(600, (minLen*3+3)/4-16)
	b := make([]byte, 16+n)
	copy(b, "!\n\torigin_ec\x10\x1a\x1a\x02")
	_, _ = rand.Read(b[16:])
	return base64.StdEncoding.EncodeToString(b)
}

// stableID derives n characters of A-Z2-7 from seed, for IDs such as
// AROA…/AIDA… that must be the same for the same role or user.
func stableID(seed string, n int) string {
	sum := sha256.Sum256([]byte(seed))
	return b32.EncodeToString(sum[:])[:n]
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// arnAccount returns the account field of an ARN, or "".
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}
