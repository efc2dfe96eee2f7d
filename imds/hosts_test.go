package imds_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/imdsd/imdsd/imds"
	"github.com/rs/zerolog"
)

// Every bad allowed_hosts entry is refused with the problem and the fix.
func TestParseAllowedHost(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "imdsd", want: "imdsd"},
		{in: "IMDSD.Internal", want: "imdsd.internal"},
		{in: "proj_imdsd_1", want: "proj_imdsd_1"},
		{in: "10.89.0.5", want: "10.89.0.5"},
		{in: "fd00::5", want: "fd00::5"},
		{in: "[fd00::5]", want: "fd00::5"},
		{in: "::ffff:10.0.0.1", want: "10.0.0.1"},
		{in: "", err: `allowed_hosts: must be a host name such as imdsd or an IP address, not empty (got "")`},
		{in: "http://imdsd:8169/", err: `allowed_hosts: must be a host name such as imdsd or an IP address, not a URL; give only the host part (got "http://imdsd:8169/")`},
		{in: "imdsd/latest", err: `allowed_hosts: must be a host name such as imdsd or an IP address, not a URL; give only the host part (got "imdsd/latest")`},
		{in: "*.internal", err: `allowed_hosts: must be an exact host name: patterns would let DNS-rebinding names through; list each name (got "*.internal")`},
		{in: "imdsd:8169", err: `allowed_hosts: must be a host name without a port: the Host check ignores ports; give imdsd (got "imdsd:8169")`},
		{in: "10.89.0.5:8169", err: `allowed_hosts: must be an address without a port: the Host check ignores ports; give 10.89.0.5 (got "10.89.0.5:8169")`},
		{in: "[fd00::5]:80", err: `allowed_hosts: must be an address without a port: the Host check ignores ports; give fd00::5 (got "[fd00::5]:80")`},
		{in: "[imdsd]", err: `allowed_hosts: must have brackets only around an IPv6 address, such as [fd00::5] or fd00::5 (got "[imdsd]")`},
		{in: "[10.0.0.1]", err: `allowed_hosts: must have brackets only around an IPv6 address, such as [fd00::5] or fd00::5 (got "[10.0.0.1]")`},
		{in: "0.0.0.0", err: `allowed_hosts: must be an address clients connect to; 0.0.0.0 and :: name no host (got "0.0.0.0")`},
		{in: "::", err: `allowed_hosts: must be an address clients connect to; 0.0.0.0 and :: name no host (got "::")`},
		{in: "fe80::1%eth0", err: `allowed_hosts: must be an IP address without a zone (got "fe80::1%eth0")`},
		{in: "-imdsd", err: `allowed_hosts: must be a host name of letters, digits, hyphens, underscores and dots, each label 1..63 characters and not starting or ending with a hyphen, such as imdsd or imdsd.internal (got "-imdsd")`},
		{in: "imdsd..internal", err: `allowed_hosts: must be a host name of letters, digits, hyphens, underscores and dots, each label 1..63 characters and not starting or ending with a hyphen, such as imdsd or imdsd.internal (got "imdsd..internal")`},
		{in: "my host", err: `allowed_hosts: must be a host name of letters, digits, hyphens, underscores and dots, each label 1..63 characters and not starting or ending with a hyphen, such as imdsd or imdsd.internal (got "my host")`},
		{in: strings.Repeat("a.", 130), err: `allowed_hosts: must be a host name of at most 253 characters (got "` + strings.Repeat("a.", 16) + `…")`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := imds.ParseAllowedHost(tc.in)
			switch {
			case tc.err != "" && (err == nil || err.Error() != tc.err):
				t.Errorf("ParseAllowedHost(%q) = %q, %v; want error\n%s", tc.in, got, err, tc.err)
			case tc.err == "" && (err != nil || got != tc.want):
				t.Errorf("ParseAllowedHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// The Host check accepts the configured names and addresses, in any case
// and with any port, and still refuses every other name.
func TestAllowedHosts(t *testing.T) {
	f := newFixture(t, func(c *imds.Config) {
		c.AllowedClients = []netip.Prefix{netip.MustParsePrefix("169.254.170.0/24")}
		c.AllowedHosts = []string{"imdsd", "[fd00::5]", "192.0.2.7"}
	})
	f.publish()
	tok := f.token(t, "300")
	const creds = "/latest/meta-data/iam/security-credentials/imdsd-dev"
	tests := []struct {
		host   string
		status int
	}{
		{"imdsd", 200},
		{"imdsd:8169", 200},
		{"IMDSD:80", 200},
		{"[fd00::5]:80", 200},
		{"192.0.2.7:8169", 200},
		{"imdsd.evil.example", 403},
		{"evil.example", 403},
		{"imdsd.", 403},
		{"192.0.2.8", 403},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			w := f.do(req{path: creds, host: tc.host, remote: "169.254.170.9:40000", hdr: map[string]string{"X-aws-ec2-metadata-token": tok}})
			if w.Code != tc.status {
				t.Errorf("GET with Host %q: status %d, want %d", tc.host, w.Code, tc.status)
			}
		})
	}
	// A bad entry is refused by NewHandler with the same message.
	_, err := imds.NewHandler(imds.Config{RoleName: "r", Region: "us-east-1", AllowedHosts: []string{"imdsd:80"}}, zerolog.Nop())
	if want := `allowed_hosts: must be a host name without a port: the Host check ignores ports; give imdsd (got "imdsd:80")`; err == nil || err.Error() != want {
		t.Errorf("NewHandler(AllowedHosts: imdsd:80) = %v, want %s", err, want)
	}
}
