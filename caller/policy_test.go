package caller_test

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsd/imdsd/caller"
)

// fakeAccounts is a user database in memory: alice (1001) and bob (1002),
// groups alice (1001), bob (1002), deployers (2000: alice) and ops (2001:
// bob).
type fakeAccounts struct {
	users   map[string]*user.User
	groups  map[string]*user.Group
	members map[string][]string // uid → gids (primary first)
	broken  error               // returned by every lookup when set
}

func newFakeAccounts() *fakeAccounts {
	return &fakeAccounts{
		users: map[string]*user.User{
			"alice": {Uid: "1001", Gid: "1001", Username: "alice"},
			"bob":   {Uid: "1002", Gid: "1002", Username: "bob"},
		},
		groups: map[string]*user.Group{
			"alice":     {Gid: "1001", Name: "alice"},
			"bob":       {Gid: "1002", Name: "bob"},
			"deployers": {Gid: "2000", Name: "deployers"},
			"ops":       {Gid: "2001", Name: "ops"},
		},
		members: map[string][]string{"1001": {"1001", "2000"}, "1002": {"1002", "2001"}},
	}
}

func (f *fakeAccounts) Lookup(name string) (*user.User, error) {
	if f.broken != nil {
		return nil, f.broken
	}
	if u, ok := f.users[name]; ok {
		return u, nil
	}
	return nil, user.UnknownUserError(name)
}

func (f *fakeAccounts) LookupID(uid string) (*user.User, error) {
	for _, u := range f.users {
		if u.Uid == uid {
			return u, nil
		}
	}
	return nil, user.UnknownUserError(uid)
}

func (f *fakeAccounts) LookupGroup(name string) (*user.Group, error) {
	if f.broken != nil {
		return nil, f.broken
	}
	if g, ok := f.groups[name]; ok {
		return g, nil
	}
	return nil, user.UnknownGroupError(name)
}

func (f *fakeAccounts) LookupGroupID(gid string) (*user.Group, error) {
	for _, g := range f.groups {
		if g.Gid == gid {
			return g, nil
		}
	}
	return nil, user.UnknownGroupIdError(gid)
}

func (f *fakeAccounts) GroupIDs(u *user.User) ([]string, error) { return f.members[u.Uid], nil }

var linuxEnv = caller.Env{Accounts: newFakeAccounts(), Support: caller.Support{User: true, Groups: true, Exe: true}, OS: "linux"}

// Identities as the Linux lookup makes them.
var (
	alice   = caller.Identity{Known: true, UID: 1001, User: "alice", GIDs: []int{1001, 2000}, Groups: []string{"alice", "deployers"}}
	bob     = caller.Identity{Known: true, UID: 1002, User: "bob", GIDs: []int{1002, 2001}, Groups: []string{"bob", "ops"}}
	nobody  = caller.Identity{Known: true, UID: 4242} // a uid without an entry
	unknown = caller.Unknown(caller.ErrNoSocket)
)

func withExe(id caller.Identity, exe string) caller.Identity { id.PID, id.Exe = 4000, exe; return id }

// exeDir holds an executable "terraform" and a symlink "tf" to it.
func exeDir(t *testing.T) (dir, real, link string) {
	t.Helper()
	dir = t.TempDir()
	real = filepath.Join(dir, "terraform")
	if err := os.WriteFile(real, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link = filepath.Join(dir, "tf")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	return dir, real, link
}

func TestDecide(t *testing.T) {
	_, real, link := exeDir(t)
	// user "carol" and group "builders" do not exist yet: matched by name
	// once they do.
	carol := caller.Identity{Known: true, UID: 1003, User: "carol", GIDs: []int{1003, 3000}, Groups: []string{"carol", "builders"}}
	cases := []struct {
		name  string
		allow *caller.Allow
		id    caller.Identity
		want  caller.Decision
	}{
		{"no allow list, known", nil, alice, caller.Decision{Allow: true, Reason: caller.ReasonNoAllowList}},
		{"no allow list, unknown", nil, unknown, caller.Decision{Allow: true, Reason: caller.ReasonNoAllowList}},
		{"user by name", &caller.Allow{Users: []string{"alice"}}, alice, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "alice"}},
		{"user by uid", &caller.Allow{Users: []string{"1002"}}, bob, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "1002"}},
		{"uid without an entry", &caller.Allow{Users: []string{"4242"}}, nobody, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "4242"}},
		{"other user", &caller.Allow{Users: []string{"alice"}}, bob, caller.Decision{Reason: caller.ReasonNotAllowed}},
		{"unknown caller refused", &caller.Allow{Users: []string{"alice"}}, unknown, caller.Decision{Reason: caller.ReasonUnknownCaller}},
		{"unknown caller refused by executables", &caller.Allow{Executables: []string{real}}, unknown, caller.Decision{Reason: caller.ReasonUnknownCaller}},
		{"group by name", &caller.Allow{Groups: []string{"deployers"}}, alice, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "deployers"}},
		{"group by gid", &caller.Allow{Groups: []string{"2001"}}, bob, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "2001"}},
		{"primary group", &caller.Allow{Groups: []string{"bob"}}, bob, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "bob"}},
		{"not in group", &caller.Allow{Groups: []string{"deployers"}}, bob, caller.Decision{Reason: caller.ReasonNotAllowed}},
		{"users or groups", &caller.Allow{Users: []string{"alice"}, Groups: []string{"ops"}}, bob, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "ops"}},
		{"user created later", &caller.Allow{Users: []string{"carol"}}, carol, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "carol"}},
		{"group created later", &caller.Allow{Groups: []string{"builders"}}, carol, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "builders"}},
		{"executable only, any user", &caller.Allow{Executables: []string{real}}, withExe(bob, real), caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: real}},
		{"executable through its symlink", &caller.Allow{Executables: []string{link}}, withExe(bob, real), caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: link}},
		{"other executable", &caller.Allow{Executables: []string{real}}, withExe(bob, "/usr/bin/python3"), caller.Decision{Reason: caller.ReasonNotAllowed}},
		{"replaced executable", &caller.Allow{Executables: []string{real}}, withExe(bob, real+" (deleted)"), caller.Decision{Reason: caller.ReasonNotAllowed}},
		{"executable not found", &caller.Allow{Executables: []string{real}}, bob, caller.Decision{Reason: caller.ReasonUnknownExecutable}},
		{"user and executable", &caller.Allow{Users: []string{"alice"}, Executables: []string{real}}, withExe(alice, real), caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: real}},
		{"user right, executable wrong", &caller.Allow{Users: []string{"alice"}, Executables: []string{real}}, withExe(alice, "/bin/sh"), caller.Decision{Reason: caller.ReasonNotAllowed}},
		{"executable right, user wrong", &caller.Allow{Users: []string{"alice"}, Executables: []string{real}}, withExe(bob, real), caller.Decision{Reason: caller.ReasonNotAllowed}},
		{"root is not special", &caller.Allow{Users: []string{"alice"}}, caller.Identity{Known: true, UID: 0, User: "root", GIDs: []int{0}, Groups: []string{"root"}}, caller.Decision{Reason: caller.ReasonNotAllowed}},
		{"windows SID", &caller.Allow{Users: []string{"s-1-5-21-1-2-3-1001"}}, caller.Identity{Known: true, UID: -1, SID: "S-1-5-21-1-2-3-1001", User: `HOST\alice`}, caller.Decision{Allow: true, Reason: caller.ReasonAllowed, Match: "s-1-5-21-1-2-3-1001"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := caller.Compile("deploy", tc.allow, linuxEnv)
			if err != nil {
				t.Fatalf("Compile() error = %v", err)
			}
			if got := caller.Decide(p, tc.id); got != tc.want {
				t.Errorf("Decide() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecideAllocatesNothing(t *testing.T) {
	p, _, err := caller.Compile("deploy", &caller.Allow{Users: []string{"alice"}, Groups: []string{"ops"}}, linuxEnv)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { caller.Decide(p, bob) }); n != 0 {
		t.Errorf("Decide() allocates %v times, want 0", n)
	}
}

func TestNeedsProcess(t *testing.T) {
	_, real, _ := exeDir(t)
	for _, tc := range []struct {
		allow *caller.Allow
		want  bool
	}{
		{nil, false},
		{&caller.Allow{Users: []string{"alice"}}, false},
		{&caller.Allow{Users: []string{"alice"}, Executables: []string{real}}, true},
	} {
		p, _, err := caller.Compile("r", tc.allow, linuxEnv)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.NeedsProcess(); got != tc.want {
			t.Errorf("NeedsProcess(%+v) = %v, want %v", tc.allow, got, tc.want)
		}
	}
}

// Bad input is a contract: each message names the role and the key.
func TestCompileErrors(t *testing.T) {
	dir, _, _ := exeDir(t)
	broken := newFakeAccounts()
	broken.broken = errors.New("open /etc/group: permission denied")
	macEnv := caller.Env{Accounts: newFakeAccounts(), OS: "darwin"}
	winEnv := caller.Env{Accounts: newFakeAccounts(), Support: caller.Support{User: true, Exe: true}, OS: "windows"}
	cases := []struct {
		name  string
		allow caller.Allow
		env   caller.Env
		want  string
	}{
		{"empty", caller.Allow{}, linuxEnv, "role deploy: allow: lists no users, groups or executables; remove allow to let any local caller have the role"},
		{"blank user", caller.Allow{Users: []string{""}}, linuxEnv, `role deploy: allow.users: must be a user name or a numeric uid (got "")`},
		{"user with space", caller.Allow{Users: []string{"al ice"}}, linuxEnv, `role deploy: allow.users: must be a user name or a numeric uid (got "al ice")`},
		{"negative uid", caller.Allow{Users: []string{"-1"}}, linuxEnv, `role deploy: allow.users: must be a user name or a numeric uid (got "-1")`},
		{"uid out of range", caller.Allow{Users: []string{"4294967295"}}, linuxEnv, `role deploy: allow.users: must be a user name or a numeric uid: out of range (got "4294967295")`},
		{"group with colon", caller.Allow{Groups: []string{"a:b"}}, linuxEnv, `role deploy: allow.groups: must be a group name or a numeric gid (got "a:b")`},
		{"relative executable", caller.Allow{Executables: []string{"bin/terraform"}}, linuxEnv, `role deploy: allow.executables: must be an absolute path (got "bin/terraform")`},
		{"bare executable name", caller.Allow{Executables: []string{"terraform"}}, linuxEnv, `role deploy: allow.executables: must be an absolute path (got "terraform")`},
		{"directory", caller.Allow{Executables: []string{dir}}, linuxEnv, `role deploy: allow.executables: is a directory, not an executable (got "` + dir + `")`},
		{"database unreadable", caller.Allow{Users: []string{"alice"}}, caller.Env{Accounts: broken, Support: linuxEnv.Support}, `role deploy: allow.users: look up user alice: open /etc/group: permission denied (got "alice")`},
		{"macOS users", caller.Allow{Users: []string{"alice"}}, macEnv, "role deploy: allow.users: not supported on darwin: imdsd cannot tell a caller's user on this system"},
		{"macOS executables", caller.Allow{Executables: []string{"/usr/bin/true"}}, macEnv, "role deploy: allow.executables: not supported on darwin: imdsd cannot tell a caller's executable on this system"},
		{"windows groups", caller.Allow{Groups: []string{"deployers"}}, winEnv, "role deploy: allow.groups: not supported on windows: imdsd cannot tell a caller's groups on this system"},
		{"every problem at once", caller.Allow{Users: []string{"a b", "alice"}, Executables: []string{"x"}}, linuxEnv,
			"role deploy: allow.users: must be a user name or a numeric uid (got \"a b\")\n" +
				"role deploy: allow.executables: must be an absolute path (got \"x\")"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := caller.Compile("deploy", &tc.allow, tc.env)
			if err == nil {
				t.Fatalf("Compile() = %v, nil; want error %q", p, tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Compile() error =\n%s\nwant\n%s", got, tc.want)
			}
			var ce *caller.ConfigError
			if !errors.As(err, &ce) || ce.Role != "deploy" {
				t.Errorf("Compile() error %v is not a *ConfigError of role deploy", err)
			}
		})
	}
}

func TestCompileWarnings(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "not-yet")
	_, warns, err := caller.Compile("deploy", &caller.Allow{
		Users:       []string{"alice", "carol", "1234"},
		Groups:      []string{"deployers", "builders"},
		Executables: []string{missing},
	}, linuxEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"role deploy: allow.users: user carol does not exist (yet): it is allowed once created",
		"role deploy: allow.groups: group builders does not exist (yet): its members are allowed once it is created",
		"role deploy: allow.executables: executable " + missing + " does not exist (yet)",
	}
	if diff := cmp.Diff(want, warns); diff != "" {
		t.Errorf("Compile() warnings (-want +got):\n%s", diff)
	}
}

func TestCompileNil(t *testing.T) {
	p, warns, err := caller.Compile("deploy", nil, linuxEnv)
	if p != nil || warns != nil || err != nil {
		t.Errorf("Compile(nil) = %v, %v, %v; want nil, nil, nil", p, warns, err)
	}
}

func TestDefaults(t *testing.T) {
	d, warns, err := caller.CompileDefaults([]caller.DefaultRule{
		{Key: "default_roles[0]", Groups: []string{"deployers"}, Role: "deploy"},
		{Key: "default_roles[1]", Groups: []string{"ops"}, Role: "ops"},
		{Key: "default_roles[2]", Users: []string{"alice"}, Role: "alice-own"},
		{Key: "default_roles[3]", Users: []string{"4242"}, Role: "robot"},
	}, "readonly", linuxEnv)
	if err != nil || len(warns) > 0 {
		t.Fatalf("CompileDefaults() = %v, %v", warns, err)
	}
	cases := []struct {
		name string
		id   caller.Identity
		want string
	}{
		{"user rule beats an earlier group rule", alice, "alice-own"},
		{"group rule", bob, "ops"},
		{"uid rule", nobody, "robot"},
		{"no rule", caller.Identity{Known: true, UID: 7}, "readonly"},
		{"unknown caller", unknown, "readonly"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := d.Role(tc.id); got != tc.want {
				t.Errorf("Role() = %q, want %q", got, tc.want)
			}
		})
	}
	var none *caller.Defaults
	if got := none.Role(alice); got != "" {
		t.Errorf("nil Defaults: Role() = %q, want \"\"", got)
	}
}

func TestDefaultsErrors(t *testing.T) {
	_, warns, err := caller.CompileDefaults([]caller.DefaultRule{
		{Key: "default_roles[0]", Users: []string{"a b"}, Role: "x"},
		{Key: "default_roles[1]", Groups: []string{"later"}},
	}, "x", linuxEnv)
	want := "default_roles[0].users: must be a user name or a numeric uid (got \"a b\")\n" +
		"default_roles[1].role: must name a role"
	if err == nil || err.Error() != want {
		t.Errorf("CompileDefaults() error = %v, want\n%s", err, want)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "default_roles[1].groups: group later does not exist (yet)") {
		t.Errorf("CompileDefaults() warnings = %q", warns)
	}
}

func TestReasonString(t *testing.T) {
	got := []string{}
	for r := caller.ReasonNoAllowList; r <= caller.ReasonUnknownExecutable+1; r++ {
		got = append(got, r.String())
	}
	want := []string{"no_allow_list", "allowed", "not_allowed", "unknown_caller", "unknown_executable", "reason_5"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Reason.String() (-want +got):\n%s", diff)
	}
}
