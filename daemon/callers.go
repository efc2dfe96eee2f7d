package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"strconv"

	"github.com/imdsd/imdsd/caller"
	"github.com/imdsd/imdsd/rotator"
)

// The caller in the STS session. A role with session_name_from_caller or
// source_identity_from_caller gets one STS session per user its allow list
// names, so that CloudTrail shows which local user asked: each is a role
// of its own, named ROLE@USER, with its own rotator, allowed to that user
// only, and served to that user on ROLE's path (imds.Access's Variant).
// The role itself keeps its own session, for the callers that are not
// listed users and for containers (whose identity is their token).
//
// The cost: every such user is one more STS session to keep fresh, a call
// about every half hour each (README, "Access control and audit").

// variantName is the name of role's session for user.
func variantName(role, user string) string { return role + "@" + user }

// callerVariants are the per-user sessions of the roles that ask for them,
// each a role configuration of its own; errors name the role and the key.
func callerVariants(roles []Config) ([]Config, error) {
	var out []Config
	var errs []error
	for _, r := range roles {
		if !r.SessionNameFromCaller && !r.SourceIdentityFromCaller {
			continue
		}
		at := "role " + r.RoleName + ": "
		switch {
		case r.Allow != nil && len(r.Allow.Groups) > 0:
			errs = append(errs, errors.New(at+"allow.groups: a group's members cannot be known in advance for one STS session each; list the users in allow.users"))
			continue
		case r.Allow == nil || len(r.Allow.Users) == 0:
			errs = append(errs, errors.New(at+"session_name_from_caller and source_identity_from_caller need allow.users: one STS session per user listed"))
			continue
		case r.SourceIdentityFromCaller && r.Source != "assume-role":
			errs = append(errs, fmt.Errorf("%ssource_identity_from_caller: applies to source assume-role (got %s)", at, r.Source))
			continue
		}
		for _, u := range r.Allow.Users {
			name := u
			if _, err := strconv.Atoi(u); err == nil {
				if acct, err := user.LookupId(u); err == nil {
					name = acct.Username
				}
			}
			v := r
			v.RoleName, v.callerOf, v.variantOf, v.Container = variantName(r.RoleName, u), u, r.RoleName, false
			v.SessionNameFromCaller, v.SourceIdentityFromCaller = false, false
			v.Allow = &allowSpec{Users: []string{u}, Executables: r.Allow.Executables}
			if r.SessionNameFromCaller {
				host, _ := os.Hostname()
				v.RoleSessionName = rotator.DefaultRoleSessionName(name, host)
			}
			if r.SourceIdentityFromCaller {
				v.SourceIdentity = name
			}
			out = append(out, v)
		}
	}
	return out, errors.Join(errs...)
}

// Variant implements imds.Access: the per-user session of role whose
// policy admits the caller of r (the same decision that lets it have the
// session), or role itself.
func (a *accessControl) Variant(r *http.Request, role string) string {
	st := a.state.Load()
	for _, v := range st.variants[role] {
		if p := st.policies[v]; p != nil && caller.Decide(p, identity(r, p.NeedsProcess())).Allow {
			return v
		}
	}
	return role
}
