package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// These tests pin the command-line contract of `imdsd run` through the real
// binary. The full HTTP behaviour is tested in-process in package imds; here
// only what a user of the binary sees: the stdout line, signals, flags.

func TestRunStopsOnSIGINT(t *testing.T) {
	t.Parallel()
	// startDaemonSignal's cleanup sends SIGINT and wants exit status 0.
	d := startDaemonSignal(t, syscall.SIGINT, nil)
	d.served(t)
}

func TestRunPrintsFirstListener(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, []string{"127.0.0.1:0", "[::1]:0"}) // checks the line names 127.0.0.1
	d.served(t)
	d6 := startDaemon(t, []string{"[::1]:0", "127.0.0.1:0"}) // ... and here [::1]
	d6.served(t)
}

func TestRunDefaults(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, nil) // no --region, no --role-name
	checkMetadata(t, d, "us-east-1", defaultRole)
}

func TestRunFlags(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, nil, "--region", "eu-central-2", "--role-name", "e2e-Role_1.x@y")
	checkMetadata(t, d, "eu-central-2", "e2e-Role_1.x@y")
}

// checkMetadata checks what clients read besides the credentials: the role
// listing, region sources (SPEC.md §6), IMDSv2 enforcement (§3) and the
// TTL echo the SDKs parse (§2).
func checkMetadata(t *testing.T, d *daemon, region, role string) {
	t.Helper()
	if d.Role != role || d.Region != region {
		t.Fatalf("test setup: daemon role/region = %q/%q, want %q/%q", d.Role, d.Region, role, region)
	}
	d.served(t) // listing == role, byte-exact; document shape

	for _, path := range []string{
		"/latest/meta-data/placement/availability-zone",
		"/latest/meta-data/placement/availability-zone/", // botocore's form (R4.3)
	} {
		az := d.get(t, path)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(region) + `[a-z]$`).MatchString(az) {
			t.Errorf("GET %s = %q, want %s plus one letter", path, az, region)
		}
	}
	doc := d.get(t, "/latest/dynamic/instance-identity/document")
	if !regexp.MustCompile(`"region"\s*:\s*"` + regexp.QuoteMeta(region) + `"`).MatchString(doc) {
		t.Errorf("identity document = %s, want \"region\" : %q", doc, region)
	}

	for _, ttl := range []string{"1", "300", "21600"} {
		code, hdr, body := d.do(t, http.MethodPut, "/latest/api/token", map[string]string{hdrTokenTTL: ttl})
		d.noteSecret(body, "IMDSv2 session token")
		if code != http.StatusOK || body == "" || strings.ContainsAny(body, " \r\n") {
			t.Errorf("PUT token ttl %s = %d %q, want 200 and a bare token", ttl, code, body)
		}
		if got := hdr.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != ttl {
			t.Errorf("PUT token ttl %s: echo header = %q, want %q", ttl, got, ttl)
		}
	}
	credsPath := "/latest/meta-data/iam/security-credentials/" + role
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"no token", nil},
		{"bad token", map[string]string{hdrToken: "AQAAAPm_49V6IGWwyABYuQXrWfdP6yrb3-iy6UsOKg5zeol4pFOp_g=="}},
	} {
		if code, _, body := d.do(t, http.MethodGet, credsPath, tc.hdr); code != http.StatusUnauthorized {
			t.Errorf("GET %s with %s = %d, want 401", credsPath, tc.name, code)
		} else if strings.Contains(body, "SecretAccessKey") {
			t.Errorf("GET %s with %s: 401 body carries credentials", credsPath, tc.name)
		}
	}
}
