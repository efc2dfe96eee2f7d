package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Several roles at once. The config file's roles: list names each role and
// gives it its own source and settings; every setting a role does not set
// is taken from the top level (file, IMDSD_* variables, flags), so keys
// shared by every role (profile for the base credentials, sts_region) are
// written once. Without a roles: list the top level is the one role, as
// the flags have always described it.
//
//	roles:
//	  - name: readonly
//	    source: assume-role
//	    role_arn: arn:aws:iam::123456789012:role/readonly
//	  - name: deploy
//	    source: web-identity
//	    role_arn: arn:aws:iam::123456789012:role/deploy
//	    web_identity_token_file: /var/run/ci/token
//	    container: true
//	default_role: readonly

// globalKeys are the settings of the whole daemon: a role cannot set them.
var globalKeys = []string{
	"listen", "token_mode", "allow_clients", "allowed_hosts", "region", "log_format", "log_level",
	"max_connections", "admin_socket", "default_role", "default_roles", "audit_log", "audit_to_log",
	"debug_pprof", "container_listen", "container_token_dir", "container_token_group",
}

// roleEntry is one item of the roles: list as parsed: the role's own
// settings and which keys it set.
type roleEntry struct {
	name string
	line int
	own  Config
	set  []string // setting keys, in file order
}

// parseRoles parses the roles: list of file name.
func parseRoles(v *yaml.Node, name string) ([]roleEntry, error) {
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		return nil, fmt.Errorf("%s:%d: roles: must be a list of roles, each a mapping with name and source (got %s)", name, v.Line, describe(v))
	}
	byKey := map[string]setting{}
	for _, s := range settings {
		if !slices.Contains(globalKeys, s.key) && s.key != "role_name" {
			byKey[s.key] = s
		}
	}
	var out []roleEntry
	var errs []error
	for i, item := range v.Content {
		at := fmt.Sprintf("%s:%d: roles[%d]", name, item.Line, i)
		if item.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%s: must be a mapping such as {name: readonly, source: assume-role, role_arn: …} (got %s)", at, describe(item)))
			continue
		}
		e := roleEntry{line: item.Line}
		seen := map[string]int{}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, val := item.Content[j], item.Content[j+1]
			kat := fmt.Sprintf("%s:%d: roles[%d]", name, k.Line, i)
			if line, dup := seen[k.Value]; dup {
				errs = append(errs, fmt.Errorf("%s: %s: set twice (first on line %d)", kat, k.Value, line))
				continue
			}
			seen[k.Value] = k.Line
			if k.Value == "name" {
				if val.Kind != yaml.ScalarNode || val.Tag != "!!str" || val.Value == "" {
					errs = append(errs, fmt.Errorf("%s: name: must be the role's name, as SDKs see it (got %s)", kat, describe(val)))
					continue
				}
				e.name = val.Value
				continue
			}
			s, ok := byKey[k.Value]
			switch {
			case ok:
			case k.Value == "role_name":
				errs = append(errs, fmt.Errorf("%s: role_name: a role of the list is named by its name key", kat))
				continue
			case slices.Contains(globalKeys, k.Value) || k.Value == "roles":
				errs = append(errs, fmt.Errorf("%s: %s: applies to the whole daemon; set it at the top level, not in a role", kat, k.Value))
				continue
			default:
				errs = append(errs, fmt.Errorf("%s: unknown key %s%s", kat, quote(k.Value), suggest(k.Value)))
				continue
			}
			if err := setFromNode(s.key, s.field(&e.own), val); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: roles[%d]: %s: %w", name, val.Line, i, k.Value, err))
				continue
			}
			e.set = append(e.set, s.key)
		}
		if e.name == "" {
			errs = append(errs, fmt.Errorf("%s: name: required: the role's name, as SDKs see it", at))
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}

// expandRoles builds c.Roles from the parsed roles: list: each role is c's
// role settings with the role's own keys over them.
func (c Config) expandRoles() Config {
	if len(c.roleEntries) == 0 {
		return c
	}
	base := c
	base.Roles, base.roleEntries, base.RoleName = nil, nil, ""
	c.Roles = nil
	for _, e := range c.roleEntries {
		r := base
		for _, key := range e.set {
			for _, s := range settings {
				if s.key == key {
					copyField(s.field(&r), s.field(&e.own))
				}
			}
		}
		r.RoleName = e.name
		// A top-level setting meant for other sources (sts_endpoint for
		// the STS roles, say) is not inherited by a role it does not
		// apply to; the role's own keys are checked as given.
		var zero Config
		for _, st := range settings {
			if !slices.Contains(e.set, st.key) && !appliesTo(st, r.Source) {
				copyField(st.field(&r), st.field(&zero))
			}
		}
		c.Roles = append(c.Roles, r)
	}
	return c
}

// appliesTo reports whether setting s is one source may use: false only
// for a source-specific setting (sourceFlags) of other sources.
func appliesTo(s setting, source string) bool {
	for _, f := range sourceFlags {
		if f.field == s.key || f.field == s.flag {
			return slices.Contains(f.sources, source)
		}
	}
	return true
}

// roleConfigs are the roles c serves, the default first: the roles: list,
// or c itself.
// Then the per-user sessions of the roles that ask for them (callers.go).
func (c Config) roleConfigs() []Config {
	base := []Config{c}
	if len(c.Roles) > 0 {
		base = make([]Config, 0, len(c.Roles))
		for _, r := range c.Roles {
			if r.RoleName == c.DefaultRole {
				base = append([]Config{r}, base...)
			} else {
				base = append(base, r)
			}
		}
	}
	variants, _ := callerVariants(base) // validateRoles reports the errors
	return append(base, variants...)
}

// defaultRoleName is the role IMDS lists.
func (c Config) defaultRoleName() string {
	if len(c.Roles) == 0 {
		return c.RoleName
	}
	return c.DefaultRole
}

// roleNames lists the roles, the default first.
func (c Config) roleNames() []string {
	var names []string
	for _, r := range c.roleConfigs() {
		names = append(names, r.RoleName)
	}
	return names
}

// validateRoles checks the roles: list against the rest of c.
func (c Config) validateRoles() error {
	var errs []error
	base := c.Roles
	if len(base) == 0 {
		base = []Config{c}
	}
	if _, err := callerVariants(base); err != nil {
		errs = append(errs, err)
	}
	if len(c.Roles) == 0 {
		if c.DefaultRole != "" && c.DefaultRole != c.RoleName {
			errs = append(errs, fmt.Errorf("default_role: names a role of the roles: list, and there is none (got %s)", quote(c.DefaultRole)))
		}
		return errors.Join(errs...)
	}
	names := c.roleNames()
	if !slices.Contains(names, c.DefaultRole) {
		errs = append(errs, fmt.Errorf("default_role: must be one of the roles (%s) (got %s)", strings.Join(names, ", "), quote(c.DefaultRole)))
	}
	return errors.Join(errs...)
}

// defaultContainerTokenDir is where the container tokens live when
// container_token_dir is not set: systemd's StateDirectory, /var/lib/imdsd
// for root, else the user's state directory; they survive restarts, so
// running containers keep their token.
func defaultContainerTokenDir(getenv func(string) string) string {
	if dir := getenv("STATE_DIRECTORY"); dir != "" {
		return filepath.Join(filepath.SplitList(dir)[0], "container-tokens")
	}
	if os.Geteuid() == 0 {
		return "/var/lib/imdsd/container-tokens"
	}
	if dir := getenv("XDG_STATE_HOME"); dir != "" {
		return filepath.Join(dir, "imdsd", "container-tokens")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "imdsd", "container-tokens")
	}
	// Never a shared directory such as /tmp, where another user could
	// plant tokens: Validate asks for container_token_dir.
	return ""
}
