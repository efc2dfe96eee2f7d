package e2e

import (
	"os"
	"testing"
)

// helperEnv, when set in the environment, turns the test binary into one of
// the client programs below instead of running tests. The suite re-executes
// itself this way so that the Go SDK client runs in a separate process with
// the same scrubbed environment as the other clients (os/exec's own tests do
// the same).
const helperEnv = "IMDSD_E2E_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "goclient":
		os.Exit(goClientMain(os.Stdout, os.Stderr))
	default:
		os.Stderr.WriteString("unknown " + helperEnv + "\n")
		os.Exit(2)
	}
}
