package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/rotator"
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
		// They used to bind every address, print http://[::]:P/ and then
		// refuse every request in the Host check.
		{"every address", []string{"run", "--listen", "0.0.0.0:8169", "--listen", "[::]:8169"}, exitUsage,
			"imdsd run: invalid configuration:\n" +
				"  listen: must be one address of this host, not every address; to serve containers or VMs, listen on the address they reach, such as 172.17.0.1:8169 on Docker's bridge, and allow their network with --allow-client 172.17.0.0/16 (allow_clients in the config file) (got \"0.0.0.0:8169\")\n" +
				"  listen: must be one address of this host, not every address; to serve containers or VMs, listen on the address they reach, such as 172.17.0.1:8169 on Docker's bridge, and allow their network with --allow-client 172.17.0.0/16 (allow_clients in the config file) (got \"[::]:8169\")\n"},
		{"max connections", []string{"run", "--max-connections", "8"}, exitUsage,
			"imdsd run: invalid configuration:\n  max_connections: must be 16..65536 (got \"8\")\n"},
		{"max connections too many", []string{"run", "--max-connections", "65537"}, exitUsage,
			"imdsd run: invalid configuration:\n  max_connections: must be 16..65536 (got \"65537\")\n"},
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

// Messages repeat at most 64 characters of a value, whichever check wrote
// them: a value pasted by mistake (a whole policy, a token) is not echoed.
func TestHugeValuesClipped(t *testing.T) {
	h := strings.Repeat("x", 1<<20)
	for _, args := range [][]string{
		{"run", "--region", h, "--role-name", h, "--listen", h, "--token-mode", h, "--allow-client", h, "--log-format", h, "--log-level", h},
		{"run", "--source", h},
		{"check-config", "--source", "assume-role", "--role-arn", h, "--tag", h, "--web-identity-ci", h, "--external-id", h},
		{"run", "--lisen", h},
	} {
		code, _, stderr := runArgs(args...)
		if code == exitOK {
			t.Errorf("%.60q: exit 0, want an error", args)
		}
		lines := strings.Split(stderr, "\n")
		for _, line := range lines {
			if strings.Contains(line, strings.Repeat("x", 65)) {
				t.Errorf("%.60q: a message repeats more than 64 characters of a value: %.200s…", args, line)
			}
		}
		if len(lines) < 2 {
			t.Errorf("%.60q: stderr %q, want the problems", args, stderr)
		}
	}
}

// max_connections reaches the listener: at the cap the longest-waiting
// connection is closed.
func TestServeMaxConnections(t *testing.T) {
	c := defaultConfig()
	c.Listen = []string{freeAddr(t)}
	c.AdminSocket = filepath.Join(t.TempDir(), "admin.sock")
	c.MaxConnections = minMaxConnections
	c = c.withDefaults(noEnv)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(c, rotator.NewDev(rotator.DevOptions{}), newLogger(io.Discard, "json", "info"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.serve(ctx, io.Discard, nil, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve() = %v", err)
		}
	}()
	<-d.ready
	var conns []net.Conn
	for range c.MaxConnections + 1 {
		conn, err := net.Dial("tcp", c.Listen[0])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	// A failure bound, not a measurement: without the cap the read blocks
	// until the server's header timeout.
	_ = conns[0].SetReadDeadline(time.Now().Add(time.Second + imds.ReadHeaderTimeout/2))
	if _, err := conns[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("first of %d connections: read %v, want EOF (closed at the cap)", len(conns), err)
	}
}

func TestHelpAndVersion(t *testing.T) {
	if code, out, _ := runArgs("version"); code != 0 || !strings.HasPrefix(out, "imdsd dev\n  commit: ") || !strings.Contains(out, "\n  go:     go1.") {
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
	// assume-role needs base credentials to sign with: keys in the file.
	_ = os.WriteFile(good, []byte("source: assume-role\nrole_arn: arn:aws:iam::123456789012:role/dev\n"+
		"access_key_id: AKIAIOSFODNN7EXAMPLE\nsecret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"), 0o600)
	_ = os.WriteFile(bad, []byte("source: assume-role\nrolearn: x\n"), 0o600)
	empty := dir + "/empty.yaml" // the packages' example: every line a comment
	_ = os.WriteFile(empty, []byte("# source: assume-role\n"), 0o600)
	devRoles := dir + "/roles.yaml"
	_ = os.WriteFile(devRoles, []byte("roles:\n- {name: a, source: assume-role, role_arn: arn:aws:iam::123456789012:role/a, "+
		"access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY}\n- {name: b, source: dev}\n"), 0o600)
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
		// --no-dev: the packages' postinst starts the service only with a real source.
		{[]string{"check-config", "--no-dev", "--config", good}, 0,
			good + ": valid: source assume-role, role dev, region us-east-1, listening on 127.0.0.1:8169, tokens required\n", ""},
		{[]string{"check-config", "--no-dev", "--config", empty}, 1, "",
			"imdsd check-config: " + empty + ": invalid:\n" +
				"  source: must be a real credential source, not dev's made-up credentials; set one (imdsd run --help lists them) (got dev)\n"},
		{[]string{"check-config", "--no-dev", "--config", devRoles}, 1, "",
			"imdsd check-config: " + devRoles + ": invalid:\n" +
				"  role b: source: must be a real credential source, not dev's made-up credentials; set one (imdsd run --help lists them) (got dev)\n"},
		{[]string{"check-config", "--config", empty}, 0,
			empty + ": valid: source dev, role imdsd-dev, region us-east-1, listening on 127.0.0.1:8169, tokens required\n", ""},
	}
	for _, tc := range tests {
		code, out, errOut := runArgs(tc.args...)
		if code != tc.code || out != tc.out || errOut != tc.errOut {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out, errOut, tc.code, tc.out, tc.errOut)
		}
	}
}

// Every bad flag and argument is reported at once, each on its own line.
func TestEveryUsageErrorAtOnce(t *testing.T) {
	code, _, stderr := runArgs("creds", "extra", "--format", "xml", "--bogus")
	want := "imdsd creds:\n" +
		"  --bogus: unknown flag\n" +
		"  --format: must be summary, process or env (got \"xml\")\n" +
		"  unexpected argument \"extra\": imdsd creds takes flags only\n" +
		"Run 'imdsd creds --help' for its flags and examples.\n"
	if code != exitUsage || stderr != want {
		t.Errorf("exit %d, stderr\n%s\nwant %d,\n%s", code, stderr, exitUsage, want)
	}
}

func TestVersionOf(t *testing.T) {
	mod := func(v string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/imdsd/imdsd", Version: v}}
	}
	for _, tc := range []struct {
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"v1.2.0-3-gabc1234", mod("(devel)"), "v1.2.0-3-gabc1234"}, // make build
		{"dev", mod("v1.2.3"), "v1.2.3"},                           // go install …@v1.2.3
		{"dev", mod("(devel)"), "dev"},                             // go build in a checkout
		{"dev", nil, "dev"},
	} {
		if got := versionOf(tc.stamped, tc.bi); got != tc.want {
			t.Errorf("versionOf(%q, %v) = %q, want %q", tc.stamped, tc.bi, got, tc.want)
		}
	}
}
