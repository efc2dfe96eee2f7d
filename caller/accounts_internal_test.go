package caller

import (
	"os/user"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingAccounts knows one user whose groups change, and counts reads.
type countingAccounts struct {
	reads int
	gids  []string
}

func (c *countingAccounts) Lookup(string) (*user.User, error) { return nil, user.UnknownUserError("") }
func (c *countingAccounts) LookupID(uid string) (*user.User, error) {
	c.reads++
	if uid != "1001" {
		return nil, user.UnknownUserIdError(0)
	}
	return &user.User{Uid: "1001", Gid: "1001", Username: "alice"}, nil
}
func (c *countingAccounts) LookupGroup(string) (*user.Group, error) {
	return nil, user.UnknownGroupError("")
}
func (c *countingAccounts) LookupGroupID(gid string) (*user.Group, error) {
	if gid == "2000" {
		return &user.Group{Gid: gid, Name: "deployers"}, nil
	}
	return nil, user.UnknownGroupIdError(gid)
}
func (c *countingAccounts) GroupIDs(*user.User) ([]string, error) { return c.gids, nil }

func TestAccountCache(t *testing.T) {
	db := &countingAccounts{gids: []string{"1001"}}
	now := time.Unix(0, 0)
	c := newAccountCache(db, time.Minute, func() time.Time { return now })
	id := Identity{UID: 1001}
	c.fill(&id)
	c.fill(&id)
	if db.reads != 1 || id.User != "alice" || !cmp.Equal(id.GIDs, []int{1001}) || !cmp.Equal(id.Groups, []string{""}) {
		t.Errorf("fill() = %q %v %q after %d reads, want alice [1001] [\"\"] after 1", id.User, id.GIDs, id.Groups, db.reads)
	}
	// A group added to /etc/group applies once the entry expires.
	db.gids = []string{"1001", "2000"}
	now = now.Add(time.Minute + time.Second)
	c.fill(&id)
	if db.reads != 2 || !cmp.Equal(id.GIDs, []int{1001, 2000}) || !cmp.Equal(id.Groups, []string{"", "deployers"}) {
		t.Errorf("fill() after expiry = %v %q after %d reads", id.GIDs, id.Groups, db.reads)
	}
	// A uid without an entry is cached too, and stays nameless.
	nobody := Identity{UID: 4242}
	c.fill(&nobody)
	c.fill(&nobody)
	if db.reads != 3 || nobody.User != "" || nobody.GIDs != nil {
		t.Errorf("fill(4242) = %+v after %d reads", nobody, db.reads)
	}
}
