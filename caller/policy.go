package caller

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Support says what an OS's lookup can tell about a caller. [Supported]
// is this OS's; Compile refuses an allow list that needs more.
type Support struct {
	User   bool // the caller's user (uid, or SID on Windows)
	Groups bool // the user's groups
	Exe    bool // the caller's executable
}

// Allow is a role's allow list as configured: who may have the role.
// A role without one (a nil *Allow) may be had by any local caller.
type Allow struct {
	// Users are user names or numeric uids (Windows: names, DOMAIN\name
	// or SIDs).
	Users []string
	// Groups are group names or numeric gids: a user who is a member in
	// the user database (primary or supplementary) matches.
	Groups []string
	// Executables are absolute paths of programs.
	Executables []string
}

// Policy is a compiled allow list. A caller may have the role when it
// matches Users or Groups (either; when both are empty, any user) and,
// when Executables are listed, also runs one of them: users and groups say
// who, executables narrow that to which programs.
//
// A nil *Policy has no allow list: any local caller is allowed. A Policy
// is immutable and safe for concurrent use.
type Policy struct {
	role string
	// who: a caller matches by uid, SID, user name (names that did not
	// resolve at compile time, matched once the user exists), gid or
	// group name (likewise).
	uids, gids         map[int]string    // id → the entry that named it
	sids               map[string]string // upper-case SID → entry
	userNames, grNames map[string]string // name → entry
	// exes maps each executable path, and its symlink target when it
	// has one, to the configured entry.
	exes map[string]string
	who  bool // users or groups are listed
}

// Role returns the name of the role p was compiled for.
func (p *Policy) Role() string {
	if p == nil {
		return ""
	}
	return p.role
}

// NeedsProcess reports whether deciding needs the caller's executable,
// which on Linux costs a /proc walk (Peer.WithProcess). False for a nil
// Policy.
func (p *Policy) NeedsProcess() bool { return p != nil && len(p.exes) > 0 }

// Env is what Compile resolves names and checks support against.
type Env struct {
	// Accounts is the user database; nil means SystemAccounts.
	Accounts Accounts
	// Support is what the OS's lookup tells; the daemon passes
	// [Supported]. An allow list that needs more is an error.
	Support Support
	// OS names the system in messages; default runtime.GOOS.
	OS string
}

func (e Env) accounts() Accounts {
	if e.Accounts == nil {
		return SystemAccounts{}
	}
	return e.Accounts
}

func (e Env) os() string {
	if e.OS == "" {
		return runtime.GOOS
	}
	return e.OS
}

// ConfigError is one bad entry of an allow list or a default-role rule.
type ConfigError struct {
	Role  string // the role whose allow list holds it; "" for a default-role rule
	Key   string // allow.users, allow.executables, default_roles[1].groups, …
	Value string // the entry, cut to 64 characters
	Err   error  // the rule broken: one of the Err* rules below, or a database error

	entry bool // Value is a list entry: shown even when empty
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.Role != "" {
		b.WriteString("role " + e.Role + ": ")
	}
	b.WriteString(e.Key + ": " + e.Err.Error())
	if e.Value != "" || e.entry {
		b.WriteString(" (got " + strconv.Quote(clip(e.Value)) + ")")
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Rules broken by configuration entries (ConfigError.Err).
var (
	ErrEmptyAllow   = errors.New("lists no users, groups or executables; remove allow to let any local caller have the role")
	ErrBadUser      = errors.New("must be a user name or a numeric uid")
	ErrBadGroup     = errors.New("must be a group name or a numeric gid")
	ErrRelativeExe  = errors.New("must be an absolute path")
	ErrExeDirectory = errors.New("is a directory, not an executable")
	ErrNoRole       = errors.New("must name a role")
)

// ErrUnsupportedKey is wrapped by the error of a key that this OS's
// lookup cannot serve.
var ErrUnsupportedKey = errors.New("not supported")

func unsupported(os, what string) error {
	return fmt.Errorf("%w on %s: imdsd cannot tell a caller's %s on this system", ErrUnsupportedKey, os, what)
}

func isUnsupported(err error) bool { return errors.Is(err, ErrUnsupportedKey) }

// Compile checks and compiles role's allow list a against the user
// database. A nil a compiles to a nil Policy (any local caller).
//
// Errors (joined, each a *ConfigError naming the role and key): an empty
// allow list, a malformed user or group name, a negative or out-of-range
// number, a relative executable path or a directory, a key this OS's
// lookup cannot serve, an unreadable user database. Warnings, which do not
// stop the role: a name that does not resolve (yet; it matches once the
// user or group exists) and an executable that does not exist (yet).
func Compile(role string, a *Allow, env Env) (*Policy, []string, error) {
	if a == nil {
		return nil, nil, nil
	}
	var errs []error
	var warns []string
	bad := func(key, value string, err error) {
		errs = append(errs, &ConfigError{Role: role, Key: key, Value: value, Err: err, entry: key != "allow" && !isUnsupported(err)})
	}
	if len(a.Users)+len(a.Groups)+len(a.Executables) == 0 {
		bad("allow", "", ErrEmptyAllow)
		return nil, nil, errors.Join(errs...)
	}
	p := &Policy{
		role: role,
		uids: map[int]string{}, gids: map[int]string{},
		sids: map[string]string{}, userNames: map[string]string{}, grNames: map[string]string{},
		exes: map[string]string{},
		who:  len(a.Users)+len(a.Groups) > 0,
	}
	db := env.accounts()
	if len(a.Users) > 0 && !env.Support.User {
		bad("allow.users", "", unsupported(env.os(), "user"))
	}
	if len(a.Groups) > 0 && !env.Support.Groups {
		bad("allow.groups", "", unsupported(env.os(), "groups"))
	}
	if len(a.Executables) > 0 && !env.Support.Exe {
		bad("allow.executables", "", unsupported(env.os(), "executable"))
	}
	for _, u := range a.Users {
		w, err := p.addUser(db, u)
		if err != nil {
			bad("allow.users", u, err)
		} else if w != "" {
			warns = append(warns, fmt.Sprintf("role %s: allow.users: %s", role, w))
		}
	}
	for _, g := range a.Groups {
		w, err := p.addGroup(db, g)
		if err != nil {
			bad("allow.groups", g, err)
		} else if w != "" {
			warns = append(warns, fmt.Sprintf("role %s: allow.groups: %s", role, w))
		}
	}
	for _, e := range a.Executables {
		w, err := p.addExe(e)
		if err != nil {
			bad("allow.executables", e, err)
		} else if w != "" {
			warns = append(warns, fmt.Sprintf("role %s: allow.executables: %s", role, w))
		}
	}
	if len(errs) > 0 {
		return nil, warns, errors.Join(errs...)
	}
	return p, warns, nil
}

// validName checks the shape of a user or group name: not empty, no
// space or control character, none of the separators of passwd and
// group files, and no leading '-' (nor a negative number).
func validName(s string) bool {
	if s == "" || s[0] == '-' || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == ':' || r == ',' || r == '/' {
			return false
		}
	}
	return true
}

// parseID parses a numeric uid or gid; (-1, false) when s is not all
// digits, and an error when it is out of range (4294967295 is the
// kernel's "no id").
func parseID(s string) (int, bool, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1, false, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return -1, true, errors.New("out of range")
	}
	return int(n), true, nil
}

func isSID(s string) bool { return strings.HasPrefix(strings.ToUpper(s), "S-1-") }

func (p *Policy) addUser(db Accounts, s string) (warning string, err error) {
	if !validName(s) {
		return "", ErrBadUser
	}
	if n, num, err := parseID(s); num {
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrBadUser, err)
		}
		p.uids[n] = s
		return "", nil
	}
	if isSID(s) {
		p.sids[strings.ToUpper(s)] = s
		return "", nil
	}
	u, err := db.Lookup(s)
	switch {
	case err != nil && isUnknown(err):
		p.userNames[s] = s
		return fmt.Sprintf("user %s does not exist (yet): it is allowed once created", s), nil
	case err != nil:
		return "", fmt.Errorf("look up user %s: %w", s, err)
	}
	p.userNames[s] = s
	if p.addAccountID(u.Uid, s) {
		return "", nil
	}
	return "", fmt.Errorf("user %s has id %q, neither a uid nor a SID", s, u.Uid)
}

// addAccountID records the id (a decimal uid, or a SID on Windows) that
// the database gave for entry.
func (p *Policy) addAccountID(id, entry string) bool {
	if n, num, err := parseID(id); num && err == nil {
		p.uids[n] = entry
		return true
	}
	if isSID(id) {
		p.sids[strings.ToUpper(id)] = entry
		return true
	}
	return false
}

func (p *Policy) addGroup(db Accounts, s string) (warning string, err error) {
	if !validName(s) {
		return "", ErrBadGroup
	}
	if n, num, err := parseID(s); num {
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrBadGroup, err)
		}
		p.gids[n] = s
		return "", nil
	}
	g, err := db.LookupGroup(s)
	switch {
	case err != nil && isUnknown(err):
		p.grNames[s] = s
		return fmt.Sprintf("group %s does not exist (yet): its members are allowed once it is created", s), nil
	case err != nil:
		return "", fmt.Errorf("look up group %s: %w", s, err)
	}
	p.grNames[s] = s
	if n, num, err := parseID(g.Gid); num && err == nil {
		p.gids[n] = s
		return "", nil
	}
	return "", fmt.Errorf("group %s has id %q, not a number", s, g.Gid)
}

func (p *Policy) addExe(s string) (warning string, err error) {
	if !filepath.IsAbs(s) {
		return "", ErrRelativeExe
	}
	clean := filepath.Clean(s)
	p.exes[clean] = s
	fi, err := os.Stat(clean)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("executable %s does not exist (yet)", s), nil
	case err != nil:
		return fmt.Sprintf("executable %s: %v", s, err), nil
	case fi.IsDir():
		return "", ErrExeDirectory
	}
	// The kernel reports the executable's real path: a configured
	// symlink (/usr/local/bin/terraform → /opt/terraform/1.9/terraform)
	// matches through its target.
	if real, err := filepath.EvalSymlinks(clean); err == nil {
		p.exes[real] = s
	}
	return "", nil
}

// Reason says why Decide allowed or refused a caller. Its String is a
// stable snake_case word, fit for a metrics label and the audit trail.
type Reason uint8

// Reasons of a Decision.
const (
	// ReasonNoAllowList: the role has no allow list; any local caller.
	ReasonNoAllowList Reason = iota
	// ReasonAllowed: the caller matched the allow list.
	ReasonAllowed
	// ReasonNotAllowed: an identified caller outside the allow list.
	ReasonNotAllowed
	// ReasonUnknownCaller: the kernel could not name the caller (the
	// lookup failed, the peer closed, the OS is not supported).
	ReasonUnknownCaller
	// ReasonUnknownExecutable: the allow list names executables and the
	// caller's could not be found.
	ReasonUnknownExecutable
)

var reasonNames = [...]string{"no_allow_list", "allowed", "not_allowed", "unknown_caller", "unknown_executable"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason_" + strconv.Itoa(int(r))
}

// Decision is the outcome of Decide.
type Decision struct {
	Allow  bool
	Reason Reason
	// Match is the allow-list entry the caller matched, as configured
	// ("alice", "1001", "deployers", "/usr/local/bin/terraform"; the
	// executable when both who and executable are listed); "" otherwise.
	Match string
}

// Decide says whether the caller id may have the role of p. It is pure:
// it reads only its arguments and allocates nothing. A caller that is not
// Known is refused by any allow list; with executables listed, id must
// carry the executable (Peer.WithProcess), else it is refused.
func Decide(p *Policy, id Identity) Decision {
	if p == nil {
		return Decision{Allow: true, Reason: ReasonNoAllowList}
	}
	if !id.Known {
		return Decision{Reason: ReasonUnknownCaller}
	}
	match := ""
	if p.who {
		m, ok := p.matchWho(id)
		if !ok {
			return Decision{Reason: ReasonNotAllowed}
		}
		match = m
	}
	if len(p.exes) > 0 {
		if id.Exe == "" {
			return Decision{Reason: ReasonUnknownExecutable}
		}
		m, ok := p.exes[id.Exe]
		if !ok {
			return Decision{Reason: ReasonNotAllowed}
		}
		match = m
	}
	return Decision{Allow: true, Reason: ReasonAllowed, Match: match}
}

// matchWho returns the users or groups entry that id matches.
func (p *Policy) matchWho(id Identity) (string, bool) {
	if id.UID >= 0 {
		if m, ok := p.uids[id.UID]; ok {
			return m, true
		}
	}
	if id.SID != "" {
		if m, ok := p.sids[id.SID]; ok {
			return m, true
		}
		if m, ok := p.sids[strings.ToUpper(id.SID)]; ok {
			return m, true
		}
	}
	if id.User != "" {
		if m, ok := p.userNames[id.User]; ok {
			return m, true
		}
	}
	for i, gid := range id.GIDs {
		if m, ok := p.gids[gid]; ok {
			return m, true
		}
		if i < len(id.Groups) && id.Groups[i] != "" {
			if m, ok := p.grNames[id.Groups[i]]; ok {
				return m, true
			}
		}
	}
	return "", false
}

// DefaultRule chooses Role as the default role of the listed users and of
// the members of the listed groups.
type DefaultRule struct {
	// Key names the rule in messages, e.g. default_roles[2] or
	// users.alice.
	Key    string
	Users  []string
	Groups []string
	Role   string
}

// Defaults chooses a caller's default role: the role served when a caller
// does not name one (the IMDS role listing). A nil *Defaults always
// chooses "". Immutable and safe for concurrent use.
type Defaults struct {
	fallback string
	rules    []defaultRule
}

type defaultRule struct {
	p    *Policy // users and groups only
	role string
}

// CompileDefaults compiles per-user and per-group default roles. fallback
// is the role of everyone else (and of an unknown caller). Users and
// groups are checked as in Compile, with the same warnings; whether the
// roles exist is the caller's to check.
func CompileDefaults(rules []DefaultRule, fallback string, env Env) (*Defaults, []string, error) {
	d := &Defaults{fallback: fallback}
	var errs []error
	var warns []string
	db := env.accounts()
	for _, r := range rules {
		bad := func(key, value string, err error) {
			errs = append(errs, &ConfigError{Key: r.Key + key, Value: value, Err: err, entry: key != ".role" && !isUnsupported(err)})
		}
		if r.Role == "" {
			bad(".role", "", ErrNoRole)
		}
		if len(r.Users) > 0 && !env.Support.User {
			bad(".users", "", unsupported(env.os(), "user"))
		}
		if len(r.Groups) > 0 && !env.Support.Groups {
			bad(".groups", "", unsupported(env.os(), "groups"))
		}
		p := &Policy{
			uids: map[int]string{}, gids: map[int]string{},
			sids: map[string]string{}, userNames: map[string]string{}, grNames: map[string]string{},
			who: true,
		}
		for _, u := range r.Users {
			if w, err := p.addUser(db, u); err != nil {
				bad(".users", u, err)
			} else if w != "" {
				warns = append(warns, r.Key+".users: "+w)
			}
		}
		for _, g := range r.Groups {
			if w, err := p.addGroup(db, g); err != nil {
				bad(".groups", g, err)
			} else if w != "" {
				warns = append(warns, r.Key+".groups: "+w)
			}
		}
		d.rules = append(d.rules, defaultRule{p: p, role: r.Role})
	}
	if len(errs) > 0 {
		return nil, warns, errors.Join(errs...)
	}
	return d, warns, nil
}

// Role returns id's default role. A rule that names the caller's user
// (by name, uid or SID) wins over one that names a group, whatever their
// order; among group rules, the first listed wins. An unknown caller, or
// one no rule names, gets the fallback.
func (d *Defaults) Role(id Identity) string {
	if d == nil {
		return ""
	}
	if !id.Known {
		return d.fallback
	}
	for _, r := range d.rules {
		if r.p.matchUser(id) {
			return r.role
		}
	}
	for _, r := range d.rules {
		if _, ok := r.p.matchWho(id); ok {
			return r.role
		}
	}
	return d.fallback
}

// matchUser reports whether id matches p's users (not its groups).
func (p *Policy) matchUser(id Identity) bool {
	if _, ok := p.uids[id.UID]; ok && id.UID >= 0 {
		return true
	}
	if _, ok := p.sids[strings.ToUpper(id.SID)]; ok && id.SID != "" {
		return true
	}
	_, ok := p.userNames[id.User]
	return ok && id.User != ""
}

// maxEcho is how much of a configured value a message repeats.
const maxEcho = 64

// clip cuts s to maxEcho characters and "…".
func clip(s string) string {
	n := 0
	for i := range s {
		if n == maxEcho {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
