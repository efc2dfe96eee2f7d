package daemon

import (
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsd/imdsd/audit"
	"github.com/imdsd/imdsd/caller"
	"github.com/imdsd/imdsd/imds"
)

// Roles with allow: only the callers they name get them (403 and the
// listing's 404 for the others), an unidentified caller is refused and
// counted, and the audit trail holds one line per answer and refusal with
// the caller, never a secret. The kernel lookup is injected: who calls is
// what the test says (the real lookup has its own tests in caller/, and
// the e2e tests run real clients as two users).
func TestAccessPolicyAndAudit(t *testing.T) {
	dir := tempDir(t, "imdsd-audit-")
	trail := filepath.Join(dir, "audit.log")
	var who atomic.Pointer[caller.Identity]
	lookup := caller.LookupFunc(func(local, remote netip.AddrPort) (caller.Identity, error) {
		id := who.Load()
		if id == nil {
			return caller.Unknown(caller.ErrNoSocket), caller.ErrNoSocket
		}
		return *id, nil
	})
	rd := startRolesDaemon(t, `
roles:
  - name: shell
    source: dev
  - name: deploy
    source: dev
    allow:
      users: ["4321"]
default_roles:
  - {users: ["4321"], role: deploy}
audit_log: `+trail+`
`, func(d *daemon) { d.access.lookup = lookup })

	// A new connection per request: the lookup runs once per connection.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(id *caller.Identity, path string) (int, string) {
		t.Helper()
		who.Store(id)
		req, _ := http.NewRequest("PUT", rd.imds+"/latest/api/token", nil)
		req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		req, _ = http.NewRequest("GET", rd.imds+path, nil)
		req.Header.Set("X-Aws-Ec2-Metadata-Token", string(tok))
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	alice := &caller.Identity{Known: true, UID: 4321, User: "alice", PID: 77, Exe: "/usr/bin/aws"}
	bob := &caller.Identity{Known: true, UID: 1234, User: "bob", PID: 88, Exe: "/usr/bin/python3"}
	const md = "/latest/meta-data/iam/security-credentials/"

	if code, body := get(alice, md); code != 200 || body != "deploy" {
		t.Errorf("alice's listing = %d %q, want her default role deploy", code, body)
	}
	if code, body := get(bob, md); code != 200 || body != "shell" {
		t.Errorf("bob's listing = %d %q, want the default role shell", code, body)
	}
	code, body := get(alice, md+"deploy")
	if code != 200 || !strings.Contains(body, `"Success"`) {
		t.Fatalf("alice, deploy = %d %q", code, body)
	}
	key := keyOf(t, body)
	if code, body := get(bob, md+"deploy"); code != 403 || strings.Contains(body, "Secret") {
		t.Errorf("bob, deploy = %d %q, want 403 naming no secret", code, body)
	}
	if code, _ := get(nil, md+"deploy"); code != 403 {
		t.Errorf("unidentified caller, deploy = %d, want 403", code)
	}
	if code, _ := get(nil, md+"shell"); code != 200 {
		t.Errorf("unidentified caller, shell (no allow) = %d, want 200", code)
	}

	// The trail: written by its own goroutine; status and metrics read
	// its counters, so wait for them, not for time.
	client2, base, err := adminClient(rd.sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.d.access.state.Load().trail.Sync(); err != nil {
		t.Fatal(err)
	}
	if v := scrapeLabeled(t, client2, base, "imdsd_audit_records_total", `outcome="written"`); v != 4 {
		t.Errorf("audit records written = %v, want 4 (three of deploy, one of shell)", v)
	}
	if v := scrapeLabeled(t, client2, base, "imdsd_access_refusals_total", `role="deploy",reason="unknown_caller"`); v != 1 {
		t.Errorf("refusals of unknown callers = %v, want 1", v)
	}
	f, err := os.Open(trail)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, bad, err := audit.Last(f, 100, audit.Filter{})
	if err != nil || bad != 0 {
		t.Fatalf("read the trail: %v, %d bad lines", err, bad)
	}
	var served, refused int
	for _, r := range recs {
		switch {
		case r.Role == "deploy" && r.Decision == audit.Allowed && r.UID == 4321 && r.User == "alice" && r.PID == 77 && r.Exe == "/usr/bin/aws" && r.Key.String() == key[len(key)-4:]:
			served++
		case r.Role == "deploy" && r.Decision == audit.Refused && r.Status == 403:
			refused++
		}
	}
	if served != 1 || refused != 2 {
		t.Errorf("trail: %d served to alice, %d refusals of deploy; want 1 and 2:\n%+v", served, refused, recs)
	}
	raw, _ := os.ReadFile(trail)
	if strings.Contains(string(raw), key) || strings.Contains(string(raw), "Secret") {
		t.Errorf("the trail holds a whole key or a secret:\n%s", raw)
	}
	if fi, _ := os.Stat(trail); fi.Mode().Perm() != 0o600 {
		t.Errorf("trail mode %v, want 0600", fi.Mode().Perm())
	}
	var out, errOut strings.Builder
	cfgPath := rd.config
	if code := run(t.Context(), []string{"audit", "tail", "--config", cfgPath, "--user", "alice"}, noEnv, &out, &errOut); code != 0 || !strings.Contains(out.String(), "deploy") || strings.Contains(out.String(), "bob") {
		t.Errorf("audit tail --user alice: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

func scrapeLabeled(t *testing.T, client *http.Client, base, name, labels string) float64 {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+"{"+labels+"} "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// The container endpoint's answers and refusals reach the audit trail with
// the ID of the token presented: a container's identity is its token.
func TestAuditContainerRequests(t *testing.T) {
	dir := tempDir(t, "imdsd-audit-")
	trail := filepath.Join(dir, "audit.log")
	rd := startRolesDaemon(t, `
roles:
  - name: deploy
    source: dev
    container: true
container_listen: [127.0.0.1:0]
audit_log: `+trail+`
`)
	tok, err := os.ReadFile(filepath.Join(rd.tokens, "deploy", "token"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := imds.NewContainerToken()
	if code, _ := containerGet(t, rd.ctr, "deploy", string(tok)); code != 200 {
		t.Fatalf("right token: %d", code)
	}
	if code, _ := containerGet(t, rd.ctr, "deploy", wrong); code != 403 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := containerGet(t, rd.ctr, "deploy", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if err := rd.d.access.state.Load().trail.Sync(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(trail)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, _, err := audit.Last(f, 10, audit.Filter{})
	if err != nil || len(recs) != 3 {
		t.Fatalf("trail: %d records, %v; want 3", len(recs), err)
	}
	want := []struct {
		decision audit.Decision
		status   int
		token    string
		key      bool
	}{
		{audit.Allowed, 200, imds.ContainerTokenID(string(tok)), true},
		{audit.Refused, 403, imds.ContainerTokenID(wrong), false},
		{audit.Refused, 401, "", false},
	}
	for i, w := range want {
		r := recs[i]
		if r.Listener != "container" || r.Role != "deploy" || r.Decision != w.decision || r.Status != w.status || r.Token.String() != w.token || r.Key.IsZero() == w.key {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
	}
	raw, _ := os.ReadFile(trail)
	if strings.Contains(string(raw), string(tok)) || strings.Contains(string(raw), wrong) {
		t.Errorf("the trail holds a token:\n%s", raw)
	}
}

// A reload that is refused leaves the running access policy in force: the
// new configuration's policies are built beside it and dropped, never
// half applied (here the refusal comes late, from a container token file
// with a trailing newline, after the policies were compiled).
func TestRefusedReloadKeepsAccess(t *testing.T) {
	who := &caller.Identity{Known: true, UID: 1234, User: "bob"}
	rd := startRolesDaemon(t, `
roles:
  - name: deploy
    source: dev
    allow: {users: ["4321"]}
`, func(d *daemon) {
		d.access.lookup = caller.LookupFunc(func(netip.AddrPort, netip.AddrPort) (caller.Identity, error) { return *who, nil })
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() int {
		t.Helper()
		req, _ := http.NewRequest("PUT", rd.imds+"/latest/api/token", nil)
		req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		req, _ = http.NewRequest("GET", rd.imds+"/latest/meta-data/iam/security-credentials/deploy", nil)
		req.Header.Set("X-Aws-Ec2-Metadata-Token", string(tok))
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 403 {
		t.Fatalf("bob before the reload = %d, want 403", code)
	}
	if err := os.MkdirAll(filepath.Join(rd.tokens, "ctr"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rd.tokens, "ctr", "token"), []byte(imds.NewContainerToken()+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(rd.config)
	next := strings.Replace(string(text), `    allow: {users: ["4321"]}
`, `  - name: ctr
    source: dev
    container: true
container_listen: [127.0.0.1:0]
`, 1)
	if err := os.WriteFile(rd.config, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := rd.cli(t, "reload"); code != exitError || !strings.Contains(errOut, filepath.Join(rd.tokens, "ctr", "token")) {
		t.Fatalf("reload: exit %d, %q; want it refused for the token file", code, errOut)
	}
	if code := get(); code != 403 {
		t.Errorf("bob after the refused reload = %d, want 403: the running policy must stay", code)
	}
}
