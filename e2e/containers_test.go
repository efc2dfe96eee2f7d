package e2e

// The container credentials endpoint (SPEC.md §9) end to end: the real
// binary serves roles with container: true on a loopback container_listen
// address, each with the token file it writes; the real clients' container
// providers, given only AWS_CONTAINER_CREDENTIALS_FULL_URI and one token
// variable (as printed by imdsd container-env), must get the role's
// credentials byte for byte, and be refused with a wrong or missing token.
//
// Which token variable: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE for the
// clients that read it (aws-sdk-go-v2 config ≥ 1.25, @aws-sdk/
// credential-provider-http ≥ 3.422 and the Node default chain ≥ 3.503.1);
// the token itself in AWS_CONTAINER_AUTHORIZATION_TOKEN for those that do
// not (Debian 12's AWS CLI 2.9.19 and botocore 1.29.27, and
// @smithy/credential-provider-imds's fromContainerMetadata), which also
// accept only 127.0.0.1 or localhost in a plain-http FULL_URI.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// containerTokenRE is what imdsd writes to a token file: 256 bits in
// URL-safe base64 without padding, and nothing else (no newline).
var containerTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// lineBuffer collects a child's output and tells waiters each time a line
// is complete. Safe for concurrent use.
type lineBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	newline chan struct{} // receives (without blocking the writer) after each write with a newline
}

func newLineBuffer() *lineBuffer { return &lineBuffer{newline: make(chan struct{}, 1)} }

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	if bytes.IndexByte(p, '\n') >= 0 {
		select {
		case b.newline <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the complete lines so far.
func (b *lineBuffer) lines() []string {
	s := b.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// cdaemon is one imdsd with a container endpoint. Its stdout is the export
// line and one "# container endpoint:" line per container_listen address.
type cdaemon struct {
	*daemon             // Endpoint is the IMDS one; cmd, done, stderr, outputs
	Containers []string // the container endpoints' base URLs, http://ADDR/roles/
	out        *lineBuffer
	AdminSock  string
}

// containerLineRE is the line imdsd prints per container listener.
var containerLineRE = regexp.MustCompile(`^# container endpoint: (http://\S+/roles/) \(imdsd container-env ROLE\)$`)

// launchContainerDaemon runs argv (bin/imdsd run …, or a wrapper that
// execs it) with env, waits for the export line and nContainer container
// endpoint lines, and registers a cleanup that stops it with SIGTERM and
// checks the exit status, that stdout held exactly those lines and that no
// noted secret reached the logs.
func launchContainerDaemon(t *testing.T, argv, env []string, nContainer int) *cdaemon {
	t.Helper()
	adminDir, err := os.MkdirTemp("", "imdsd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(adminDir) })
	d := &cdaemon{
		daemon: &daemon{stdout: newLockedBuffer(), stderr: newLockedBuffer(), done: make(chan struct{}), outputs: newOutputs()},
		out:    newLineBuffer(), AdminSock: filepath.Join(adminDir, "admin.sock"),
	}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Env = append(slices.Clone(env), "IMDSD_ADMIN_SOCKET="+d.AdminSock)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.stderr
	dieWithParent(d.cmd)
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", d.cmd, err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })

	timeout := time.NewTimer(startTimeout)
	defer timeout.Stop()
	for len(d.out.lines()) < 1+nContainer {
		select {
		case <-d.out.newline:
		case <-d.done:
			t.Fatalf("%s exited before printing its endpoints: %v\nstdout:\n%s\nstderr:\n%s", d.cmd, d.cmd.ProcessState, d.out.String(), d.stderr.String())
		case <-timeout.C:
			t.Fatalf("%s printed %d of %d endpoint lines within %v\nstdout:\n%s\nstderr:\n%s", d.cmd, len(d.out.lines()), 1+nContainer, startTimeout, d.out.String(), d.stderr.String())
		}
	}
	lines := d.out.lines()
	ep, ok := strings.CutPrefix(lines[0], "export AWS_EC2_METADATA_SERVICE_ENDPOINT=")
	if !ok {
		t.Fatalf("stdout line 1 = %q, want the export line", lines[0])
	}
	d.Endpoint = ep
	for _, l := range lines[1:] {
		m := containerLineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("stdout line %q, want %q", l, "# container endpoint: http://ADDR/roles/ (imdsd container-env ROLE)")
		}
		d.Containers = append(d.Containers, m[1])
	}
	return d
}

func (d *cdaemon) stop(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
		t.Errorf("imdsd exited on its own before the test ended: %v\nstderr:\n%s", d.cmd.ProcessState, d.stderr.String())
	default:
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("signal imdsd: %v", err)
		}
		select {
		case <-d.done:
		case <-time.After(stopTimeout):
			_ = d.cmd.Process.Kill()
			<-d.done
			t.Errorf("imdsd did not exit within %v of SIGTERM\nstderr:\n%s", stopTimeout, d.stderr.String())
			return
		}
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("imdsd exit status after SIGTERM = %v, want 0\nstderr:\n%s", d.cmd.ProcessState, d.stderr.String())
		}
	}
	if n := strings.Count(d.out.String(), "\n"); n != 1+len(d.Containers) || !strings.HasSuffix(d.out.String(), "\n") {
		t.Errorf("imdsd stdout = %q, want exactly the export line and %d container endpoint lines", d.out.String(), len(d.Containers))
	}
	d.checkSecrets(t, d.stderr.String())
}

// checkSecrets reports every noted secret found in logs.
func (o *outputs) checkSecrets(t *testing.T, logs string) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for v, what := range o.secrets {
		if strings.Contains(logs, v) {
			t.Errorf("imdsd logs (stderr) contain the %s", what)
		}
	}
}

// containerEnv is a client's whole environment for the container provider:
// PATH, LANG, an empty HOME (no shared config or credentials file exists),
// no proxy for loopback, and vars: the only AWS_* variables.
func containerEnv(t *testing.T, vars ...string) []string {
	t.Helper()
	return append([]string{
		"PATH=/usr/bin:/bin",
		"HOME=" + t.TempDir(),
		"LANG=C.UTF-8",
		"NO_PROXY=127.0.0.1,localhost,::1",
		"no_proxy=127.0.0.1,localhost,::1",
	}, vars...)
}

// containerClient is one real client's container provider.
type containerClient struct {
	name string
	// argv checks prerequisites and returns the command; bin is the built
	// containerclient.
	argv     func(t *testing.T, bin string) []string
	extraEnv []string // not AWS_*: helper switches
	// readsFile: the client reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
	// else only AWS_CONTAINER_AUTHORIZATION_TOKEN.
	readsFile bool
	parse     func(t *testing.T, out []byte) containerResult
	// expiryWindow is how much earlier than the served Expiration the
	// client reports its credentials to expire.
	expiryWindow time.Duration
}

// containerResult is what a client printed.
type containerResult struct {
	creds
	AccountID string // "" when the client does not expose it
}

var containerClients = []containerClient{
	{
		name:      "aws-sdk-go-v2",
		argv:      func(t *testing.T, bin string) []string { return []string{bin} },
		readsFile: true,
		parse: func(t *testing.T, out []byte) containerResult {
			t.Helper()
			var p struct {
				AccessKeyID, SecretAccessKey, SessionToken, Source, AccountID string
				CanExpire                                                     bool
				Expires                                                       time.Time
			}
			if err := json.Unmarshal(out, &p); err != nil {
				t.Fatalf("containerclient: output is not JSON: %v", err)
			}
			if p.Source != "CredentialsEndpointProvider" || !p.CanExpire {
				t.Errorf("containerclient: Source %q, CanExpire %v; want CredentialsEndpointProvider (endpointcreds), true", p.Source, p.CanExpire)
			}
			return containerResult{creds{p.AccessKeyID, p.SecretAccessKey, p.SessionToken, p.Expires}, p.AccountID}
		},
		// config wraps endpointcreds in a cache with ExpiryWindow 5m
		// (SPEC.md R9.8), which reports Expires 5 minutes early.
		expiryWindow: 5 * time.Minute,
	},
	{name: "aws-sdk-js-v3-fromHttp", argv: jsContainerArgv("http"), readsFile: true, parse: parseJSContainer},
	{name: "aws-sdk-js-v3-chain", argv: jsContainerArgv("chain"), readsFile: true, parse: parseJSContainer},
	{name: "aws-sdk-js-v3-fromContainerMetadata", argv: jsContainerArgv("metadata"), parse: parseJSContainer},
	{
		name: "boto3",
		argv: func(t *testing.T, _ string) []string {
			t.Helper()
			needFile(t, "/usr/bin/python3", "apt-get install -y python3")
			needFile(t, "/usr/lib/python3/dist-packages/boto3/__init__.py", "apt-get install -y python3-boto3")
			return []string{"/usr/bin/python3", "-I", "-c", boto3ContainerScript}
		},
		parse: func(t *testing.T, out []byte) containerResult {
			t.Helper()
			var p struct {
				AccessKey string `json:"access_key"`
				SecretKey string `json:"secret_key"`
				Token     string `json:"token"`
				Expiry    string `json:"expiry"`
				Method    string `json:"method"`
			}
			if err := json.Unmarshal(out, &p); err != nil {
				t.Fatalf("boto3: output is not JSON: %v", err)
			}
			if p.Method != "container-role" {
				t.Errorf("boto3: credentials method %q, want container-role (ContainerProvider)", p.Method)
			}
			exp, err := time.Parse(time.RFC3339, p.Expiry)
			if err != nil {
				t.Fatalf("boto3: expiry: %v", err)
			}
			return containerResult{creds: creds{p.AccessKey, p.SecretKey, p.Token, exp}}
		},
	},
	{
		name: "aws-cli-v2",
		argv: func(t *testing.T, _ string) []string { return awsCLI.argv(t) },
		// The CLI pages only on a terminal; AWS_PAGER would be a third
		// AWS_* variable.
		parse: func(t *testing.T, out []byte) containerResult {
			return containerResult{creds: awsCLI.parse(t, out).creds}
		},
	},
}

// boto3ContainerScript prints what boto3's default chain resolves, which
// with AWS_CONTAINER_CREDENTIALS_FULL_URI set is its ContainerProvider.
const boto3ContainerScript = `
import json, sys
import boto3, botocore
c = boto3.Session().get_credentials()
if c is None:
    sys.stderr.write("boto3: no credentials found\n")
    sys.exit(1)
f = c.get_frozen_credentials()
json.dump({"access_key": f.access_key, "secret_key": f.secret_key, "token": f.token,
           "expiry": c._expiry_time.isoformat(), "method": c.method, "botocore": botocore.__version__}, sys.stdout)
sys.stdout.write("\n")
`

func jsContainerArgv(mode string) func(t *testing.T, _ string) []string {
	return func(t *testing.T, _ string) []string {
		t.Helper()
		argv := jsArgv(mode)(t) // node and node_modules must be there
		return []string{argv[0], filepath.Join(filepath.Dir(argv[1]), "container-creds.mjs"), mode}
	}
}

func parseJSContainer(t *testing.T, out []byte) containerResult {
	t.Helper()
	var p struct {
		AccessKeyID     string  `json:"accessKeyId"`
		SecretAccessKey string  `json:"secretAccessKey"`
		SessionToken    string  `json:"sessionToken"`
		Expiration      *string `json:"expiration"`
		AccountID       *string `json:"accountId"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("container-creds.mjs: output is not JSON: %v", err)
	}
	if p.Expiration == nil {
		t.Fatal("container-creds.mjs: no expiration")
	}
	exp, err := time.Parse(time.RFC3339, *p.Expiration)
	if err != nil {
		t.Fatalf("container-creds.mjs: expiration: %v", err)
	}
	r := containerResult{creds: creds{p.AccessKeyID, p.SecretAccessKey, p.SessionToken, exp}}
	if p.AccountID != nil {
		r.AccountID = *p.AccountID
	}
	return r
}

// buildContainerClient builds e2e/containerclient as a static binary into
// dir and returns its path.
func buildContainerClient(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin on PATH
	if err != nil {
		t.Fatalf("the go command is needed to build e2e/containerclient: %v", err)
	}
	out := filepath.Join(dir, "containerclient")
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, "./containerclient")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./containerclient: %v\n%s", err, b)
	}
	return out
}

// containerSetup is a fake STS, the config file and the token directory of
// a daemon with a container endpoint on loopback.
type containerSetup struct {
	*rolesEnv
	tokenDir string
	listen   string // container_listen: 127.0.0.1:PORT
}

func newContainerSetup(t *testing.T) *containerSetup {
	t.Helper()
	s := &containerSetup{rolesEnv: newRolesEnv(t)}
	s.tokenDir = filepath.Join(t.TempDir(), "container-tokens")
	// A fixed port, picked free: imdsd container-env names the port of
	// container_listen, which with :0 only imdsd run's output knows. And
	// 127.0.0.1, the one host the old clients accept besides localhost.
	s.listen = freePort(t)
	return s
}

// write writes the config file with the container settings and roles.
func (s *containerSetup) write(t *testing.T, defaultRole string, roles ...string) {
	t.Helper()
	s.writeConfig(t, []string{
		"container_listen: [" + s.listen + "]",
		"container_token_dir: " + s.tokenDir,
	}, defaultRole, roles...)
}

func (s *containerSetup) start(t *testing.T) *cdaemon {
	t.Helper()
	d := launchContainerDaemon(t, []string{binPath(t), "run", "--config", s.config, "--log-format", "json"}, s.environ(true), 1)
	s.guardSecrets(t, &d.outputs)
	s.adminSock = d.AdminSock
	if want := "http://" + s.listen + "/roles/"; d.Containers[0] != want {
		t.Fatalf("container endpoint line names %s, want %s", d.Containers[0], want)
	}
	return d
}

func (s *containerSetup) tokenPath(role string) string {
	return filepath.Join(s.tokenDir, role, "token")
}

// token reads role's token file and checks it as imdsd must write it:
// mode 0640 in a 0750 directory, 43 URL-safe base64 characters, no
// newline. The token is noted as a secret of o.
func (s *containerSetup) token(t *testing.T, o *outputs, role string) string {
	t.Helper()
	p := s.tokenPath(role)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("token file of role %s: %v", role, err)
	}
	if !containerTokenRE.Match(b) {
		t.Errorf("token file %s holds %d bytes (trailing newline: %v), want exactly 43 URL-safe base64 characters", p, len(b), bytes.HasSuffix(b, []byte("\n")))
	}
	for path, want := range map[string]os.FileMode{p: 0o640, filepath.Dir(p): 0o750 | os.ModeDir, s.tokenDir: 0o750 | os.ModeDir} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	o.noteSecret(string(b), "container token of role "+role)
	return string(b)
}

// cget sends GET base+role with the Authorization header (none when
// token is nil).
func cget(t *testing.T, base, role string, token *string) (int, http.Header, []byte) {
	t.Helper()
	return crequest(t, http.MethodGet, base+role, token)
}

func crequest(t *testing.T, method, url string, token *string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != nil {
		req.Header["Authorization"] = []string{*token}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// containerDocOf is the exact body imdsd must answer for c (SPEC.md R9.6):
// the field order of the ECS task-role document.
func containerDocOf(c creds, roleARN, account string) []byte {
	b, err := json.Marshal(struct {
		AccessKeyId, SecretAccessKey, Token, Expiration, RoleArn, AccountId string
	}{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339), roleARN, account})
	if err != nil {
		panic(err)
	}
	return b
}

// wantJSONError wants a JSON error answer (SPEC.md R9.7) of status with
// Code code.
func wantJSONError(t *testing.T, what string, status int, hdr http.Header, body []byte, wantStatus int, code string) {
	t.Helper()
	var e struct{ Code, Message string }
	if status != wantStatus || hdr.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Message == "" || (code != "" && e.Code != code) {
		t.Errorf("%s: %d %s %q, want %d application/json with Code %q and a Message", what, status, hdr.Get("Content-Type"), body, wantStatus, code)
	}
}

// envVars parses `imdsd container-env` output: the KEY=VALUE lines, and the
// -v option of its comment.
func envVars(t *testing.T, out []byte) (vars map[string]string, mount string) {
	t.Helper()
	vars = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "#   -v "); ok {
			mount = v
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("imdsd container-env: line %q is not KEY=VALUE", line)
		}
		vars[k] = v
	}
	return vars, mount
}

func (s *containerSetup) containerEnvCmd(t *testing.T, args ...string) map[string]string {
	t.Helper()
	r := runClient(t, []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, binPath(t), append([]string{"container-env"}, append(args, "--config", s.config)...)...)
	if r.Err != nil {
		t.Fatalf("imdsd container-env %s: %v\nstderr:\n%s", strings.Join(args, " "), r.Err, r.Stderr)
	}
	vars, _ := envVars(t, r.Stdout)
	return vars
}

// TestContainerEndpoint: three roles on the container endpoint (two
// serving, one whose STS calls fail) and one that is not; the token files
// imdsd writes; the exact answers to right, wrong and missing tokens; and
// every real client's container provider with only the variables imdsd
// container-env prints.
func TestContainerEndpoint(t *testing.T) {
	t.Parallel()
	s := newContainerSetup(t)
	s.write(t, "alpha",
		s.alphaItem("container: true"),
		s.betaItem("container: true"),
		gammaItem(),
		deniedItem("container: true"),
	)
	d := s.start(t)
	base := d.Containers[0]
	alpha := s.onlyIssued(t, roleAlphaARN, "AssumeRole")
	beta := s.onlyIssued(t, roleBetaARN, "AssumeRoleWithWebIdentity")
	tokAlpha, tokBeta, tokDenied := s.token(t, &d.outputs, "alpha"), s.token(t, &d.outputs, "beta"), s.token(t, &d.outputs, "denied")
	if tokAlpha == tokBeta || tokAlpha == tokDenied || tokBeta == tokDenied {
		t.Errorf("two roles share a container token")
	}
	if _, err := os.Stat(filepath.Join(s.tokenDir, "gamma")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("role gamma (container: false) has a token directory (stat: %v)", err)
	}

	t.Run("http", func(t *testing.T) {
		for role, want := range map[string][]byte{
			"alpha": containerDocOf(alpha, roleAlphaARN, srcRoleAccount),
			"beta":  containerDocOf(beta, roleBetaARN, srcRoleAccount),
		} {
			tok := map[string]string{"alpha": tokAlpha, "beta": tokBeta}[role]
			code, hdr, body := cget(t, base, role, &tok)
			if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("GET /roles/%s: %d %s, want 200 application/json", role, code, hdr.Get("Content-Type"))
			}
			if !bytes.Equal(body, want) {
				var got creds
				var doc struct{ AccessKeyId, SecretAccessKey, Token, Expiration, RoleArn, AccountId string }
				_ = json.Unmarshal(body, &doc)
				got = creds{doc.AccessKeyId, doc.SecretAccessKey, doc.Token, time.Time{}}
				t.Errorf("GET /roles/%s: body differs from the issued set: %s; Expiration %q RoleArn %q AccountId %q (want %s)",
					role, redactedDiff(got, map[string]creds{"alpha": alpha, "beta": beta}[role]), doc.Expiration, doc.RoleArn, doc.AccountId, "the issued ones")
			}
		}
		bearer := "Bearer " + tokAlpha
		empty := ""
		for _, tc := range []struct {
			name, role string
			token      *string
			status     int
			code       string
		}{
			{"missing token", "alpha", nil, http.StatusUnauthorized, "MissingAuthorizationToken"},
			{"empty token", "alpha", &empty, http.StatusUnauthorized, "MissingAuthorizationToken"},
			{"another role's token", "alpha", &tokBeta, http.StatusForbidden, "AccessDenied"},
			{"token with a scheme", "alpha", &bearer, http.StatusForbidden, "AccessDenied"},
			{"role not served to containers", "gamma", &tokAlpha, http.StatusNotFound, "NotFound"},
			{"unknown role", "nosuchrole", &tokAlpha, http.StatusNotFound, "NotFound"},
			{"role without credentials", "denied", &tokDenied, http.StatusServiceUnavailable, "AccessDenied"},
		} {
			code, hdr, body := cget(t, base, tc.role, tc.token)
			wantJSONError(t, tc.name+": GET /roles/"+tc.role, code, hdr, body, tc.status, tc.code)
			if bytes.Contains(body, []byte(alpha.SecretAccessKey)) {
				t.Errorf("%s: the answer holds alpha's secret", tc.name)
			}
		}
		code, hdr, body := crequest(t, http.MethodPost, base+"alpha", &tokAlpha)
		wantJSONError(t, "POST /roles/alpha", code, hdr, body, http.StatusMethodNotAllowed, "")
		// A second Authorization header is refused like a wrong token.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"alpha", nil)
		req.Header["Authorization"] = []string{tokAlpha, tokAlpha}
		if resp, err := httpClient.Do(req); err != nil {
			t.Error(err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("two Authorization headers: %d, want 403", resp.StatusCode)
			}
		}
	})

	// What container-env prints is what the clients get, but for the token
	// file: on the host it is the role's own file, not a mount.
	vars := s.containerEnvCmd(t, "alpha", "--token-value", "--mount-dir", filepath.Dir(s.tokenPath("alpha")))
	if vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] != tokAlpha {
		t.Fatalf("imdsd container-env alpha --token-value: AWS_CONTAINER_AUTHORIZATION_TOKEN is not alpha's token (%d bytes)", len(vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"]))
	}
	delete(vars, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
	if diff := cmp.Diff(map[string]string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     base + "alpha",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": s.tokenPath("alpha"),
	}, vars); diff != "" {
		t.Fatalf("imdsd container-env alpha --token-value mismatch (-want +got):\n%s", diff)
	}
	vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = tokAlpha
	uri := "AWS_CONTAINER_CREDENTIALS_FULL_URI=" + vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
	fileVar := "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
	valueVar := "AWS_CONTAINER_AUTHORIZATION_TOKEN=" + vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
	wrongFile := "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + s.tokenPath("beta") // a valid token, of another role
	wrongValue := "AWS_CONTAINER_AUTHORIZATION_TOKEN=" + tokBeta

	bin := buildContainerClient(t, t.TempDir())
	keysOnly := cmpopts.IgnoreFields(creds{}, "Expiration")
	t.Run("clients", func(t *testing.T) {
		for _, c := range containerClients {
			argv := c.argv(t, bin)
			tokenVar, wrongVar := valueVar, wrongValue
			if c.readsFile {
				tokenVar, wrongVar = fileVar, wrongFile
			}
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				r := runClient(t, append(containerEnv(t, uri, tokenVar), c.extraEnv...), argv[0], argv[1:]...)
				if r.Err != nil {
					t.Fatalf("%s with %s: %v\nstderr:\n%s", c.name, strings.SplitN(tokenVar, "=", 2)[0], r.Err, r.Stderr)
				}
				got := c.parse(t, r.Stdout)
				d.noteSecret(got.SecretAccessKey, "SecretAccessKey (as "+c.name+" got it)")
				if !cmp.Equal(got.creds, alpha, keysOnly) {
					t.Errorf("%s: credentials differ from alpha's: %s", c.name, redactedDiff(got.creds, alpha))
				}
				if want := alpha.Expiration.Add(-c.expiryWindow); !got.Expiration.Equal(want) {
					t.Errorf("%s: expiration %v, want %v (served %v)", c.name, got.Expiration.UTC(), want.UTC(), alpha.Expiration.UTC())
				}
				if got.AccountID != "" && got.AccountID != srcRoleAccount {
					t.Errorf("%s: account %q, want %q", c.name, got.AccountID, srcRoleAccount)
				}
				t.Logf("%s: alpha's credentials with %s in %v", c.name, strings.SplitN(tokenVar, "=", 2)[0], r.End.Sub(r.Start).Round(time.Millisecond))

				for _, neg := range []struct {
					name string
					env  []string
				}{
					{"wrong token", []string{uri, wrongVar}},
					{"no token", []string{uri}},
				} {
					wantContainerClientFails(t, c.name+", "+neg.name, append(containerEnv(t, neg.env...), c.extraEnv...), argv, alpha)
				}
				if c.readsFile {
					// SPEC.md R9.4: the file wins over the value.
					r := runClient(t, append(containerEnv(t, uri, fileVar, wrongValue), c.extraEnv...), argv[0], argv[1:]...)
					if r.Err != nil {
						t.Errorf("%s with the right token file and a wrong token value: %v, want the file to win\nstderr:\n%s", c.name, r.Err, r.Stderr)
					} else if got := c.parse(t, r.Stdout); !cmp.Equal(got.creds, alpha, keysOnly) {
						t.Errorf("%s with the right token file and a wrong token value: credentials differ from alpha's", c.name)
					}
				} else {
					// The old clients do not read the file: given only the
					// file, they send no token and are refused. If a newer
					// version is installed, say so.
					r := runClient(t, append(containerEnv(t, uri, fileVar), c.extraEnv...), argv[0], argv[1:]...)
					if r.Err == nil {
						t.Logf("%s reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE in the installed version", c.name)
					} else {
						t.Logf("%s does not read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (as expected of this version): %s", c.name, lastLine(r.Stderr))
					}
				}
			})
		}
	})

	// The credentials work: the AWS CLI, given only the container
	// variables, signs GetCallerIdentity with them and STS (the fake one,
	// which checks the SigV4 signature against the issued secret) names
	// alpha's session.
	t.Run("aws-cli-sts-get-caller-identity", func(t *testing.T) {
		argv := awsCLI.argv(t)
		r := runClient(t, containerEnv(t, uri, valueVar), argv[0], "sts", "get-caller-identity",
			"--endpoint-url", s.sts.URL, "--region", "us-east-1", "--output", "json")
		if r.Err != nil {
			t.Fatalf("aws sts get-caller-identity: %v\nstderr:\n%s", r.Err, r.Stderr)
		}
		var id struct{ Account, Arn string }
		if err := json.Unmarshal(r.Stdout, &id); err != nil {
			t.Fatalf("aws sts get-caller-identity: %v\n%s", err, r.Stdout)
		}
		if id.Account != srcRoleAccount || !strings.Contains(id.Arn, ":assumed-role/e2e-alpha/") {
			t.Errorf("aws sts get-caller-identity: %+v, want alpha's session in %s", id, srcRoleAccount)
		}
		var signed bool
		for _, rq := range s.requests("GetCallerIdentity") {
			signed = signed || (rq.AccessKeyID == alpha.AccessKeyID && rq.Status == http.StatusOK)
		}
		if !signed {
			t.Errorf("STS got no GetCallerIdentity signed with alpha's access key and answered 200; requests: %v", s.summary())
		}
	})

	// Rotation: a new token in the same file; the old one is refused at
	// once, and a client that reads the file gets through.
	r := imdsdCmd(t, s.adminSock, "container-token", "rotate", "alpha")
	if r.Err != nil {
		t.Fatalf("imdsd container-token rotate alpha: %v\nstderr:\n%s", r.Err, r.Stderr)
	}
	tokNew := s.token(t, &d.outputs, "alpha")
	if tokNew == tokAlpha {
		t.Fatalf("the token file of alpha did not change on rotation")
	}
	sum := sha256.Sum256([]byte(tokNew))
	if id := hex.EncodeToString(sum[:6]); !bytes.Contains(r.Stdout, []byte(id)) {
		t.Errorf("imdsd container-token rotate printed %q, want the new token's id %s", r.Stdout, id)
	}
	code, hdr, body := cget(t, base, "alpha", &tokAlpha)
	wantJSONError(t, "the rotated-out token", code, hdr, body, http.StatusForbidden, "AccessDenied")
	if code, _, body := cget(t, base, "alpha", &tokNew); code != http.StatusOK || !bytes.Equal(body, containerDocOf(alpha, roleAlphaARN, srcRoleAccount)) {
		t.Errorf("the new token: %d, want 200 and alpha's document", code)
	}
	r = runClient(t, containerEnv(t, uri, fileVar), bin)
	if r.Err != nil {
		t.Errorf("aws-sdk-go-v2 with the same token file after the rotation: %v\nstderr:\n%s", r.Err, r.Stderr)
	}
	for _, rs := range status(t, s.adminSock, false).Roles {
		if rs.Name == "alpha" && rs.ContainerTokenID != hex.EncodeToString(sum[:6]) {
			t.Errorf("status: alpha's container_token_id = %q, want %x", rs.ContainerTokenID, sum[:6])
		}
	}
}

// wantContainerClientFails runs argv with env and wants a non-zero exit
// within giveUpWithin, without the role's secret on stdout.
func wantContainerClientFails(t *testing.T, what string, env, argv []string, role creds) {
	t.Helper()
	r := runClient(t, env, argv[0], argv[1:]...)
	took := r.End.Sub(r.Start)
	var exitErr *exec.ExitError
	if !errors.As(r.Err, &exitErr) {
		t.Errorf("%s: err = %v after %v, want a non-zero exit\nstdout:\n%s\nstderr:\n%s", what, r.Err, took, r.Stdout, r.Stderr)
		return
	}
	if took > giveUpWithin {
		t.Errorf("%s took %v to give up, want < %v", what, took, giveUpWithin)
	}
	if bytes.Contains(r.Stdout, []byte(role.SecretAccessKey)) || bytes.Contains(r.Stderr, []byte(role.SecretAccessKey)) {
		t.Errorf("%s printed the role's secret", what)
	}
	t.Logf("%s: refused as expected in %v: %s", what, took.Round(time.Millisecond), lastLine(r.Stderr))
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// TestContainerTokenNewline: imdsd never writes a token file with a
// trailing newline, and one it finds with one (as `echo TOKEN > file`
// writes) is refused, naming the file: at start (imdsd exits) and at a
// reload (the running configuration stays). The file is left as it was.
func TestContainerTokenNewline(t *testing.T) {
	t.Parallel()
	tok := "e2eHandWrittenToken_0123456789-abcdefghijklmnopqrstuvwxyz"
	plant := func(t *testing.T, s *containerSetup, role string) []byte {
		t.Helper()
		p := s.tokenPath(role)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		content := []byte(tok + "\n")
		if err := os.WriteFile(p, content, 0o640); err != nil {
			t.Fatal(err)
		}
		return content
	}
	wantUnchanged := func(t *testing.T, s *containerSetup, role string, content []byte) {
		t.Helper()
		if b, err := os.ReadFile(s.tokenPath(role)); err != nil || !bytes.Equal(b, content) {
			t.Errorf("%s changed (%v): imdsd must leave a file it refuses as it is", s.tokenPath(role), err)
		}
	}

	t.Run("start", func(t *testing.T) {
		t.Parallel()
		s := newContainerSetup(t)
		s.write(t, "alpha", s.alphaItem("container: true"))
		content := plant(t, s, "alpha")
		r := runClient(t, s.environ(true, "IMDSD_ADMIN_SOCKET="+filepath.Join(s.home, "admin.sock")), binPath(t), "run", "--config", s.config, "--log-format", "json")
		var exitErr *exec.ExitError
		if !errors.As(r.Err, &exitErr) || r.End.Sub(r.Start) > startTimeout {
			t.Fatalf("imdsd run with a token file ending in a newline: %v after %v, want a non-zero exit at once\nstdout:\n%s\nstderr:\n%s", r.Err, r.End.Sub(r.Start), r.Stdout, r.Stderr)
		}
		if bytes.Contains(r.Stdout, []byte("export ")) {
			t.Errorf("imdsd printed its endpoint although it refused to start: %q", r.Stdout)
		}
		if !bytes.Contains(r.Stderr, []byte(s.tokenPath("alpha"))) {
			t.Errorf("imdsd run (exit %d) does not name %s:\n%s", exitErr.ExitCode(), s.tokenPath("alpha"), r.Stderr)
		}
		if bytes.Contains(r.Stderr, []byte(tok)) {
			t.Errorf("imdsd's message holds the token")
		}
		wantUnchanged(t, s, "alpha", content)
		t.Logf("imdsd run refused (exit %d): %s", exitErr.ExitCode(), lastLine(r.Stderr))
	})

	t.Run("reload", func(t *testing.T) {
		t.Parallel()
		s := newContainerSetup(t)
		s.write(t, "alpha", s.alphaItem("container: true"))
		d := s.start(t)
		d.noteSecret(tok, "hand-written container token")
		tokAlpha := s.token(t, &d.outputs, "alpha")
		content := plant(t, s, "beta")

		s.write(t, "alpha", s.alphaItem("container: true"), s.betaItem("container: true"))
		r := imdsdCmd(t, s.adminSock, "reload", "--wait", "15s")
		var exitErr *exec.ExitError
		if !errors.As(r.Err, &exitErr) || exitErr.ExitCode() != 1 || !bytes.Contains(append(r.Stdout, r.Stderr...), []byte("refused")) {
			t.Errorf("imdsd reload with beta's token file ending in a newline: %v, want refused, exit 1\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
		}
		if all := string(r.Stdout) + string(r.Stderr); !strings.Contains(all, s.tokenPath("beta")) {
			t.Errorf("imdsd reload's refusal does not name %s:\nstdout:\n%s\nstderr:\n%s", s.tokenPath("beta"), r.Stdout, r.Stderr)
		}
		wantUnchanged(t, s, "beta", content)
		// The running configuration stays: alpha served, beta unknown.
		if code, _, body := cget(t, d.Containers[0], "alpha", &tokAlpha); code != http.StatusOK {
			t.Errorf("alpha after the refused reload: %d %s, want 200", code, body)
		}
		code, hdr, body := cget(t, d.Containers[0], "beta", &tok)
		wantJSONError(t, "beta after the refused reload", code, hdr, body, http.StatusNotFound, "NotFound")
		if code, _, _ := d.do(t, http.MethodGet, "/latest/meta-data/iam/security-credentials/beta", map[string]string{hdrToken: d.token(t)}); code != http.StatusNotFound {
			t.Errorf("IMDS role beta after the refused reload: %d, want 404", code)
		}
	})
}
