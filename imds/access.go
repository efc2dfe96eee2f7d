package imds

import "net/http"

// Who may have which role, and a record of every answer, are the daemon's
// to decide (its caller policy and audit trail); imds asks through these
// two small interfaces, so it knows nothing of users, kernels or files.
// Both are optional: without an Access every local caller may have every
// role, as on EC2; without an Observer nothing is recorded.

// Access decides, per request, which roles its caller may have. Its
// methods are called on the request's goroutine and must not block; they
// may use what the request's context carries (the caller identity the
// server's ConnContext looked up once per connection).
type Access interface {
	// Allow reports whether the caller of r may have role, and why (a
	// short reason for the record, such as "not_allowed").
	Allow(r *http.Request, role string) (ok bool, reason string)
	// DefaultRole is the role listed under iam/security-credentials/ for
	// the caller of r; ok false when it may have none (404).
	DefaultRole(r *http.Request) (role string, ok bool)
	// Variant names the role whose credentials to serve on role's path to
	// the caller of r: role itself, or a role of the handler standing for
	// role and this caller (its own STS session, whose name or source
	// identity carries the caller, so that CloudTrail shows who asked).
	Variant(r *http.Request, role string) string
}

// Observer records answers: credentials served, error documents, and
// refusals. Observe must not block (the daemon queues the record).
type Observer interface {
	Observe(r *http.Request, e Event)
}

// An Event is one credentials answer or refusal.
type Event struct {
	// Listener is "imds" or "container".
	Listener string
	Role     string
	// Allowed is false for a refusal (Status 401, 403 or 404).
	Allowed bool
	Reason  string
	Status  int
	// KeyID is the access key ID served, "" when none was; the observer
	// keeps only its last characters.
	KeyID string
	// TokenID names the container token presented (ContainerTokenID),
	// for container requests that carried one.
	TokenID string
}
