package rotator

import (
	"context"
	"runtime"
	"strings"
	"testing"
)

// An input command never sees imdsd's own settings: IMDSD_SECRET_ACCESS_KEY
// and the like stay out of its environment; the rest, and Env, reach it.
func TestCommandInputEnvironment(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses sh")
	}
	t.Setenv("IMDSD_SECRET_ACCESS_KEY", "imdsd-secret-should-not-leak")
	t.Setenv("IMDSD_MFA_COMMAND", "totp --seed SEED")
	t.Setenv("KEEP_ME", "kept")
	out, err := CommandInput("env", CommandOptions{Env: []string{"EXTRA=1"}}).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "IMDSD_") || strings.Contains(out, "imdsd-secret") {
		t.Errorf("the command saw imdsd's settings:\n%s", out)
	}
	if !strings.Contains(out, "KEEP_ME=kept") || !strings.Contains(out, "EXTRA=1") {
		t.Errorf("the command lost its environment:\n%s", out)
	}
}
