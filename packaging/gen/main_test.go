package main

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestUnitsGolden: the packaged units are imdsd install's, rendered for
// the package's paths. A change of the unit template, or of how install
// renders it, shows here; go test ./packaging/gen -update records it.
func TestUnitsGolden(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the units are rendered on Linux")
	}
	files, err := units()
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range files {
		path := filepath.Join("testdata", name+".golden")
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./packaging/gen -update writes it)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs from %s (go test ./packaging/gen -update, and review the diff):\n%s", name, path, got)
		}
	}
}

// TestUnitsPackagePaths: the lines the package's files and scripts rely on.
func TestUnitsPackagePaths(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the units are rendered on Linux")
	}
	files, err := units()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"imdsd.service": {
			"ExecStartPre=+/usr/bin/imdsd alias add 169.254.169.254",
			`ExecStart=/usr/bin/imdsd "run" "--config" "/etc/imdsd/config.yaml" "--listen" "169.254.169.254:80"`,
			`ExecReload=/usr/bin/imdsd reload "--config" "/etc/imdsd/config.yaml"`,
			"EnvironmentFile=-/etc/imdsd/environment",
			"User=imdsd",
			"ConditionFileIsExecutable=/usr/bin/imdsd",
		},
		"imdsd.socket": {"ListenStream=169.254.169.254:80", "Service=imdsd.service"},
	} {
		lines := strings.Split(files[name], "\n")
		for _, w := range want {
			found := false
			for _, l := range lines {
				found = found || l == w
			}
			if !found {
				t.Errorf("%s: no line %q:\n%s", name, w, files[name])
			}
		}
		if strings.Contains(files[name], "written by `imdsd install") {
			t.Errorf("%s: still headed by install's comment:\n%s", name, files[name])
		}
	}
}
