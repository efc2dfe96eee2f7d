package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsd/imdsd/imds"
)

func TestTokenStore(t *testing.T) {
	s := tokenStore{dir: filepath.Join(t.TempDir(), "tokens"), gid: -1}
	tok, err := s.load("deploy")
	if err != nil {
		t.Fatal(err)
	}
	if err := imds.ValidContainerToken(tok); err != nil {
		t.Fatalf("created token %q: %v", tok, err)
	}
	b, err := os.ReadFile(s.path("deploy"))
	if err != nil || string(b) != tok {
		t.Fatalf("token file = %q, %v; want exactly the token, no newline", b, err)
	}
	for p, want := range map[string]os.FileMode{s.dir: 0o750 | os.ModeDir, s.roleDir("deploy"): 0o750 | os.ModeDir, s.path("deploy"): 0o640} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("mode of %s = %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
	// Read back, not replaced: running containers keep working.
	if again, err := s.load("deploy"); err != nil || again != tok {
		t.Errorf("load() again = %q, %v; want the same token", again, err)
	}
	next, err := s.rotate("deploy")
	if err != nil || next == tok {
		t.Fatalf("rotate() = %q, %v; want a new token", next, err)
	}
	if b, _ := os.ReadFile(s.path("deploy")); string(b) != next {
		t.Errorf("after rotate the file holds %q, want the new token", b)
	}
	if ents, _ := os.ReadDir(s.roleDir("deploy")); len(ents) != 1 {
		t.Errorf("role directory holds %d entries, want the token file only", len(ents))
	}
}

// A token with a trailing newline is never written, and one found in a
// file is refused with the way out, never silently replaced.
func TestTokenStoreRefusesNewlines(t *testing.T) {
	s := tokenStore{dir: t.TempDir(), gid: -1}
	good := imds.NewContainerToken()
	if err := s.write("deploy", good+"\n"); err == nil {
		t.Fatal("write() of a token with a trailing newline succeeded")
	}
	if _, err := os.Stat(s.path("deploy")); !os.IsNotExist(err) {
		t.Errorf("a refused token left a file: %v", err)
	}
	if err := os.MkdirAll(s.roleDir("deploy"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path("deploy"), []byte(good+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := s.load("deploy")
	if err == nil || !strings.Contains(err.Error(), s.path("deploy")) || !strings.Contains(err.Error(), "imdsd container-token rotate deploy") {
		t.Errorf("load() of a token file with a newline = %v, want an error naming the file and the fix", err)
	}
}
