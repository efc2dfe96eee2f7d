// Package ststest is a fake AWS Security Token Service for tests, in the
// spirit of net/http/httptest.
//
// [NewServer] starts an HTTP server on 127.0.0.1 that speaks the real STS
// Query API (form-encoded POST, Version 2011-06-15, XML responses and the
// ErrorResponse document; SPEC.md §11), so the unmodified *sts.Client of
// aws-sdk-go-v2 can be pointed at it with sts.Options.BaseEndpoint and
// exercise its own signing, retries and XML parsing. It is test
// infrastructure: it holds everything in memory, issues random credentials
// that are valid only against this server, and must never be used in
// production code.
//
// Supported actions: AssumeRole, AssumeRoleWithWebIdentity,
// AssumeRoleWithSAML, GetSessionToken, GetFederationToken and
// GetCallerIdentity. Any other Action (AssumeRoot, DecodeAuthorizationMessage,
// …) or a Version other than 2011-06-15 answers 400 InvalidAction.
// Every issued set of credentials and every request is recorded
// ([Server.Issued], [Server.Requests], [Server.Stats]).
//
// What it checks, like real STS:
//   - Authentication of every action except AssumeRoleWithWebIdentity and
//     AssumeRoleWithSAML: a SigV4 Authorization header whose access key is a
//     base key registered with [WithBaseCredentials] or one the server issued
//     and that has not expired on the server's clock. The session token must
//     accompany an issued key, and the signature is verified
//     cryptographically (HMAC-SHA256 from the standard library) against the
//     key's secret, so a client signing with the wrong secret gets
//     SignatureDoesNotMatch. The request time (X-Amz-Date) is not compared
//     with the clock, so tests can move the clock freely.
//   - The parameter limits of SPEC.md §10 (ValidationError with a message in
//     the format of real STS), per-role rules ([Role]: MaxSessionDuration,
//     external ID, MFA, web identity audience), the one-hour cap of role
//     chaining, and that GetSessionToken and GetFederationToken need
//     long-term credentials.
//   - Web identity tokens must be JWTs (the signature is not checked; exp is
//     checked against the clock); SAML assertions must be base64 SAML
//     Response documents (the XML signature is not checked).
//
// What it does not model: IAM policies and trust policies (any well-formed
// role ARN can be assumed unless a [Role] restricts it), SAML
// SessionNotOnOrAfter capping (use [WithMaxLifetime]), presigned URLs,
// request time skew, regions.
// PackedPolicySize (sent when a policy, policy ARNs or tags are given) is a
// plausible 1..100 value, not AWS's computation; SessionTokenSize and
// SessionTokenUtilization (of a 4096-byte maximum) are exact for the token
// sent, which honours MinimumSessionTokenSize.
//
// [New] returns a Server that does not listen; it is an [http.Handler], and
// [Server.Transport] serves it in-process, which suits testing/synctest
// bubbles (no sockets; delays and the default clock follow fake time).
//
// Faults ([Server.Inject], [Server.Fail], [Server.Outage]) make it answer STS
// errors, raw 5xx pages, delays or dropped connections, optionally only
// within a window of the server's clock ([WithClock]), so scheduler tests on
// a fake clock can simulate an outage of hours. [WithMaxLifetime] grants
// shorter lifetimes than asked for, silently, as real STS does for some
// sessions.
//
// [JWT] and [SAMLResponse] build the web identity tokens and SAML
// assertions a Server accepts, for tests of clients that send them.
//
// Every method of [Server] is safe for concurrent use, including while the
// server is serving. The package depends on the standard library only.
//
// It keeps its own copies of STS's rules (parameter limits, error texts)
// and its own ARN parsing on purpose, instead of sharing those of package
// rotator or the AWS SDK: a fake that runs the code under test to decide
// what is valid agrees with that code's mistakes and cannot catch them.
// The two are written separately, from the STS model and documentation
// (SPEC.md §10, §11), and the tests of rotator hold them against each other.
package ststest
