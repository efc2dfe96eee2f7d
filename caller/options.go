package caller

import "time"

// Options configure NewSystem. The zero value is the system's defaults.
type Options struct {
	// Accounts is the user database that names a uid and lists its
	// groups (Unix); default SystemAccounts.
	Accounts Accounts
	// AccountsTTL is how long a user's name and groups are cached;
	// default DefaultAccountsTTL.
	AccountsTTL time.Duration
	// Now is the clock of that cache; default time.Now.
	Now func() time.Time
}
