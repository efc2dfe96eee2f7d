package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/imdsd/imdsd/audit"
	"github.com/imdsd/imdsd/caller"
	"github.com/imdsd/imdsd/imds"
)

// Who may have which role, and the audit trail. A role's allow: names the
// users, groups and executables that may have it; the kernel says who owns
// the other end of each connection (package caller, looked up once per
// connection); imds asks accessControl (imds.Access) per credentials
// request, and reports every answer and refusal (imds.Observer) to the
// audit trail (package audit: a bounded queue, never blocking a request).
//
//	roles:
//	  - name: deploy
//	    allow:
//	      users: [alice, 1001]
//	      groups: [deployers]
//	      executables: [/usr/local/bin/terraform]
//	default_roles:
//	  - {groups: [deployers], role: deploy}
//	audit_log: /var/log/imdsd/audit.log
//
// Containers on a bridge network are not sockets of this host: the kernel
// cannot name their owner, and their identity is the token of the
// container endpoint, which the trail records by its ID.

// allowSpec is a role's allow: as written.
type allowSpec struct {
	Users, Groups, Executables []string
}

// defaultRoleSpec is one item of default_roles:.
type defaultRoleSpec struct {
	Users, Groups []string
	Role          string
	Line          int
}

// parseAllow reads allow: {users: […], groups: […], executables: […]}.
func parseAllow(v *yaml.Node) (*allowSpec, error) {
	if v.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("must be a mapping with users, groups or executables, each a list (got %s)", describe(v))
	}
	a := &allowSpec{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		var dst *[]string
		switch k.Value {
		case "users":
			dst = &a.Users
		case "groups":
			dst = &a.Groups
		case "executables":
			dst = &a.Executables
		default:
			return nil, fmt.Errorf("unknown key %s on line %d; allow takes users, groups and executables", quote(k.Value), k.Line)
		}
		list, err := scalarList(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.Value, err)
		}
		*dst = list
	}
	return a, nil
}

// parseDefaultRoles reads default_roles: [{users: […], groups: […], role: NAME}, …].
func parseDefaultRoles(v *yaml.Node) ([]defaultRoleSpec, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("must be a list such as [{groups: [deployers], role: deploy}] (got %s)", describe(v))
	}
	var out []defaultRoleSpec
	for _, item := range v.Content {
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("item on line %d: must be a mapping with users or groups and role (got %s)", item.Line, describe(item))
		}
		r := defaultRoleSpec{Line: item.Line}
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, val := item.Content[i], item.Content[i+1]
			var err error
			switch k.Value {
			case "users":
				r.Users, err = scalarList(val)
			case "groups":
				r.Groups, err = scalarList(val)
			case "role":
				if val.Kind != yaml.ScalarNode || val.Value == "" {
					err = fmt.Errorf("must be a role's name (got %s)", describe(val))
				}
				r.Role = val.Value
			default:
				err = fmt.Errorf("unknown key; an item takes users, groups and role")
			}
			if err != nil {
				return nil, fmt.Errorf("item on line %d: %s: %w", item.Line, k.Value, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// scalarList reads a list of names or numbers, or one of them.
func scalarList(v *yaml.Node) ([]string, error) {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	var out []string
	for _, it := range items {
		if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
			return nil, fmt.Errorf("must be a list of names or ids (got %s)", describe(it))
		}
		out = append(out, it.Value)
	}
	return out, nil
}

// accessState is one configuration's compiled policies, per-user defaults
// and audit trail; accessControl swaps it whole at a reload.
type accessState struct {
	policies    map[string]*caller.Policy // roles with allow:
	defaults    *caller.Defaults          // nil: the configured default role for everyone
	defaultRole string
	trail       *audit.Writer // nil: no audit trail
	// variants: a role's per-user sessions (callers.go), each allowed to
	// its user alone.
	variants map[string][]string
}

// accessControl is the daemon's imds.Access and imds.Observer, stable for
// the daemon's life; what it enforces is the running configuration's
// (state).
type accessControl struct {
	state   atomic.Pointer[accessState]
	metrics *metrics
	lookup  caller.Lookup // nil where the OS offers no lookup
}

// compileAccess builds the access state of c: every role's policy, the
// per-user defaults; errors name the role and the key. The audit trail is
// opened by the daemon (openTrail), not here.
func compileAccess(c Config) (*accessState, []string, error) {
	env := caller.Env{Support: caller.Supported}
	st := &accessState{policies: map[string]*caller.Policy{}, defaultRole: c.defaultRoleName()}
	var warnings []string
	var errs []error
	for _, r := range c.roleConfigs() {
		if r.variantOf != "" {
			if st.variants == nil {
				st.variants = map[string][]string{}
			}
			st.variants[r.variantOf] = append(st.variants[r.variantOf], r.RoleName)
		}
		if r.Allow == nil {
			continue
		}
		p, warn, err := caller.Compile(r.RoleName, &caller.Allow{Users: r.Allow.Users, Groups: r.Allow.Groups, Executables: r.Allow.Executables}, env)
		warnings = append(warnings, warn...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st.policies[r.RoleName] = p
	}
	if len(c.DefaultRoles) > 0 {
		var rules []caller.DefaultRule
		names := c.roleNames()
		for _, d := range c.DefaultRoles {
			if !slices.Contains(names, d.Role) {
				errs = append(errs, fmt.Errorf("default_roles: item on line %d: role: must be one of the roles (%s) (got %s)", d.Line, strings.Join(names, ", "), quote(d.Role)))
				continue
			}
			rules = append(rules, caller.DefaultRule{Key: fmt.Sprintf("default_roles (line %d)", d.Line), Users: d.Users, Groups: d.Groups, Role: d.Role})
		}
		defs, warn, err := caller.CompileDefaults(rules, st.defaultRole, env)
		warnings = append(warnings, warn...)
		if err != nil {
			errs = append(errs, err)
		}
		st.defaults = defs
	}
	if c.AuditLog != "" {
		if err := audit.ValidatePath(c.AuditLog); err != nil {
			errs = append(errs, err)
		}
	}
	return st, warnings, errors.Join(errs...)
}

// identity is the caller of r, as the connection's lookup found it.
func identity(r *http.Request, process bool) caller.Identity {
	p := caller.FromContext(r.Context())
	if p == nil {
		return caller.Unknown(errors.New("no caller lookup on this listener"))
	}
	if process {
		return p.WithProcess()
	}
	return p.Identity()
}

// Allow implements imds.Access.
func (a *accessControl) Allow(r *http.Request, role string) (bool, string) {
	st := a.state.Load()
	p := st.policies[role]
	if p == nil {
		return true, caller.ReasonNoAllowList.String()
	}
	d := caller.Decide(p, identity(r, p.NeedsProcess()))
	if !d.Allow {
		a.metrics.refused(role, d.Reason.String())
	}
	return d.Allow, d.Reason.String()
}

// DefaultRole implements imds.Access: the caller's default among the roles
// it may have.
func (a *accessControl) DefaultRole(r *http.Request) (string, bool) {
	st := a.state.Load()
	role := st.defaultRole
	if st.defaults != nil {
		role = st.defaults.Role(identity(r, false))
	}
	if p := st.policies[role]; p != nil {
		if d := caller.Decide(p, identity(r, p.NeedsProcess())); !d.Allow {
			return "", false
		}
	}
	return role, true
}

// Observe implements imds.Observer: one record per answer and refusal.
func (a *accessControl) Observe(r *http.Request, e imds.Event) {
	st := a.state.Load()
	if st.trail == nil {
		return
	}
	rec := audit.Record{
		Time: time.Now().UTC(), Listener: e.Listener, Role: e.Role, Decision: audit.Allowed,
		Reason: e.Reason, Status: e.Status, UID: -1, Key: audit.SuffixOf(e.KeyID),
	}
	if !e.Allowed {
		rec.Decision = audit.Refused
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		rec.Peer = ap
	}
	if e.TokenID != "" {
		rec.Token, _ = audit.NewTokenID(e.TokenID)
	}
	if e.Listener == "imds" {
		id := identity(r, true)
		if id.Known {
			rec.UID, rec.User, rec.PID, rec.Exe = id.UID, id.User, id.PID, id.Exe
		}
	}
	st.trail.Write(rec)
}
