//go:build linux

package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/imdsd/imdsd/rotator/ststest"
)

// Linux only: the archive is built for this host as linux's (tar.gz), and
// running reads /proc.
//
// These tests run the GitHub Action of action.yml, its real JavaScript
// under the local node, against a simulated runner: the step's INPUT_*
// variables filled in from action.yml's defaults as the runner does,
// temporary GITHUB_ENV, GITHUB_STATE and GITHUB_OUTPUT files, and one
// loopback HTTP server playing both the runner's OIDC token endpoint
// (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN) and the release downloads
// (release-url, with the redirects GitHub answers), serving an archive
// built from IMDSD_BIN in `make dist`'s layout. imdsd reaches the fake STS
// through IMDSD_STS_ENDPOINT in the step's environment, which it reads
// like any IMDSD_* variable: the action does not know it is tested.

const (
	actVersion  = "v9.8.7-e2e" // the release tag, and VERSION in the archive names
	actReqToken = "e2e-runner-request-token-Hq7sK2pX0w"
	actRegion   = "eu-west-3"
	// actTimeout bounds one step (node main.js or post.js); the action's
	// own bound on imdsd's start is 60 s.
	actTimeout = 90 * time.Second
)

// actionMeta is the part of action.yml the runner reads.
type actionMeta struct {
	Inputs map[string]struct {
		Default  *string `yaml:"default"`
		Required bool    `yaml:"required"`
	} `yaml:"inputs"`
	Outputs map[string]any `yaml:"outputs"`
	Runs    struct {
		Using  string `yaml:"using"`
		Main   string `yaml:"main"`
		Post   string `yaml:"post"`
		PostIf string `yaml:"post-if"`
	} `yaml:"runs"`
}

func readActionMeta(t *testing.T) actionMeta {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var m actionMeta
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return m
}

// fakeRunner is the simulated runner and release host of one test.
type fakeRunner struct {
	*httptest.Server
	meta actionMeta
	sts  *srcEnv
	bin  string // IMDSD_BIN
	dir  string // RUNNER_TEMP, RUNNER_TOOL_CACHE, the environment files, HOME

	mu        sync.Mutex
	releases  map[string]map[string][]byte // tag → asset → content
	downloads []string                     // paths of the release host asked for, in order
	tokens    []string                     // OIDC tokens handed out, in order
	audiences []string                     // the audience of each token request
}

func newFakeRunner(t *testing.T) *fakeRunner {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is missing (%v): the action runs on it; apt-get install -y nodejs", err)
	}
	r := &fakeRunner{
		meta:     readActionMeta(t),
		sts:      newSrcEnv(t, ststest.WithRole(ststest.Role{ARN: srcRoleARN, WebIdentityAudience: srcAudience})),
		bin:      binPath(t),
		dir:      t.TempDir(),
		releases: map[string]map[string][]byte{},
	}
	mux := http.NewServeMux()
	// GitHub's release download URLs answer with a redirect to an object
	// store; latest/download/NAME with one to the newest release's asset.
	mux.HandleFunc("GET /releases/latest/download/{name}", func(w http.ResponseWriter, req *http.Request) {
		r.note(req)
		http.Redirect(w, req, "/objects/"+actVersion+"/"+req.PathValue("name"), http.StatusFound)
	})
	mux.HandleFunc("GET /releases/download/{tag}/{name}", func(w http.ResponseWriter, req *http.Request) {
		r.note(req)
		http.Redirect(w, req, "/objects/"+req.PathValue("tag")+"/"+req.PathValue("name"), http.StatusFound)
	})
	mux.HandleFunc("GET /objects/{tag}/{name}", func(w http.ResponseWriter, req *http.Request) {
		r.note(req)
		r.mu.Lock()
		b, ok := r.releases[req.PathValue("tag")][req.PathValue("name")]
		r.mu.Unlock()
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	})
	// The runner's ID token endpoint, as @actions/core getIDToken calls it.
	mux.HandleFunc("GET /_apis/pipelines/workflows/run1/idtoken", func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer "+actReqToken {
			http.Error(w, `{"message":"bad runner token"}`, http.StatusUnauthorized)
			return
		}
		q := req.URL.Query()
		aud := q.Get("audience")
		if q.Get("api-version") != "2.0" || aud == "" {
			http.Error(w, `{"message":"want api-version=2.0 and an audience"}`, http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		n := len(r.tokens) + 1
		tok := ststest.JWT(map[string]any{
			"iss": "https://token.actions.githubusercontent.com",
			"sub": "repo:imdsd/imdsd:ref:refs/heads/main",
			"aud": aud,
			"jti": fmt.Sprintf("e2e-token-%d", n),
			"iat": time.Now().Unix(),
			"exp": time.Now().Add(5 * time.Minute).Unix(),
		})
		r.tokens = append(r.tokens, tok)
		r.audiences = append(r.audiences, aud)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"count": len(tok), "value": tok})
	})
	r.Server = httptest.NewServer(mux)
	t.Cleanup(r.Close)
	return r
}

func (r *fakeRunner) note(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.downloads = append(r.downloads, req.URL.Path)
}

func (r *fakeRunner) seen() (downloads, tokens, audiences []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.downloads), slices.Clone(r.tokens), slices.Clone(r.audiences)
}

// hostAsset is this host's archive name in release version (make dist
// names platforms as Go does).
func hostAsset(version string) string {
	return "imdsd-" + version + "-linux-" + runtime.GOARCH + ".tar.gz"
}

// hostArchive is this host's release archive: a tar.gz of top/ holding
// the binary at bin, LICENSE, README.md and units/, as `make dist` packs
// it. It is built once per test binary (gzip of the binary under -race
// takes seconds).
var hostArchive = func() func(bin, top string) ([]byte, error) {
	var (
		once sync.Once
		b    []byte
		err  error
	)
	return func(bin, top string) ([]byte, error) {
		once.Do(func() { b, err = buildArchive(bin, top) })
		return b, err
	}
}()

func buildArchive(bin, top string) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	add := func(name string, mode int64, src string) error {
		h := &tar.Header{Name: name, Mode: mode, ModTime: time.Now(), Typeflag: tar.TypeDir, Format: tar.FormatGNU}
		var body []byte
		if src != "" {
			if body, err = os.ReadFile(src); err != nil {
				return err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	entries := []struct {
		name string
		mode int64
		src  string
	}{
		{top + "/", 0o755, ""},
		{top + "/imdsd", 0o755, bin},
		{top + "/LICENSE", 0o644, "../LICENSE"},
		{top + "/README.md", 0o644, "../README.md"},
		{top + "/units/", 0o755, ""},
		{top + "/units/imdsd.service", 0o644, "../systemd/imdsd.service"},
		{top + "/units/imdsd.socket", 0o644, "../systemd/imdsd.socket"},
		{top + "/units/imdsd.plist", 0o644, "../launchd/imdsd.plist"},
	}
	for _, e := range entries {
		if err := add(e.name, e.mode, e.src); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// publish builds the release actVersion as `make dist` lays it out: this
// host's archive (imdsd-VERSION-OS-ARCH/ holding the binary, LICENSE,
// README.md and units/), stand-ins for the other platforms and the SBOM,
// and SHA256SUMS over all of them in sha256sum's format. wrongSum, if not
// "", is listed for this host's archive instead of its real sum. It
// returns the archive's name and real sum.
func (r *fakeRunner) publish(t *testing.T, wrongSum string) (asset, sum string) {
	t.Helper()
	asset = hostAsset(actVersion)
	archive, err := hostArchive(r.bin, strings.TrimSuffix(asset, ".tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"imdsd-" + actVersion + ".cdx.json": []byte(`{"bomFormat":"CycloneDX"}`)}
	for _, p := range []string{"darwin-amd64", "darwin-arm64", "linux-amd64", "linux-arm64"} {
		files["imdsd-"+actVersion+"-"+p+".tar.gz"] = []byte("an archive for " + p)
	}
	files["imdsd-"+actVersion+"-windows-amd64.zip"] = []byte("an archive for windows-amd64")
	files[asset] = archive
	names := slices.Sorted(maps.Keys(files))
	var sums strings.Builder
	for _, n := range names {
		s := sha256.Sum256(files[n])
		h := hex.EncodeToString(s[:])
		if n == asset {
			sum = h
			if wrongSum != "" {
				h = wrongSum
			}
		}
		fmt.Fprintf(&sums, "%s  %s\n", h, n)
	}
	files["SHA256SUMS"] = []byte(sums.String())
	r.mu.Lock()
	r.releases[actVersion] = files
	r.mu.Unlock()
	return asset, sum
}

// stepResult is one step's outcome, with the environment files parsed.
type stepResult struct {
	stdout, stderr string
	err            error
	took           time.Duration
	env, outputs   map[string]string
	state          map[string]string
}

// inputs are the step's INPUT_* variables: action.yml's defaults, then
// with, as the runner passes them (INPUT_ + the name upper-cased, spaces to
// underscores, hyphens kept).
func (r *fakeRunner) inputs(with map[string]string) []string {
	var env []string
	for name, in := range r.meta.Inputs {
		v, ok := with[name]
		if !ok && in.Default != nil {
			v, ok = *in.Default, true
		}
		if ok {
			env = append(env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(name, " ", "_"))+"="+v)
		}
	}
	return env
}

// step runs `node SCRIPT` as the runner runs an action's main or post:
// in the workspace, with the environment files, RUNNER_TEMP and
// RUNNER_TOOL_CACHE, the inputs, and extra (KEY=VALUE).
func (r *fakeRunner) step(t *testing.T, script string, with map[string]string, extra ...string) stepResult {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", script))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"temp", "tool-cache", "home", "workspace"} {
		if err := os.MkdirAll(filepath.Join(r.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{}
	for _, f := range []string{"GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STATE"} {
		p := filepath.Join(r.dir, "temp", "_runner_file_commands", strings.ToLower(f)+"_"+filepath.Base(script))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		files[f] = p
	}
	env := append([]string{
		"PATH=/usr/bin:/bin",
		"HOME=" + filepath.Join(r.dir, "home"),
		"GITHUB_ACTIONS=true",
		"RUNNER_TEMP=" + filepath.Join(r.dir, "temp"),
		"RUNNER_TOOL_CACHE=" + filepath.Join(r.dir, "tool-cache"),
		"GITHUB_WORKSPACE=" + filepath.Join(r.dir, "workspace"),
		"GITHUB_ENV=" + files["GITHUB_ENV"],
		"GITHUB_OUTPUT=" + files["GITHUB_OUTPUT"],
		"GITHUB_STATE=" + files["GITHUB_STATE"],
	}, r.inputs(with)...)
	env = append(env, extra...)

	ctx, cancel := context.WithTimeout(t.Context(), actTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = env
	cmd.Dir = filepath.Join(r.dir, "workspace")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	res := stepResult{err: cmd.Run(), took: time.Since(start)}
	if ctx.Err() != nil {
		res.err = fmt.Errorf("node %s: killed after %v: %w", filepath.Base(script), actTimeout, errors.Join(res.err, ctx.Err()))
	}
	res.stdout, res.stderr = stdout.String(), stderr.String()
	res.env = parseEnvFile(t, files["GITHUB_ENV"])
	res.outputs = parseEnvFile(t, files["GITHUB_OUTPUT"])
	res.state = parseEnvFile(t, files["GITHUB_STATE"])
	t.Logf("node %s: %v in %v\n%s%s", filepath.Base(script), res.err, res.took.Round(time.Millisecond), res.stdout, res.stderr)
	return res
}

// parseEnvFile reads an environment file as the runner does: NAME=VALUE
// lines and NAME<<DELIMITER heredocs; a later NAME wins.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				t.Fatalf("%s: %s: heredoc without its closing delimiter", path, name)
			}
			m[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is neither NAME=VALUE nor NAME<<DELIMITER", path, line)
		}
		m[name] = val
	}
	return m
}

// stateEnv is the STATE_* environment the runner gives post.
func stateEnv(state map[string]string) []string {
	var env []string
	for k, v := range state {
		env = append(env, "STATE_"+k+"="+v)
	}
	return env
}

// stepEnv is what the runner gives every step of the job besides the
// environment files: the OIDC request variables (present with
// "permissions: id-token: write") and the STS endpoint for imdsd.
func (r *fakeRunner) stepEnv() []string {
	return []string{
		"ACTIONS_ID_TOKEN_REQUEST_URL=" + r.URL + "/_apis/pipelines/workflows/run1/idtoken?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + actReqToken,
		"IMDSD_STS_ENDPOINT=" + r.sts.sts.URL,
	}
}

// running reports whether pid is a live process (a zombie is not: imdsd's
// parent, the main step, is gone, and whoever adopted it may not reap).
func running(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// killOnCleanup makes sure the imdsd a step started dies with the test.
func killOnCleanup(t *testing.T, state map[string]string) int {
	t.Helper()
	var pid int
	if _, err := fmt.Sscan(state["pid"], &pid); err != nil || pid <= 0 {
		return 0
	}
	t.Cleanup(func() {
		if running(pid) {
			t.Errorf("imdsd (pid %d) still running at the end of the test; killed", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid
}

// jobEnv is the environment of a later step's AWS client: only what the
// action exported, with PATH and an empty HOME.
func jobEnv(t *testing.T, exported map[string]string, extra ...string) []string {
	t.Helper()
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	for k, v := range exported {
		env = append(env, k+"="+v)
	}
	return append(env, extra...)
}

// checkClients wants the Go SDK (default chain and region) and the AWS CLI
// v2 (export-credentials, and a signed sts get-caller-identity), each with
// only exported in its environment, to have exactly want.
func checkClients(t *testing.T, r *fakeRunner, exported map[string]string, want creds) {
	t.Helper()
	keysOnly := cmpopts.IgnoreFields(creds{}, "Expiration")

	argv := goSDK.argv(t)
	gr := runClient(t, jobEnv(t, exported, goSDK.extraEnv...), argv[0], argv[1:]...)
	if gr.Err != nil {
		t.Fatalf("aws-sdk-go-v2: %v\nstderr:\n%s", gr.Err, gr.Stderr)
	}
	g := goSDK.parse(t, gr.Stdout)
	if !cmp.Equal(g.creds, want, keysOnly) {
		t.Errorf("aws-sdk-go-v2 credentials differ from the ones STS issued last: %s", redactedDiff(g.creds, want))
	}
	if g.Region != actRegion {
		t.Errorf("aws-sdk-go-v2: IMDS region = %q, want %q", g.Region, actRegion)
	}

	argv = awsCLI.argv(t)
	cr := runClient(t, jobEnv(t, exported, awsCLI.extraEnv...), argv[0], argv[1:]...)
	if cr.Err != nil {
		t.Fatalf("aws configure export-credentials: %v\nstderr:\n%s", cr.Err, cr.Stderr)
	}
	if c := awsCLI.parse(t, cr.Stdout).creds; !cmp.Equal(c, want) {
		t.Errorf("AWS CLI credentials differ from the ones STS issued last: %s (expiration %v, want %v)", redactedDiff(c, want), c.Expiration, want.Expiration)
	}

	// A signed call with them: the fake STS knows the session it issued.
	id := runClient(t, jobEnv(t, exported, "AWS_PAGER="), "/usr/bin/aws", "sts", "get-caller-identity",
		"--endpoint-url", r.sts.sts.URL, "--output", "json")
	if id.Err != nil {
		t.Fatalf("aws sts get-caller-identity: %v\nstderr:\n%s", id.Err, id.Stderr)
	}
	var who struct{ Account, Arn string }
	if err := json.Unmarshal(id.Stdout, &who); err != nil {
		t.Fatalf("aws sts get-caller-identity: %v: %s", err, id.Stdout)
	}
	wantARN := "arn:aws:sts::" + srcRoleAccount + ":assumed-role/" + srcRoleName + "/GitHubActions"
	if who.Account != srcRoleAccount || who.Arn != wantARN {
		t.Errorf("aws sts get-caller-identity = %s %s, want %s %s", who.Account, who.Arn, srcRoleAccount, wantARN)
	}
	if rs := r.sts.requests("GetCallerIdentity"); len(rs) == 0 || rs[len(rs)-1].AccessKeyID != want.AccessKeyID {
		t.Errorf("GetCallerIdentity was not signed with the served key")
	}
}

// adminPost POSTs to path on imdsd's admin socket.
func adminPost(t *testing.T, sock, path string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Post("http://imdsd"+path, "application/json", nil)
	if err != nil {
		t.Fatalf("POST %s on %s: %v", path, sock, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}

func TestGitHubAction(t *testing.T) {
	t.Parallel()
	m := readActionMeta(t)
	if m.Runs.Using != "node24" || m.Runs.Main == "" || m.Runs.Post == "" || m.Runs.PostIf != "always()" {
		t.Errorf("action.yml runs = %+v, want node24 with main, post and post-if: always()", m.Runs)
	}
	for _, name := range []string{"role-to-assume", "aws-region", "audience", "role-session-name", "role-duration-seconds", "version"} {
		if _, ok := m.Inputs[name]; !ok {
			t.Errorf("action.yml has no input %q (configure-aws-credentials' names)", name)
		}
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"job", testActionJob},
		{"wrong-checksum", testActionWrongChecksum},
		{"no-id-token-permission", testActionNoIDToken},
		{"unknown-version", testActionUnknownVersion},
		{"role-refuses-token", testActionRoleRefuses},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// testActionJob is a whole job: main, clients in later steps, a rotation
// that takes a second OIDC token, clients again, post.
func testActionJob(t *testing.T) {
	r := newFakeRunner(t)
	asset, sum := r.publish(t, "")
	with := map[string]string{
		"role-to-assume": srcRoleARN,
		"aws-region":     actRegion,
		"release-url":    r.URL + "/releases",
	}
	main := r.step(t, r.meta.Runs.Main, with, r.stepEnv()...)
	pid := killOnCleanup(t, main.state)
	if main.err != nil {
		t.Fatalf("main step failed: %v", main.err)
	}
	if strings.Contains(main.stdout, "::error::") || strings.Contains(main.stdout, "::warning::") {
		t.Errorf("main step annotated errors or warnings:\n%s", main.stdout)
	}
	if !strings.Contains(main.stdout, sum) {
		t.Errorf("main step did not report the verified SHA-256 %s", sum)
	}
	downloads, tokens, audiences := r.seen()
	wantDownloads := []string{
		"/releases/latest/download/SHA256SUMS", "/objects/" + actVersion + "/SHA256SUMS",
		"/releases/download/" + actVersion + "/" + asset, "/objects/" + actVersion + "/" + asset,
	}
	if diff := cmp.Diff(wantDownloads, downloads); diff != "" {
		t.Errorf("release downloads (-want +got):\n%s", diff)
	}
	if len(tokens) != 1 || audiences[0] != srcAudience {
		t.Fatalf("OIDC token requests: %d with audiences %q, want 1 with %q", len(tokens), audiences, srcAudience)
	}
	if !running(pid) {
		t.Fatalf("imdsd (pid %q in GITHUB_STATE) is not running after the main step", main.state["pid"])
	}
	if _, err := os.Stat(filepath.Join(r.dir, "tool-cache", "imdsd", actVersion, "amd64", "imdsd")); runtime.GOARCH == "amd64" && err != nil {
		t.Errorf("imdsd not in the tool cache: %v", err)
	}

	endpoint := main.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
	want := map[string]string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint,
		"AWS_EC2_METADATA_V1_DISABLED":      "true",
		"AWS_REGION":                        actRegion,
		"AWS_DEFAULT_REGION":                actRegion,
	}
	if diff := cmp.Diff(want, main.env); diff != "" || !strings.HasPrefix(endpoint, "http://127.0.0.1:") || !strings.HasSuffix(endpoint, "/") {
		t.Fatalf("GITHUB_ENV (-want +got):\n%s\nwant the endpoint http://127.0.0.1:PORT/", diff)
	}
	if main.outputs["endpoint"] != endpoint || main.outputs["aws-account-id"] != srcRoleAccount || main.outputs["version"] != actVersion {
		t.Errorf("GITHUB_OUTPUT = %v, want endpoint %s, aws-account-id %s, version %s", main.outputs, endpoint, srcRoleAccount, actVersion)
	}
	for name := range main.outputs {
		if _, ok := r.meta.Outputs[name]; !ok {
			t.Errorf("output %q is not declared in action.yml", name)
		}
	}
	p := r.sts.onlyRequest(t, "AssumeRoleWithWebIdentity", "")
	wantParams(t, "AssumeRoleWithWebIdentity", p, "RoleArn", srcRoleARN, "RoleSessionName", "GitHubActions",
		"WebIdentityToken", tokens[0], "DurationSeconds", "3600")
	first := r.sts.lastIssued(t, "AssumeRoleWithWebIdentity")
	checkClients(t, r, main.env, first)

	// A forced rotation (imdsd's admin API, POST /refresh): imdsd asks
	// the runner for a new token, as at every scheduled refresh.
	sock := main.state["admin_socket"]
	adminPost(t, sock, "/refresh")
	deadline := time.Now().Add(20 * time.Second)
	for len(r.sts.requests("AssumeRoleWithWebIdentity")) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_, tokens, _ = r.seen()
	rs := r.sts.requests("AssumeRoleWithWebIdentity")
	if len(rs) != 2 || len(tokens) != 2 {
		t.Fatalf("after POST /refresh: %d AssumeRoleWithWebIdentity and %d OIDC token requests, want 2 each", len(rs), len(tokens))
	}
	if tokens[0] == tokens[1] || rs[1].Params.Get("WebIdentityToken") != tokens[1] {
		t.Errorf("the rotation did not use a second, new OIDC token")
	}
	second := r.sts.lastIssued(t, "AssumeRoleWithWebIdentity")
	if second.AccessKeyID == first.AccessKeyID {
		t.Fatal("STS issued the same key twice")
	}
	// imdsd swaps in the new set as soon as STS answered; wait for that
	// (bounded) through IMDS itself before the clients run.
	d := &daemon{Endpoint: endpoint, Role: srcRoleName, outputs: newOutputs()}
	for time.Now().Before(deadline) && d.served(t).AccessKeyID != second.AccessKeyID {
		time.Sleep(50 * time.Millisecond)
	}
	checkClients(t, r, main.env, second)
	checkOtherUserRefused(t, endpoint)

	logBytes, err := os.ReadFile(filepath.Join(main.state["dir"], "imdsd.log"))
	if err != nil {
		t.Fatal(err)
	}

	post := r.step(t, r.meta.Runs.Post, with, append(r.stepEnv(), stateEnv(main.state)...)...)
	if post.err != nil {
		t.Fatalf("post step failed: %v", post.err)
	}
	if !strings.Contains(post.stdout, "serving valid credentials") || !strings.Contains(post.stdout, "stopped") {
		t.Errorf("post step did not print imdsd's status and that it stopped:\n%s", post.stdout)
	}
	if strings.Contains(post.stdout, "::warning::") {
		t.Errorf("post step warned:\n%s", post.stdout)
	}
	if running(pid) {
		t.Errorf("imdsd (pid %d) still runs after the post step", pid)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket %s still there after the post step (%v)", sock, err)
	}

	// A second job on the same runner, pinned to the release: SHA256SUMS
	// of that tag, then the binary from the tool cache (no archive). Its
	// runner has a proxy (Go and node's fetch never proxy loopback, so
	// nothing changes on the wire): the endpoint must join NO_PROXY.
	before, _, _ := r.seen()
	with["version"] = strings.TrimPrefix(actVersion, "v")
	again := r.step(t, r.meta.Runs.Main, with, append(r.stepEnv(), "HTTPS_PROXY=http://127.0.0.1:9", "no_proxy=.internal.example")...)
	killOnCleanup(t, again.state)
	if again.err != nil {
		t.Fatalf("second main step failed: %v", again.err)
	}
	downloads, _, _ = r.seen()
	wantDownloads = []string{"/releases/download/" + actVersion + "/SHA256SUMS", "/objects/" + actVersion + "/SHA256SUMS"}
	if diff := cmp.Diff(wantDownloads, downloads[len(before):]); diff != "" || !strings.Contains(again.stdout, "(tool cache;") {
		t.Errorf("second job's downloads (-want +got):\n%s\nwant the binary from the tool cache", diff)
	}
	if again.env["NO_PROXY"] != "127.0.0.1" || again.env["no_proxy"] != ".internal.example,127.0.0.1" {
		t.Errorf("with a proxy set, GITHUB_ENV NO_PROXY = %q, no_proxy = %q; want 127.0.0.1 added to each", again.env["NO_PROXY"], again.env["no_proxy"])
	}
	if again.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == endpoint {
		t.Errorf("second imdsd serves the first one's endpoint %s", endpoint)
	}
	if p := r.step(t, r.meta.Runs.Post, with, append(r.stepEnv(), stateEnv(again.state)...)...); p.err != nil || !strings.Contains(p.stdout, "stopped") {
		t.Errorf("second post step: %v\n%s", p.err, p.stdout)
	}

	if left, _ := filepath.Glob(filepath.Join(r.dir, "temp", "imdsd-*")); len(left) != 0 {
		t.Errorf("left in RUNNER_TEMP after the post steps: %q", left)
	}

	// No secret in anything the job log would show, nor in imdsd's log.
	var secrets []string
	for _, is := range r.sts.sts.Issued() {
		// Access keys appear as their last four characters only.
		secrets = append(secrets, is.AccessKeyID, is.SecretAccessKey, is.SessionToken)
	}
	secrets = append(secrets, tokens...)
	secrets = append(secrets, actReqToken)
	for what, text := range map[string]string{
		"main stdout": main.stdout, "main stderr": main.stderr, "post stdout": post.stdout, "post stderr": post.stderr,
		"imdsd's log": string(logBytes),
	} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains a secret (%d bytes)", what, len(s))
			}
		}
	}
}

// testActionWrongChecksum: an archive whose SHA-256 is not the listed one
// fails the step, names the asset and both sums, and starts nothing.
func testActionWrongChecksum(t *testing.T) {
	r := newFakeRunner(t)
	wrong := strings.Repeat("0badc0de", 8)
	asset, sum := r.publish(t, wrong)
	main := r.step(t, r.meta.Runs.Main, map[string]string{
		"role-to-assume": srcRoleARN, "aws-region": actRegion, "release-url": r.URL + "/releases",
	}, r.stepEnv()...)
	killOnCleanup(t, main.state)
	var exitErr *exec.ExitError
	if !errors.As(main.err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("main step: %v, want exit status 1", main.err)
	}
	var errLine string
	for line := range strings.SplitSeq(main.stdout, "\n") {
		if strings.HasPrefix(line, "::error::") {
			errLine = line
		}
	}
	for _, s := range []string{"checksum mismatch", asset, wrong, sum} {
		if !strings.Contains(errLine, s) {
			t.Errorf("error annotation %q does not name %q", errLine, s)
		}
	}
	if len(main.state) != 0 || len(main.env) != 0 || len(main.outputs) != 0 {
		t.Errorf("a failed verification left state %v, env %v, outputs %v; want none", main.state, main.env, main.outputs)
	}
	if _, tokens, _ := r.seen(); len(tokens) != 0 || len(r.sts.sts.Requests()) != 0 {
		t.Errorf("imdsd ran: %d OIDC token requests, %d STS requests", len(tokens), len(r.sts.sts.Requests()))
	}
	if _, err := os.Stat(filepath.Join(r.dir, "tool-cache", "imdsd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the unverified archive reached the tool cache (%v)", err)
	}
}

// testActionNoIDToken: a job without "permissions: id-token: write" has no
// ACTIONS_ID_TOKEN_REQUEST_URL; the step says so before downloading.
func testActionNoIDToken(t *testing.T) {
	r := newFakeRunner(t)
	r.publish(t, "")
	main := r.step(t, r.meta.Runs.Main, map[string]string{
		"role-to-assume": srcRoleARN, "aws-region": actRegion, "release-url": r.URL + "/releases",
	}, "IMDSD_STS_ENDPOINT="+r.sts.sts.URL)
	killOnCleanup(t, main.state)
	if main.err == nil {
		t.Fatal("main step succeeded without ACTIONS_ID_TOKEN_REQUEST_URL")
	}
	if !strings.Contains(main.stdout, "::error::ACTIONS_ID_TOKEN_REQUEST_URL is not set") || !strings.Contains(main.stdout, "permissions: id-token: write") {
		t.Errorf("want an error naming ACTIONS_ID_TOKEN_REQUEST_URL and permissions: id-token: write, got:\n%s", main.stdout)
	}
	if downloads, _, _ := r.seen(); len(downloads) != 0 || len(main.state) != 0 {
		t.Errorf("downloads %v, state %v; want none", downloads, main.state)
	}
}

// testActionUnknownVersion: a version with no release is a 404 the step
// explains, and nothing starts.
func testActionUnknownVersion(t *testing.T) {
	r := newFakeRunner(t)
	r.publish(t, "")
	main := r.step(t, r.meta.Runs.Main, map[string]string{
		"role-to-assume": srcRoleARN, "aws-region": actRegion, "release-url": r.URL + "/releases", "version": "0.0.1",
	}, r.stepEnv()...)
	killOnCleanup(t, main.state)
	want := "::error::download " + r.URL + "/releases/download/v0.0.1/SHA256SUMS: 404 Not Found (no such release or asset: check the version and release-url inputs)"
	if main.err == nil || !strings.Contains(main.stdout, want) {
		t.Errorf("main step: %v, want a failure with\n%s\ngot:\n%s", main.err, want, main.stdout)
	}
	if len(main.state) != 0 {
		t.Errorf("state %v, want none", main.state)
	}
}

// testActionRoleRefuses: STS refuses the token (its audience is not the
// role's), a permanent error: the step fails at once with STS's words and
// imdsd's log, and leaves nothing running; post then has nothing to do.
// On the way, a variable that shadows IMDS draws a warning.
func testActionRoleRefuses(t *testing.T) {
	r := newFakeRunner(t)
	r.publish(t, "")
	with := map[string]string{
		"role-to-assume": srcRoleARN, "aws-region": actRegion, "release-url": r.URL + "/releases",
		"audience": "not-sts.example.com",
	}
	// A profile left by an earlier step would shadow IMDS in every SDK:
	// the step warns (and leaves it alone), and imdsd, which would refuse
	// to start with a profile this runner lacks, does not see it.
	main := r.step(t, r.meta.Runs.Main, with, append(r.stepEnv(), "AWS_PROFILE=leftover")...)
	pid := killOnCleanup(t, main.state)
	if main.err == nil {
		t.Fatal("main step succeeded with a token STS refuses")
	}
	if !strings.Contains(main.stdout, "::warning::AWS_PROFILE is set") {
		t.Errorf("no warning about AWS_PROFILE shadowing IMDS:\n%s", main.stdout)
	}
	if main.took > 30*time.Second {
		t.Errorf("main step took %v to give up on a permanent error, want < 30s", main.took)
	}
	if !strings.Contains(main.stdout, "::error::imdsd cannot get credentials: ") || !strings.Contains(main.stdout, "InvalidIdentityToken: Incorrect token audience") ||
		!strings.Contains(main.stdout, "::group::imdsd's log") {
		t.Errorf("want the STS error as the step's error and imdsd's log, got:\n%s", main.stdout)
	}
	if _, _, audiences := r.seen(); len(audiences) == 0 || audiences[0] != "not-sts.example.com" {
		t.Errorf("OIDC token audiences = %q, want the audience input", audiences)
	}
	if pid == 0 || running(pid) || main.state["stopped"] != "true" || len(main.env) != 0 {
		t.Errorf("pid %d running %v, state %v, env %v; want imdsd stopped, nothing exported", pid, pid != 0 && running(pid), main.state, main.env)
	}
	post := r.step(t, r.meta.Runs.Post, with, append(r.stepEnv(), stateEnv(main.state)...)...)
	if post.err != nil || strings.Contains(post.stdout, "::warning::") || !strings.Contains(post.stdout, "stopped by the failed main step") {
		t.Errorf("post step after a failed main: %v\n%s", post.err, post.stdout)
	}
	if _, err := os.Stat(main.state["dir"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("post left imdsd's directory %s (%v)", main.state["dir"], err)
	}
}

// checkOtherUserRefused: the action's imdsd serves the runner's user only.
// Another local user (a uid without an account, as on a self-hosted runner
// shared by several) gets a token, as anyone may, and then 403 for the
// credentials. Needs root (setpriv) and curl; said and skipped otherwise.
func checkOtherUserRefused(t *testing.T, endpoint string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("NOT CHECKED: another user's refusal needs root (setpriv)")
		return
	}
	setpriv := firstExecutable(t, "apt-get install -y util-linux", "/usr/bin/setpriv", "/bin/setpriv")
	curl := firstExecutable(t, "apt-get install -y curl", "/usr/bin/curl")
	uid := strconv.Itoa(pickAccessUIDs(t).c)
	as := func(args ...string) string {
		full := append([]string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups", curl, "--silent", "--show-error", "--max-time", "5"}, args...)
		out, err := exec.Command(setpriv, full...).Output()
		if err != nil {
			t.Fatalf("curl as uid %s %v: %v", uid, args, err)
		}
		return string(out)
	}
	token := as("-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", endpoint+"latest/api/token")
	if token == "" {
		t.Fatalf("uid %s got no token", uid)
	}
	code := as("-o", "/dev/null", "-w", "%{http_code}", "-H", "X-aws-ec2-metadata-token: "+token,
		endpoint+"latest/meta-data/iam/security-credentials/"+srcRoleName)
	if code != "403" {
		t.Errorf("credentials for another local user (uid %s): HTTP %s, want 403", uid, code)
	}
}
