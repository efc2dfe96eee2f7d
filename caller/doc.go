// Package caller tells who is at the other end of a connection accepted on
// an IMDS or container listener, and decides whether that caller may have a
// role.
//
// Identity: for a TCP connection whose peer is a socket of this host's
// network namespace, the kernel names the socket's owner. On Linux the
// lookup asks NETLINK_SOCK_DIAG (inet_diag) for the peer socket by its exact
// four-tuple, which gives its uid and inode (IPv4, IPv6 and IPv4-mapped
// addresses); the owning process (pid, executable, cgroup) is then found
// through /proc, which costs far more and is therefore done only when it is
// needed ([Peer.WithProcess]). On Windows the owning process comes from the
// IP helper API's TCP tables and the user from the process token. Other
// systems (macOS) are not implemented: their lookup returns
// [ErrUnsupported], and [Compile] refuses an allow list there, so a policy
// is never silently ignored.
//
// Containers on a bridge network are not sockets of this host's network
// namespace: the kernel cannot name their owner, and their lookup fails with
// [ErrNoSocket]. Their identity is the container token they present to the
// container endpoint (SPEC.md §9), not this package's.
//
// The lookup runs at most once per connection, never per request:
// http.Server.ConnContext ([ConnContext]) stores a [Peer] in the
// connection's context, and the first handler that asks
// ([FromContext], [Peer.Identity]) pays for the lookup; the connection's
// later requests reuse it.
//
// Policy: a role's allow list ([Allow]) is compiled against the user and
// group database into a [Policy]; [Decide] is a pure function of a policy
// and an [Identity]. A caller that cannot be identified is refused by any
// role that has an allow list. [Defaults] chooses a caller's default role
// per user or group.
//
// caller imports no AWS code, no HTTP router and no other package of imdsd
// (deps_test.go at the repository root enforces this); imds consumes
// [Lookup] and daemon wires the system's lookup in.
package caller
