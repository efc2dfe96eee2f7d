// Package roottest holds the helpers of the privileged tests (build tag
// integration): the opt-in check and throw-away network namespaces. The
// host's own interfaces are never touched.
package roottest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"
)

// NeedRoot skips t unless the privileged tests were asked for with
// IMDSD_TEST_ROOT=1, and fails it if they were but this is not root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Getenv("IMDSD_TEST_ROOT") != "1" {
		t.Skip("privileged test: set IMDSD_TEST_ROOT=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("IMDSD_TEST_ROOT=1 but not running as root")
	}
}

// Netns creates a network namespace with a random name, deleted when t
// ends, and returns its name.
func Netns(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ns := "imdsd-test-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	return ns
}
