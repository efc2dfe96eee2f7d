package imds

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
)

// routes registers every path. Leaves answer with and without a trailing
// slash (botocore asks for placement/availability-zone/ with one, SPEC.md
// R4.3), directories likewise, and nothing ever redirects: SDKs do not
// follow IMDS redirects.
func (h *Handler) routes() *httprouter.Router {
	c := h.cfg
	rt := httprouter.New()
	rt.RedirectTrailingSlash = false
	rt.RedirectFixedPath = false
	rt.HandleMethodNotAllowed = true
	rt.HandleOPTIONS = false
	rt.NotFound = http.HandlerFunc(h.notFound)
	rt.MethodNotAllowed = http.HandlerFunc(h.methodNotAllowed)
	rt.PanicHandler = h.panicked

	const md = "/latest/meta-data/"
	static := map[string]body{
		"/":                                  textBody("latest"),
		"/latest/":                           textBody("dynamic", "meta-data"),
		"/latest/dynamic/":                   textBody("instance-identity/"),
		"/latest/dynamic/instance-identity/": textBody("document"),
		md: textBody("ami-id", "hostname", "iam/", "instance-id", "instance-type",
			"local-hostname", "local-ipv4", "mac", "placement/", "services/"),
		md + "ami-id":                         textBody(c.ImageID),
		md + "hostname":                       textBody(c.Hostname),
		md + "instance-id":                    textBody(c.InstanceID),
		md + "instance-type":                  textBody(c.InstanceType),
		md + "local-hostname":                 textBody(c.Hostname),
		md + "local-ipv4":                     textBody(c.LocalIPv4),
		md + "mac":                            textBody(c.MAC),
		md + "iam/":                           textBody("info", "security-credentials/"),
		md + "placement/":                     textBody("availability-zone", "availability-zone-id", "region"),
		md + "placement/availability-zone":    textBody(c.AvailabilityZone),
		md + "placement/availability-zone-id": textBody(c.AvailabilityZoneID),
		md + "placement/region":               textBody(c.Region),
		md + "services/":                      textBody("domain", "partition"),
		md + "services/domain":                textBody(domain(c.Region)),
		md + "services/partition":             textBody(partition(c.Region)),
	}
	// The listing names the default role; with an Access, the caller's.
	listings := map[string]body{}
	for name := range h.roles {
		listings[name] = textBody(name)
	}
	for _, dir := range []string{md + "iam/security-credentials/", md + "iam/security-credentials-extended/"} {
		h.get(rt, dir, func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
			role := c.RoleName
			if h.cfg.Access != nil {
				var ok bool
				if role, ok = h.cfg.Access.DefaultRole(r); !ok || listings[role].b == nil {
					h.fail(w, r, http.StatusNotFound)
					return
				}
			}
			h.write(w, r, listings[role])
		})
	}
	for path, b := range static {
		h.get(rt, path, func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
			h.write(w, r, b)
		})
	}
	// The role is registered as a static path, not a :role parameter:
	// other names are 404 (SPEC.md R5.3) and a request allocates no
	// parameter list.
	for name, snap := range h.roles {
		h.get(rt, md+"iam/security-credentials/"+name, h.credentials(name, snap, false))
		h.get(rt, md+"iam/security-credentials-extended/"+name, h.credentials(name, snap, true))
	}
	h.get(rt, md+"iam/info", h.info)
	h.get(rt, "/latest/dynamic/instance-identity/document", h.identity)
	rt.PUT(tokenPath, h.putToken)
	return rt
}

// get registers GET and HEAD for path and its twin with or without the
// trailing slash.
func (h *Handler) get(rt *httprouter.Router, path string, handle httprouter.Handle) {
	paths := []string{path}
	if path != "/" {
		if twin, ok := strings.CutSuffix(path, "/"); ok {
			paths = append(paths, twin)
		} else {
			paths = append(paths, path+"/")
		}
	}
	for _, p := range paths {
		rt.GET(p, handle)
		rt.HEAD(p, handle)
	}
}

// credentials serves role, whose state snap holds: the document, or its
// -extended form, or the error document when no valid credentials are
// held. With an Access, a caller who may not have role gets 403; with an
// Observer, every answer and refusal is recorded.
func (h *Handler) credentials(role string, snap *atomic.Pointer[rendered], extended bool) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		if a := h.cfg.Access; a != nil {
			if ok, reason := a.Allow(r, role); !ok {
				h.observe(r, Event{Role: role, Reason: reason, Status: http.StatusForbidden})
				h.fail(w, r, http.StatusForbidden)
				return
			}
		}
		served := snap
		if a := h.cfg.Access; a != nil {
			if v := a.Variant(r, role); v != role && h.roles[v] != nil {
				served = h.roles[v]
			}
		}
		s := served.Load()
		b := s.creds
		if extended {
			b = s.credsExt
		}
		if b.b != nil && h.cfg.Now().Before(s.expires) {
			h.write(w, r, b)
			h.observe(r, Event{Role: role, Allowed: true, Reason: "served", Status: http.StatusOK, KeyID: s.keyID})
			return
		}
		h.write(w, r, s.errDoc)
		h.observe(r, Event{Role: role, Allowed: true, Reason: "no_valid_credentials", Status: http.StatusOK})
	}
}

// observe hands e to the Observer, if any.
func (h *Handler) observe(r *http.Request, e Event) {
	if o := h.cfg.Observer; o != nil {
		e.Listener = "imds"
		o.Observe(r, e)
	}
}

func (h *Handler) info(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s := h.snap.Load()
	h.write(w, r, s.info)
}

func (h *Handler) identity(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	h.write(w, r, h.snap.Load().identity)
}

// putToken issues a session token (SPEC.md §2).
func (h *Handler) putToken(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	// A proxy in the path adds X-Forwarded-For; EC2 refuses such PUTs so
	// tokens do not leak beyond the host (R2.6).
	if _, ok := r.Header["X-Forwarded-For"]; ok {
		h.log.Debug().Str("remote", r.RemoteAddr).Msg("refused token request carrying X-Forwarded-For")
		h.fail(w, r, http.StatusForbidden)
		return
	}
	vals := r.Header[hdrTokenTTL]
	if len(vals) != 1 {
		h.fail(w, r, http.StatusBadRequest)
		return
	}
	ttl, err := ParseTTL(vals[0])
	if err != nil {
		h.log.Debug().Err(err).Msg("refused token request")
		h.fail(w, r, http.StatusBadRequest)
		return
	}
	hdr := w.Header()
	hdr["Content-Type"] = valTextPlain
	// The Go SDKs read the lifetime from this echo and fail (or fall back
	// to IMDSv1) without it (R2.4).
	hdr[hdrTokenTTL] = h.ttlEcho(ttl)
	h.stats.observe(r.URL.Path, http.StatusOK)
	s := h.tokens.issue(ttl)
	_, _ = w.Write(s.enc[:TokenLen]) // net/http copies it into its buffer
	h.tokens.scratch.Put(s)
}

// ttlEcho is the TTL header value for ttl. Clients ask the same TTL again
// and again (each SDK has its fixed one: 21600, 300), so the last value is
// kept and a PUT asking it again allocates nothing.
func (h *Handler) ttlEcho(ttl time.Duration) []string {
	secs := int64(ttl / time.Second)
	if e := h.lastTTL.Load(); e != nil && e.secs == secs {
		return e.val
	}
	e := &ttlValue{secs: secs, val: []string{strconv.FormatInt(secs, 10)}}
	h.lastTTL.Store(e)
	return e.val
}

type ttlValue struct {
	secs int64
	val  []string
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	// A PUT to a versioned token path is refused, not unknown (R2.1).
	if r.Method == http.MethodPut && isTokenPath(r.URL.Path) {
		h.fail(w, r, http.StatusForbidden)
		return
	}
	h.fail(w, r, http.StatusNotFound)
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == tokenPath {
		w.Header()["Allow"] = valAllowPut
	} else {
		w.Header()["Allow"] = valAllowGet
	}
	h.fail(w, r, http.StatusMethodNotAllowed)
}

func (h *Handler) panicked(w http.ResponseWriter, r *http.Request, v any) {
	h.log.Error().Str("path", r.URL.Path).Interface("panic", v).Msg("handler panicked")
	h.fail(w, r, http.StatusInternalServerError)
}
