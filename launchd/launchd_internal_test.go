package launchd

import (
	"strings"
	"testing"
)

// TestVariantLines: each text Plist replaces occurs exactly once in
// imdsd.plist, so that an edit cannot silently disable it.
func TestVariantLines(t *testing.T) {
	for _, part := range []string{argLine, userLines, aliasCommand, "<string>{{Path}}</string>\n"} {
		if n := strings.Count(plistTemplate, part); n != 1 {
			t.Errorf("imdsd.plist has %q %d times, want once", part, n)
		}
	}
}
