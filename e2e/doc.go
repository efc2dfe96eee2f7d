// Package e2e holds imdsd's end-to-end tests. They start the built binary
// (bin/imdsd, or $IMDSD_BIN) as a user would, point real, unmodified clients
// at it (AWS CLI v2, boto3, the AWS SDK for JavaScript v3 and the AWS SDK for
// Go v2) and check that each gets exactly the credentials imdsd serves.
// Every request goes to loopback only.
//
// The package has no non-test code besides this comment; it imports nothing
// from the rest of the module. The load script and its baseline server live
// in the sub-packages load and load/baseline.
package e2e
