package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/rs/zerolog"

	"github.com/imdsd/imdsd/caller"
	"github.com/imdsd/imdsd/rotator/ststest"
)

// session_name_from_caller and source_identity_from_caller: one STS
// session per listed user, whose name or source identity carries the user,
// served to that user on the role's path; the role's own session for the
// rest. The fake STS sees the names and identities.
func TestSessionPerCaller(t *testing.T) {
	srv := ststest.New(
		ststest.WithBaseCredentials(baseKeyID, baseSecret, "arn:aws:iam::123456789012:user/base"),
		ststest.WithRole(ststest.Role{ARN: testRole, MaxSessionDuration: 12 * time.Hour}),
	)
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte(`
sts_endpoint: https://sts.us-east-1.amazonaws.com
roles:
  - name: deploy
    source: assume-role
    role_arn: `+testRole+`
    allow: {users: ["4321", "4322"]}
    session_name_from_caller: true
    source_identity_from_caller: true
  - name: shell
    source: dev
`), 0o600); err != nil {
		t.Fatal(err)
	}
	deps := stsDeps{
		loadConfig: func(context.Context, Config) (aws.Config, error) {
			return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(baseKeyID, baseSecret, "")}, nil
		},
		httpClient: &http.Client{Transport: srv.Transport()},
		getenv:     noEnv,
		now:        time.Now,
	}
	c, _, srcs, loadErr, invalid := loadRunRoles(t.Context(), &runFlags{configPath: file}, noEnv, deps)
	if loadErr != nil || invalid != nil {
		t.Fatalf("load: %v %v", loadErr, invalid)
	}
	if got := strings.Join(c.roleNames(), " "); got != "deploy shell deploy@4321 deploy@4322" {
		t.Errorf("roles = %s, want the two roles and one session per listed user", got)
	}
	d, err := newDaemonRoles(c, srcs, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	for _, name := range c.roleNames() {
		g, _ := d.role(name)
		g.start(ctx)
		<-g.tried
	}
	defer func() {
		cancel()
		d.stopSources()
	}()

	hostname, _ := os.Hostname()
	sessions := map[string]string{} // RoleSessionName → SourceIdentity
	for _, r := range srv.Requests() {
		if r.Action == "AssumeRole" {
			sessions[r.Params.Get("RoleSessionName")] = r.Params.Get("SourceIdentity")
		}
	}
	for _, uid := range []string{"4321", "4322"} {
		name := uid // no account of that uid here: the uid stands for the user
		want := "imdsd-" + name + "@" + hostname
		if id, ok := sessions[want[:min(len(want), 64)]]; !ok || id != name {
			t.Errorf("STS sessions %v: want one named %s with source identity %s", sessions, want, name)
		}
	}

	get := func(id caller.Identity, path string) (int, string) {
		tok := doRequest(&d.served, "PUT", "/latest/api/token", http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"60"}}).Body.String()
		r := httptest.NewRequest("GET", "http://127.0.0.1:8169"+path, nil)
		r.RemoteAddr = "127.0.0.1:50000"
		r.Header.Set("X-Aws-Ec2-Metadata-Token", tok)
		r = r.WithContext(caller.WithPeer(r.Context(), caller.NewPeer(id, nil)))
		w := httptest.NewRecorder()
		d.served.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	const path = "/latest/meta-data/iam/security-credentials/deploy"
	keyFor := func(role string) string {
		g, _ := d.role(role)
		return g.rot.State().Credentials.AccessKeyID
	}
	for uid, role := range map[int]string{4321: "deploy@4321", 4322: "deploy@4322"} {
		code, body := get(caller.Identity{Known: true, UID: uid}, path)
		if code != 200 || !strings.Contains(body, keyFor(role)) {
			t.Errorf("uid %d on %s = %d %q, want the key of its own session %s", uid, path, code, body, keyFor(role))
		}
	}
	if code, _ := get(caller.Identity{Known: true, UID: 1}, path); code != 403 {
		t.Errorf("uid 1 (not listed) on %s = %d, want 403", path, code)
	}
	if code, _ := get(caller.Identity{Known: true, UID: 4321}, path+"@4322"); code != 403 {
		t.Errorf("uid 4321 on the other user's session = %d, want 403", code)
	}
}

func TestSessionPerCallerNeedsUsers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	_ = os.WriteFile(file, []byte(`
roles:
  - name: a
    source: dev
    session_name_from_caller: true
  - name: b
    source: dev
    allow: {groups: [wheel]}
    session_name_from_caller: true
  - name: c
    source: dev
    allow: {users: [root]}
    source_identity_from_caller: true
`), 0o600)
	_, _, _, loadErr, invalid := loadRunRoles(t.Context(), &runFlags{configPath: file}, noEnv, stsDeps{now: time.Now})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	for _, want := range []string{
		"role a: session_name_from_caller and source_identity_from_caller need allow.users: one STS session per user listed",
		"role b: allow.groups: a group's members cannot be known in advance for one STS session each; list the users in allow.users",
		"role c: source_identity_from_caller: applies to source assume-role (got dev)",
	} {
		if invalid == nil || !strings.Contains(invalid.Error(), want) {
			t.Errorf("invalid = %v, want %q", invalid, want)
		}
	}
}
