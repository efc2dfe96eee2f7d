// Package imdsd_test holds repository-wide checks.
package imdsd_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries enforces the dependency direction of STYLE.md §1:
// imds and rotator never know each other, and neither knows the daemon,
// installation or service management. Only daemon knows every package.
func TestImportBoundaries(t *testing.T) {
	const mod = "github.com/imdsd/imdsd/"
	forbidden := map[string][]string{
		"imds": {
			mod + "rotator", mod + "install", mod + "daemon", mod + "systemd", mod + "launchd",
			"github.com/kardianos/service",
			"github.com/aws/aws-sdk-go-v2/service/",
			"github.com/aws/aws-sdk-go-v2/config",
			"github.com/aws/aws-sdk-go-v2/credentials",
		},
		"rotator": {
			mod + "imds", mod + "install", mod + "daemon", mod + "systemd", mod + "launchd",
			"github.com/kardianos/service",
			"github.com/julienschmidt/httprouter",
		},
		"install": {
			mod + "imds", mod + "rotator", mod + "daemon",
			"github.com/aws/",
		},
		// Caller identity and access policy: the kernel, the user
		// database and a netlink library; no AWS code, no HTTP router,
		// no other package of imdsd (imds consumes it, daemon wires it).
		"caller": {
			mod + "imds", mod + "rotator", mod + "install", mod + "daemon", mod + "audit",
			"github.com/aws/", "github.com/julienschmidt/httprouter",
			"github.com/kardianos/service",
		},
		// The audit trail: a file writer and its reader; no AWS code and
		// no other package of imdsd (daemon fills its records).
		"audit": {
			mod + "imds", mod + "rotator", mod + "install", mod + "daemon", mod + "caller",
			"github.com/aws/", "github.com/julienschmidt/httprouter",
			"github.com/kardianos/service",
		},
		// Unit files and their rendering only: the standard library and
		// nothing else (no kardianos/service: install hands it the text).
		"systemd": {
			mod + "imds", mod + "rotator", mod + "install", mod + "daemon", mod + "launchd",
			"github.com/",
		},
		"launchd": {
			mod + "imds", mod + "rotator", mod + "install", mod + "daemon", mod + "systemd",
			"github.com/",
		},
		// The well-known addresses only: the standard library.
		"internal/endpoint": {
			mod + "imds", mod + "rotator", mod + "install", mod + "daemon",
			"github.com/",
		},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-json", "./"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for {
			var p struct{ ImportPath string }
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if p.ImportPath == mod+pkg {
				continue // the package itself
			}
			for _, b := range bad {
				if p.ImportPath == b || strings.HasPrefix(p.ImportPath, strings.TrimSuffix(b, "/")+"/") {
					t.Errorf("%s depends on %s, which it must not (STYLE.md §1)", pkg, p.ImportPath)
				}
			}
		}
	}
}
