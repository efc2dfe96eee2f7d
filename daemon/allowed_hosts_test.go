package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// allowed_hosts is one setting reachable three ways, each layer replacing
// the list of the one below, and it reaches the IMDS handler's config.
func TestAllowedHostsLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("allowed_hosts: [imdsd, imdsd.internal]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"file", nil, map[string]string{"IMDSD_CONFIG": file}, []string{"imdsd", "imdsd.internal"}},
		{"env beats file", nil, map[string]string{"IMDSD_CONFIG": file, "IMDSD_ALLOWED_HOSTS": "sidecar, 10.89.0.5"}, []string{"sidecar", "10.89.0.5"}},
		{"flag beats env", []string{"--allowed-host", "a", "--allowed-host", "b"}, map[string]string{"IMDSD_ALLOWED_HOSTS": "sidecar"}, []string{"a", "b"}},
		{"default none", nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := loadConfigArgs(tc.args, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.AllowedHosts); diff != "" {
				t.Errorf("AllowedHosts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, c.imdsConfig().AllowedHosts); diff != "" {
				t.Errorf("imdsConfig().AllowedHosts (-want +got):\n%s", diff)
			}
		})
	}
}

// Every bad allowed_hosts value is reported at once, with the fix; the
// setting belongs to the whole daemon, not to a role.
func TestAllowedHostsBad(t *testing.T) {
	code, _, stderr := runArgs("run", "--allowed-host", "http://imdsd:8169/", "--allowed-host", "imdsd:8169",
		"--allowed-host", "*.internal", "--allowed-host", "0.0.0.0", "--allowed-host", "10.89.0.5:80", "--allowed-host", "")
	want := "imdsd run: invalid configuration:\n" +
		"  allowed_hosts: must be a host name such as imdsd or an IP address, not a URL; give only the host part (got \"http://imdsd:8169/\")\n" +
		"  allowed_hosts: must be a host name without a port: the Host check ignores ports; give imdsd (got \"imdsd:8169\")\n" +
		"  allowed_hosts: must be an exact host name: patterns would let DNS-rebinding names through; list each name (got \"*.internal\")\n" +
		"  allowed_hosts: must be an address clients connect to; 0.0.0.0 and :: name no host (got \"0.0.0.0\")\n" +
		"  allowed_hosts: must be an address without a port: the Host check ignores ports; give 10.89.0.5 (got \"10.89.0.5:80\")\n" +
		"  allowed_hosts: must be a host name such as imdsd or an IP address, not empty (got \"\")\n"
	if code != exitUsage || stderr != want {
		t.Errorf("run with bad --allowed-host: exit %d, stderr\n%s\nwant exit %d, stderr\n%s", code, stderr, exitUsage, want)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "roles.yaml")
	if err := os.WriteFile(file, []byte("roles:\n  - name: a\n    allowed_hosts: [imdsd]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadConfigArgs([]string{"--config", file}, noEnv)
	if want := file + ":3: roles[0]: allowed_hosts: applies to the whole daemon; set it at the top level, not in a role"; err == nil || err.Error() != want {
		t.Errorf("allowed_hosts in a role: %v, want %s", err, want)
	}
}
