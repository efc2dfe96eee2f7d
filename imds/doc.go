// Package imds is the HTTP surface of imdsd: the EC2 instance metadata
// service paths that AWS SDKs and the AWS CLI read, IMDSv2 session tokens,
// and the request guards (same-host clients, Host allow-list, bounded
// requests).
//
// The handler never obtains credentials itself. Whoever holds them (the
// daemon wires the rotator in) calls [Handler.Publish] once per change; the
// handler renders every response body that depends on the credentials at that
// moment and swaps them in with one atomic store, so a request only loads a
// pointer and writes bytes: it never waits on a credential source and never
// allocates a JSON body.
//
// Wire behaviour follows SPEC.md (shared with the project): section numbers
// such as R2.4 in comments refer to it.
//
// imds imports httprouter, zerolog, the aws Credentials type and ARN parser,
// and internal/endpoint (the well-known addresses) only; it must never import
// the rotator, the STS client, install or kardianos/service (deps_test.go at
// the repository root enforces this). Who may have which role, and the
// record of who got what, come through the Access and Observer interfaces
// (access.go), which the daemon implements.
package imds
