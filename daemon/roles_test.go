package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imdsd/imdsd/rotator"
)

// rolesDaemon serves the config file text (roles, container endpoint) as
// imdsd run --config would, until the test ends. It returns the IMDS and
// container endpoints it printed.
type rolesDaemon struct {
	d            *daemon
	imds, ctr    string // http://ADDR
	sock, config string
	tokens       string // container_token_dir
}

func startRolesDaemon(t *testing.T, text string, setup ...func(*daemon)) *rolesDaemon {
	t.Helper()
	dir := tempDir(t, "imdsd-roles-")
	rd := &rolesDaemon{sock: filepath.Join(dir, "run", "admin.sock"), config: filepath.Join(dir, "config.yaml"), tokens: filepath.Join(dir, "tokens")}
	text += "\nadmin_socket: " + rd.sock + "\ncontainer_token_dir: " + rd.tokens + "\nlisten: [127.0.0.1:0]\n"
	if err := os.WriteFile(rd.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(ctx context.Context) (Config, map[string]rotator.Fetcher, error) {
		c, _, srcs, loadErr, invalid := loadRunRoles(ctx, &runFlags{configPath: rd.config}, noEnv, stsDeps{now: time.Now})
		if err := errors.Join(loadErr, invalid); err != nil {
			return Config{}, nil, err
		}
		return c, srcs, nil
	}
	c, srcs, err := load(t.Context())
	if err != nil {
		t.Fatalf("load %s: %v", rd.config, err)
	}
	d, err := newDaemonRoles(c, srcs, newLogger(io.Discard, "json", "info"))
	if err != nil {
		t.Fatal(err)
	}
	rd.d = d
	for _, f := range setup {
		f(d)
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.serve(ctx, pw, nil, load) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve() = %v", err)
		}
		pw.Close()
	})
	sc := bufio.NewScanner(pr)
	for rd.imds == "" || (len(c.ContainerListen) > 0 && rd.ctr == "") {
		if !sc.Scan() {
			t.Fatalf("serve printed no endpoints: %v", sc.Err())
		}
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "export AWS_EC2_METADATA_SERVICE_ENDPOINT="); ok {
			rd.imds = strings.TrimSuffix(v, "/")
		}
		if v, ok := strings.CutPrefix(line, "# container endpoint: "); ok {
			rd.ctr = strings.TrimSuffix(strings.Fields(v)[0], "/roles/")
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return rd
}

func (rd *rolesDaemon) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(t.Context(), append(args, "--admin-socket", rd.sock), noEnv, &out, &errOut)
	return code, out.String(), errOut.String()
}

// imdsGet reads path with a fresh session token.
func imdsGet(t *testing.T, base, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", base+"/latest/api/token", nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest("GET", base+path, nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token", string(tok))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// containerGet reads a role's path on the container endpoint with token.
func containerGet(t *testing.T, base, role, token string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/roles/"+role, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

func keyOf(t *testing.T, body string) string {
	t.Helper()
	var doc map[string]string
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc["Code"] != "Success" {
		t.Fatalf("credentials document %q: %v", body, err)
	}
	return doc["AccessKeyId"]
}

// Several roles at once: IMDS lists the default one and serves each by
// name, each from its own rotator; the container endpoint serves the roles
// with container: true to the holder of their token; status, creds and the
// token rotation cover every role; a reload adds, removes and keeps roles
// by name.
func TestSeveralRolesAndContainers(t *testing.T) {
	rd := startRolesDaemon(t, `
roles:
  - name: readonly
    source: dev
  - name: deploy
    source: dev
    dev_lifetime: 2h
    container: true
default_role: readonly
container_listen: [127.0.0.1:0]
`)
	const md = "/latest/meta-data/iam/"
	if code, body := imdsGet(t, rd.imds, md+"security-credentials/"); code != 200 || body != "readonly" {
		t.Errorf("listing = %d %q, want the default role only", code, body)
	}
	_, ro := imdsGet(t, rd.imds, md+"security-credentials/readonly")
	_, dep := imdsGet(t, rd.imds, md+"security-credentials/deploy")
	roKey, depKey := keyOf(t, ro), keyOf(t, dep)
	if roKey == depKey {
		t.Errorf("both roles serve key %s; want one rotator each", roKey)
	}

	tokFile := filepath.Join(rd.tokens, "deploy", "token")
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	if code, doc := containerGet(t, rd.ctr, "deploy", string(tok)); code != 200 || doc["AccessKeyId"] != depKey {
		t.Errorf("container endpoint, deploy = %d %v, want the key IMDS serves for deploy, %s", code, doc, depKey)
	}
	if code, _ := containerGet(t, rd.ctr, "readonly", string(tok)); code != 404 {
		t.Errorf("container endpoint, readonly (no container: true) = %d, want 404", code)
	}
	if code, _ := containerGet(t, rd.ctr, "deploy", ""); code != 401 {
		t.Errorf("container endpoint without a token = %d, want 401", code)
	}

	var st statusDoc
	code, out, errOut := rd.cli(t, "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v; stderr %q", code, err, errOut)
	}
	if len(st.Roles) != 2 || st.DefaultRole != "readonly" || !st.Healthy || st.Roles[1].ContainerTokenID == "" || st.Roles[0].ContainerTokenID != "" {
		t.Errorf("status = %+v, want two healthy roles, readonly the default, deploy with a container token", st.Roles)
	}
	if code, out, _ := rd.cli(t, "status"); code != 0 || !strings.Contains(out, "role readonly (default: listed by IMDS)") || !strings.Contains(out, "role deploy\n") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	if code, out, errOut := rd.cli(t, "creds", "--role", "deploy", "--format", "process"); code != 0 || !strings.Contains(out, `"AccessKeyId":"`+depKey+`"`) {
		t.Errorf("creds --role deploy: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := rd.cli(t, "creds", "--role", "nope", "--format", "process"); code != exitUsage || !strings.Contains(errOut, `no role "nope"; the roles are readonly, deploy`) {
		t.Errorf("creds --role nope: exit %d, %q", code, errOut)
	}

	// Rotation: the old token is refused at once, the file holds the new.
	if code, out, errOut := rd.cli(t, "container-token", "rotate", "deploy"); code != 0 || !strings.Contains(out, "rotated") {
		t.Fatalf("container-token rotate: exit %d, %q %q", code, out, errOut)
	}
	if code, _ := containerGet(t, rd.ctr, "deploy", string(tok)); code != 403 {
		t.Errorf("old token after rotation = %d, want 403", code)
	}
	next, _ := os.ReadFile(tokFile)
	if code, _ := containerGet(t, rd.ctr, "deploy", string(next)); code != 200 || string(next) == string(tok) {
		t.Errorf("new token after rotation = %d, want 200", code)
	}
	if code, _, errOut := rd.cli(t, "container-token", "rotate", "readonly"); code != exitError || !strings.Contains(errOut, "role readonly is not served to containers") {
		t.Errorf("rotate readonly: exit %d %q", code, errOut)
	}

	// container-env prints what a container needs.
	var envOut, envErr strings.Builder
	if code := run(t.Context(), []string{"container-env", "deploy", "--config", rd.config}, noEnv, &envOut, &envErr); code != exitUsage || !strings.Contains(envErr.String(), "picks a free port") {
		t.Errorf("container-env with port 0: exit %d, %q", code, envErr.String())
	}

	// Reload: readonly goes, ci comes, deploy stays with its rotator.
	text, _ := os.ReadFile(rd.config)
	newText := strings.Replace(string(text), "  - name: readonly\n    source: dev\n", "  - name: ci\n    source: dev\n", 1)
	newText = strings.Replace(newText, "default_role: readonly", "default_role: deploy", 1)
	if err := os.WriteFile(rd.config, []byte(newText), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := rd.cli(t, "reload"); code != 0 {
		t.Fatalf("reload: exit %d, %q %q", code, out, errOut)
	}
	if code, body := imdsGet(t, rd.imds, md+"security-credentials/"); code != 200 || body != "deploy" {
		t.Errorf("listing after reload = %d %q, want deploy", code, body)
	}
	if code, _ := imdsGet(t, rd.imds, md+"security-credentials/readonly"); code != 404 {
		t.Errorf("removed role readonly = %d, want 404", code)
	}
	if _, body := imdsGet(t, rd.imds, md+"security-credentials/deploy"); keyOf(t, body) != depKey {
		t.Errorf("deploy after reload serves another key: its rotator was not kept")
	}
	// ci starts at once (nothing to protect): served after its first fetch.
	ci, _ := rd.d.role("ci")
	if ci == nil {
		t.Fatal("role ci not added by the reload")
	}
	<-ci.tried
	if code, body := imdsGet(t, rd.imds, md+"security-credentials/ci"); code != 200 || !strings.Contains(body, `"Success"`) {
		t.Errorf("added role ci = %d %q, want its credentials", code, body)
	}
}

// Bad roles configuration: every problem named with the role and the key.
func TestRolesConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	_ = os.WriteFile(file, []byte(`
roles:
  - name: a
    source: dev
    listen: [127.0.0.1:1]
  - source: dev
  - name: a
    source: assume-role
    role_name: x
default_role: zzz
`), 0o600)
	_, _, _, loadErr, _ := loadRunRoles(t.Context(), &runFlags{configPath: file}, noEnv, stsDeps{now: time.Now})
	for _, want := range []string{
		file + ":5: roles[0]: listen: applies to the whole daemon; set it at the top level, not in a role",
		file + ":6: roles[1]: name: required: the role's name, as SDKs see it",
		file + ":9: roles[2]: role_name: a role of the list is named by its name key",
	} {
		if loadErr == nil || !strings.Contains(loadErr.Error(), want) {
			t.Errorf("load error = %v, want it to contain %q", loadErr, want)
		}
	}
	_ = os.WriteFile(file, []byte(`
roles:
  - name: a
    source: dev
  - name: a
    source: dev
  - name: "no/slash"
    source: dev
    container: true
default_role: zzz
`), 0o600)
	_, _, _, loadErr, invalid := loadRunRoles(t.Context(), &runFlags{configPath: file}, noEnv, stsDeps{now: time.Now})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	for _, want := range []string{
		`roles: each name once (got "a")`,
		`roles: names of 1..64 characters of [A-Za-z0-9+=,.@_-] (got "no/slash")`,
		`default_role: must be one of the roles (a, a, no/slash) (got "zzz")`,
		`container_listen: needed by the roles with container: true (no/slash)`,
	} {
		if invalid == nil || !strings.Contains(invalid.Error(), want) {
			t.Errorf("invalid = %v, want it to contain %q", invalid, want)
		}
	}
}
