// Package e2e holds imdsd's end-to-end tests. They start the built binary
// (bin/imdsd, or $IMDSD_BIN) as a user would, point real, unmodified clients
// at it (AWS CLI v2, boto3, the AWS SDK for JavaScript v3 and the AWS SDK for
// Go v2) and check that each gets exactly the credentials imdsd serves.
// Every request goes to loopback only, or to addresses inside network
// namespaces the tests create (netns_test.go).
//
// The package has no non-test code besides this comment. Of the rest of the
// module it imports only the fake STS (rotator/ststest), which the
// credential-source tests start for the daemon to call; the daemon itself is
// only ever the binary. The load script and its baseline server live in the
// sub-packages load and load/baseline; containerclient is the static Go
// client the podman test (podman_test.go) builds into a FROM scratch image.
// action_test.go runs the GitHub Action of action.yml, its JavaScript under
// the local node, against a simulated runner, and the clients with only
// what it exported.
package e2e
