package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// giveUpWithin is how fast a client must fail when it cannot get
// credentials from IMDS (instead of hanging).
const giveUpWithin = 10 * time.Second

// expiryRule says how a client's reported expiry relates to the served
// Expiration.
type expiryRule int

const (
	expiryExact    expiryRule = iota // the served instant, to the second
	expiryCap1h                      // min(served, retrieval time + 1h): aws-sdk-go-v2 ec2rolecreds caps it
	expiryOptional                   // exact when the client exposes it (zero otherwise)
)

// client describes one real IMDS client the suite drives as a separate
// process.
type client struct {
	name string
	// argv checks the client's prerequisites (t.Fatal with an install hint
	// when missing) and returns the command to run.
	argv func(t *testing.T) []string
	// extraEnv is appended to every environment of this client.
	extraEnv []string
	// parse decodes the client's stdout.
	parse  func(t *testing.T, stdout []byte) clientResult
	expiry expiryRule
	// readsRegion: the client reports the region it read from IMDS.
	readsRegion bool
	// noDisableEnv: the client does not read AWS_EC2_METADATA_DISABLED, so
	// the imds-disabled control does not apply.
	noDisableEnv bool
}

// clientResult is what a client printed.
type clientResult struct {
	creds
	Region string
}

// testClient runs c against imdsd on IPv4 and IPv6 loopback, with and
// without AWS_EC2_METADATA_V1_DISABLED, and checks it gets exactly the
// served credentials; then checks that it fails fast (and gets nothing) when
// IMDS is disabled or nothing listens at the endpoint.
func testClient(t *testing.T, c client) {
	t.Helper()
	t.Parallel()
	argv := c.argv(t)
	d4 := startDaemon(t, nil, "--region", testRegion)
	d6 := startDaemon(t, []string{"[::1]:0"}, "--region", testRegion)

	for _, tc := range []struct {
		name       string
		d          *daemon
		v1Disabled bool
	}{
		{"ipv4", d4, true},
		// SPEC.md §13.7: also without the v1 switch; required mode still
		// refuses any tokenless GET, so a silent v1 downgrade fails here too.
		{"ipv4-v1-allowed", d4, false},
		{"ipv6", d6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := tc.d.served(t)
			env := append(clientEnv(t, tc.d.Endpoint, tc.v1Disabled), c.extraEnv...)
			r := runClient(t, env, argv[0], argv[1:]...)
			if r.Err != nil {
				t.Fatalf("%s: %v\nstderr:\n%s", c.name, r.Err, r.Stderr)
			}
			after := tc.d.served(t)
			got := c.parse(t, r.Stdout)
			tc.d.noteSecret(got.SecretAccessKey, "SecretAccessKey (as the client got it)")
			checkCreds(t, c, r, got.creds, before, after)
			if c.readsRegion && got.Region != tc.d.Region {
				t.Errorf("%s: region = %q, want %q", c.name, got.Region, tc.d.Region)
			}
		})
	}

	// Controls: the credentials above came from IMDS and nowhere else, and a
	// client that cannot reach IMDS gives up quickly.
	for _, tc := range []struct {
		name     string
		endpoint func(t *testing.T) string
		extra    []string
	}{
		{"imds-disabled", func(*testing.T) string { return d4.Endpoint }, []string{"AWS_EC2_METADATA_DISABLED=true"}},
		{"nothing-listening", func(t *testing.T) string { return "http://" + freePort(t) + "/" }, nil},
	} {
		if tc.name == "imds-disabled" && c.noDisableEnv {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := append(clientEnv(t, tc.endpoint(t), true, tc.extra...), c.extraEnv...)
			r := runClient(t, env, argv[0], argv[1:]...)
			took := r.End.Sub(r.Start)
			var exitErr *exec.ExitError
			if !errors.As(r.Err, &exitErr) || took > clientTimeout/2 {
				t.Fatalf("%s: err = %v after %v, want a non-zero exit\nstdout:\n%s\nstderr:\n%s", c.name, r.Err, took, r.Stdout, r.Stderr)
			}
			if took > giveUpWithin {
				t.Errorf("%s took %v to give up, want < %v", c.name, took, giveUpWithin)
			}
			if bytes.Contains(r.Stdout, []byte(d4.served(t).SecretAccessKey)) {
				t.Errorf("%s printed the served credentials although IMDS was unusable", c.name)
			}
			t.Logf("%s failed as expected in %v: %s", c.name, took.Round(time.Millisecond), bytes.TrimSpace(r.Stderr))
		})
	}
}

// checkCreds wants got to equal the set served before or after the client
// ran, byte for byte, and its expiry to follow the client's rule.
func checkCreds(t *testing.T, c client, r clientRun, got, before, after creds) {
	t.Helper()
	keysOnly := cmpopts.IgnoreFields(creds{}, "Expiration")
	want := before
	if !cmp.Equal(got, before, keysOnly) {
		want = after
		if !cmp.Equal(got, after, keysOnly) {
			// Print only which fields differ and their lengths: never secrets.
			t.Fatalf("%s: credentials differ from the served ones (before and after the run): %s",
				c.name, redactedDiff(got, after))
		}
	}
	switch c.expiry {
	case expiryOptional:
		if got.Expiration.IsZero() {
			t.Logf("%s does not expose the expiry; not compared", c.name)
			return
		}
		fallthrough
	case expiryExact:
		if !got.Expiration.Equal(want.Expiration) {
			t.Errorf("%s: expiration = %v, want %v", c.name, got.Expiration.UTC(), want.Expiration.UTC())
		}
	case expiryCap1h:
		lo := minTime(want.Expiration, r.Start.Add(time.Hour)).Add(-time.Second)
		hi := minTime(want.Expiration, r.End.Add(time.Hour)).Add(time.Second)
		if got.Expiration.Before(lo) || got.Expiration.After(hi) {
			t.Errorf("%s: expiration = %v, want min(served %v, retrieval + 1h) in [%v, %v]",
				c.name, got.Expiration.UTC(), want.Expiration.UTC(), lo.UTC(), hi.UTC())
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// redactedDiff names the differing credential fields without their values.
func redactedDiff(got, want creds) string {
	var s string
	for _, f := range []struct {
		name      string
		got, want string
	}{
		{"AccessKeyId", got.AccessKeyID, want.AccessKeyID},
		{"SecretAccessKey", got.SecretAccessKey, want.SecretAccessKey},
		{"SessionToken", got.SessionToken, want.SessionToken},
	} {
		if f.got != f.want {
			s += fmt.Sprintf("%s (got %d bytes, want %d) ", f.name, len(f.got), len(f.want))
		}
	}
	return s
}
