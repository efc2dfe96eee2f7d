package systemd

import (
	"strings"
	"testing"
)

// TestVariantLines: each text the variants replace occurs exactly once in
// the embedded files, so that an edit of a file cannot silently disable a
// variant.
func TestVariantLines(t *testing.T) {
	for _, tc := range []struct{ file, text, part string }{
		{"imdsd.service", serviceTemplate, aliasCommand},
		{"imdsd.service", serviceTemplate, ambientCap},
		{"imdsd.service", serviceTemplate, afterNetwork},
		{"imdsd.service", serviceTemplate, dynamicUser},
		{"imdsd.service", serviceTemplate, denyPrivileged},
		{"imdsd.service", serviceTemplate, "ExecStart=" + keyPath + keyArgs + "\n"},
		{"imdsd.service", serviceTemplate, "ExecReload=" + keyPath + " reload" + keyReloadArgs + "\n"},
		{"imdsd.service", serviceTemplate, "User=" + keyUser + "\n"},
		{"imdsd.socket", socketTemplate, listenLines},
	} {
		if n := strings.Count(tc.text, tc.part); n != 1 {
			t.Errorf("%s has %q %d times, want once", tc.file, tc.part, n)
		}
	}
}
