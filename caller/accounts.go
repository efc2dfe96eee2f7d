package caller

import (
	"errors"
	"os/user"
	"strconv"
	"sync"
	"time"
)

// Accounts is the user and group database: [SystemAccounts] (os/user), or
// a map in tests. On Unix, ids are decimal uids and gids; on Windows, SIDs.
//
// In imdsd's static build (CGO_ENABLED=0) os/user reads /etc/passwd and
// /etc/group only: users and groups that only a directory service (NSS:
// LDAP, sssd) knows are not found. Name them by number in allow lists.
type Accounts interface {
	Lookup(name string) (*user.User, error)
	LookupID(uid string) (*user.User, error)
	LookupGroup(name string) (*user.Group, error)
	LookupGroupID(gid string) (*user.Group, error)
	// GroupIDs lists u's groups: primary first, then supplementary.
	GroupIDs(u *user.User) ([]string, error)
}

// SystemAccounts is the OS's user and group database, through os/user.
type SystemAccounts struct{}

// Lookup calls user.Lookup.
func (SystemAccounts) Lookup(name string) (*user.User, error) { return user.Lookup(name) }

// LookupID calls user.LookupId.
func (SystemAccounts) LookupID(uid string) (*user.User, error) { return user.LookupId(uid) }

// LookupGroup calls user.LookupGroup.
func (SystemAccounts) LookupGroup(name string) (*user.Group, error) { return user.LookupGroup(name) }

// LookupGroupID calls user.LookupGroupId.
func (SystemAccounts) LookupGroupID(gid string) (*user.Group, error) {
	return user.LookupGroupId(gid)
}

// GroupIDs calls u.GroupIds.
func (SystemAccounts) GroupIDs(u *user.User) ([]string, error) { return u.GroupIds() }

// isUnknown reports whether err says that a name or id has no entry (as
// opposed to the database being unreadable).
func isUnknown(err error) bool {
	var (
		e1 user.UnknownUserError
		e2 user.UnknownUserIdError
		e3 user.UnknownGroupError
		e4 user.UnknownGroupIdError
	)
	return errors.As(err, &e1) || errors.As(err, &e2) || errors.As(err, &e3) || errors.As(err, &e4)
}

// DefaultAccountsTTL is how long a user's name and groups are cached: a
// change to /etc/group applies to new connections within this time.
const DefaultAccountsTTL = time.Minute

// accountCache caches, per uid, the user name and groups that an Identity
// carries, so that a lookup costs no database read (the pure-Go os/user
// parses /etc/passwd and /etc/group on every call). Safe for concurrent
// use; a miss reads the database under no lock, so two misses of the same
// uid may both read it.
type accountCache struct {
	db  Accounts
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[int]*account
}

// account is one uid's cached entry: immutable once stored.
type account struct {
	name   string
	gids   []int
	groups []string
	until  time.Time
}

// maxAccounts bounds the cache: a host has few users that talk to imdsd;
// past this many, the cache is emptied rather than grown.
const maxAccounts = 4096

func newAccountCache(db Accounts, ttl time.Duration, now func() time.Time) *accountCache {
	if db == nil {
		db = SystemAccounts{}
	}
	if ttl <= 0 {
		ttl = DefaultAccountsTTL
	}
	if now == nil {
		now = time.Now
	}
	return &accountCache{db: db, ttl: ttl, now: now, m: map[int]*account{}}
}

// fill sets id.User, id.GIDs and id.Groups for id.UID. A uid without an
// entry leaves them empty; it is still a known caller, matched by number.
func (c *accountCache) fill(id *Identity) {
	now := c.now()
	c.mu.Lock()
	a := c.m[id.UID]
	c.mu.Unlock()
	if a == nil || now.After(a.until) {
		a = c.read(id.UID)
		a.until = now.Add(c.ttl)
		c.mu.Lock()
		if len(c.m) >= maxAccounts {
			clear(c.m)
		}
		c.m[id.UID] = a
		c.mu.Unlock()
	}
	id.User, id.GIDs, id.Groups = a.name, a.gids, a.groups
}

// read gets uid's entry from the database; errors leave fields empty.
func (c *accountCache) read(uid int) *account {
	a := &account{}
	u, err := c.db.LookupID(strconv.Itoa(uid))
	if err != nil {
		return a
	}
	a.name = u.Username
	ids, err := c.db.GroupIDs(u)
	if err != nil || len(ids) == 0 {
		ids = []string{u.Gid}
	}
	for _, s := range ids {
		gid, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		name := ""
		if g, err := c.db.LookupGroupID(s); err == nil {
			name = g.Name
		}
		a.gids = append(a.gids, gid)
		a.groups = append(a.groups, name)
	}
	return a
}
