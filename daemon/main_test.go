package daemon

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRunBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string // exact stderr
	}{
		{"no command", nil, exitUsage, usage()},
		{"unknown command", []string{"serve"}, exitUsage, "imdsd: unknown command \"serve\"\n\n" + usage()},
		{"unknown source", []string{"run", "--source", "vault"}, exitUsage,
			"imdsd run: invalid configuration:\n  source: must be one of dev, assume-role, web-identity, saml, session-token, federation-token, profile, static (got \"vault\")\n"},
		{"every problem at once", []string{"run", "--listen", "0.0.0.0", "--listen", "example.com:80", "--listen", "127.0.0.1:99999",
			"--token-mode", "v1", "--allow-client", "10.0.0.0/33", "--dev-lifetime", "15m", "--log-format", "xml", "--log-level", "trace"}, exitUsage,
			"imdsd run: invalid configuration:\n" +
				"  listen: must be host:port with an IP address or localhost, e.g. 127.0.0.1:8169 or [::1]:8169 (got \"0.0.0.0\")\n" +
				"  listen: host must be an IP address or localhost, e.g. 127.0.0.1:8169 or [::1]:8169 (got \"example.com:80\")\n" +
				"  listen: port must be a number 0..65535 (got \"127.0.0.1:99999\")\n" +
				"  token_mode: must be required or optional (got \"v1\")\n" +
				"  allow_client: must be a network in CIDR form such as 172.17.0.0/16 (got \"10.0.0.0/33\")\n" +
				"  dev_lifetime: must be 45m..36h so clients always get credentials with 30 minutes left (got \"15m0s\")\n" +
				"  log_format: must be auto, json or console (got \"xml\")\n" +
				"  log_level: must be debug, info, warn or error (got \"trace\")\n"},
		{"duplicate listen", []string{"run", "--listen", "127.0.0.1:8169", "--listen", "127.0.0.1:8169"}, exitUsage,
			"imdsd run: invalid configuration:\n  listen: each address once (got \"127.0.0.1:8169\")\n"},
		{"bad metadata", []string{"run", "--role-name", "my role", "--region", "Frankfurt"}, exitUsage,
			"imdsd run: invalid configuration:\n" +
				"  role_name: 1..64 characters of [A-Za-z0-9+=,.@_-] (got \"my role\")\n" +
				"  region: an AWS region such as us-east-1 (got \"Frankfurt\")\n"},
		{"stray argument", []string{"run", "dev"}, exitUsage, "imdsd run: unexpected argument \"dev\": imdsd run takes flags only\nRun 'imdsd run --help' for its flags and examples.\n"},
		{"unknown flag", []string{"run", "--lisen=127.0.0.1:1"}, exitUsage,
			"imdsd run: --lisen: unknown flag; did you mean --listen?\nRun 'imdsd run --help' for its flags and examples.\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runArgs(tc.args...)
			if code != tc.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if tc.want != "" && stderr != tc.want {
				t.Errorf("stderr =\n%s\nwant\n%s", stderr, tc.want)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	if code, out, _ := runArgs("version"); code != 0 || out != "imdsd dev\n" {
		t.Errorf("version: %d %q", code, out)
	}
	// Help asked for is output, not an error: stdout, exit 0.
	if code, out, errOut := runArgs("run", "--help"); code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "-listen") || errOut != "" {
		t.Errorf("run --help: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, errOut := runArgs("--help"); code != 0 || out != usage() || errOut != "" {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.yaml"
	bad := dir + "/bad.yaml"
	_ = os.WriteFile(good, []byte("source: assume-role\nrole_arn: arn:aws:iam::123456789012:role/dev\n"), 0o600)
	_ = os.WriteFile(bad, []byte("source: assume-role\nrolearn: x\n"), 0o600)
	tests := []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"check-config", "--config", good}, 0,
			good + ": valid: source assume-role, role dev, region us-east-1, listening on 127.0.0.1:8169, tokens required\n", ""},
		{[]string{"check-config", "--config", bad}, 1, "",
			"imdsd check-config: " + bad + ": invalid:\n  " + bad + ":2: unknown key \"rolearn\"; did you mean \"role_arn\"?\n"},
		{[]string{"check-config", "--config", good, "--duration", "10m", "--role-session-name", "a"}, 1, "",
			"imdsd check-config: " + good + ": invalid:\n" +
				"  duration: at least 45m so clients always get credentials with 30 minutes left; allow shorter with --allow-short-duration (got \"10m0s\")\n" +
				"  role_session_name: 2..64 characters of [\\w+=,.@-] (got \"a\")\n"},
	}
	for _, tc := range tests {
		code, out, errOut := runArgs(tc.args...)
		if code != tc.code || out != tc.out || errOut != tc.errOut {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out, errOut, tc.code, tc.out, tc.errOut)
		}
	}
}
