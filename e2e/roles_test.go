package e2e

// Several roles at once (the config file's roles: list), end to end: the
// fake STS of rotator/ststest issues each role's credentials from its own
// source, the real binary serves every role by name over IMDS, and the real
// clients' IMDS providers (aws-sdk-go-v2's default chain, boto3 and the AWS
// CLI v2), given no variable but AWS_EC2_METADATA_SERVICE_ENDPOINT and
// AWS_EC2_METADATA_V1_DISABLED=true, get the default role. No released SDK
// reads AWS_EC2_INSTANCE_PROFILE_NAME, so the other roles are read by name
// over plain HTTP (token PUT, GET .../security-credentials/NAME), as a
// program that names its role does.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imdsd/imdsd/rotator/ststest"
)

// The roles of these tests: each its own source, so each is issued by
// another STS action (or, for the two assume-role ones, for another role
// ARN).
const (
	rolesRegion     = "eu-central-1"
	roleAlphaARN    = "arn:aws:iam::" + srcRoleAccount + ":role/e2e-alpha"
	roleBetaARN     = "arn:aws:iam::" + srcRoleAccount + ":role/e2e-beta"
	roleDeltaARN    = "arn:aws:iam::" + srcRoleAccount + ":role/e2e-delta"
	roleDeniedARN   = "arn:aws:iam::" + srcRoleAccount + ":role/e2e-denied"
	roleDeniedExtID = "e2e-expected-external-id"
)

// rolesEnv is a fake STS that knows the base user and the roles above, and
// the files imdsd is given (config, web identity token) under HOME.
type rolesEnv struct {
	*srcEnv
	jwt       string // the web identity token of role beta
	jwtFile   string
	config    string // the config file's path
	adminSock string
	stsURL    string // the STS endpoint imdsd is given (default: the fake STS's URL)
}

func newRolesEnv(t *testing.T) *rolesEnv {
	t.Helper()
	e := &rolesEnv{srcEnv: newSrcEnv(t,
		ststest.WithRole(ststest.Role{ARN: roleBetaARN, WebIdentityAudience: srcAudience}),
		ststest.WithRole(ststest.Role{ARN: roleDeniedARN, ExternalID: roleDeniedExtID}),
	)}
	e.jwt = srcJWT("system:serviceaccount:e2e:beta", srcAudience, time.Now().Add(2*time.Hour))
	e.jwtFile = e.write(t, "beta.jwt", e.jwt)
	e.config = filepath.Join(e.home, "imdsd.yaml")
	return e
}

func (e *rolesEnv) stsEndpoint() string {
	if e.stsURL != "" {
		return e.stsURL
	}
	return e.sts.URL
}

// Role items for the roles: list, one per source.
func (e *rolesEnv) alphaItem(extra ...string) string {
	return roleItem("alpha", append([]string{"source: assume-role", "role_arn: " + roleAlphaARN}, extra...)...)
}

func (e *rolesEnv) betaItem(extra ...string) string {
	return roleItem("beta", append([]string{"source: web-identity", "role_arn: " + roleBetaARN,
		"web_identity_token_file: " + e.jwtFile}, extra...)...)
}

func gammaItem(extra ...string) string {
	return roleItem("gamma", append([]string{"source: session-token"}, extra...)...)
}

func deltaItem(extra ...string) string {
	return roleItem("delta", append([]string{"source: assume-role", "role_arn: " + roleDeltaARN}, extra...)...)
}

// deniedItem is a role whose trust policy wants another external ID: STS
// answers its every AssumeRole with AccessDenied, and only its.
func deniedItem(extra ...string) string {
	return roleItem("denied", append([]string{"source: assume-role", "role_arn: " + roleDeniedARN,
		"external_id: e2e-wrong-external-id"}, extra...)...)
}

func roleItem(name string, kv ...string) string {
	s := "  - name: " + name + "\n"
	for _, l := range kv {
		s += "    " + l + "\n"
	}
	return s
}

// writeConfig (re)writes the config file: the shared top-level settings,
// top (more top-level lines), the roles and default_role (unless "").
func (e *rolesEnv) writeConfig(t *testing.T, top []string, defaultRole string, roles ...string) {
	t.Helper()
	s := "listen: [127.0.0.1:0]\n" +
		"token_mode: required\n" +
		"region: " + rolesRegion + "\n" +
		"sts_endpoint: " + e.stsEndpoint() + "\n" +
		"sts_region: us-east-1\n"
	for _, l := range top {
		s += l + "\n"
	}
	if defaultRole != "" {
		s += "default_role: " + defaultRole + "\n"
	}
	s += "roles:\n" + strings.Join(roles, "")
	// Written in place of the old file with a rename: a reload never reads
	// half a file.
	tmp := e.config + ".new"
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.config); err != nil {
		t.Fatal(err)
	}
}

// start runs `imdsd run --config FILE` and waits for the export line. The
// daemon's Role is defaultRole: the role the listing must name.
func (e *rolesEnv) start(t *testing.T, defaultRole string) *daemon {
	t.Helper()
	d := launchDaemon(t, daemonSpec{
		Args:    []string{"run", "--config", e.config, "--log-format", "json"},
		Env:     e.environ(true),
		Listen:  "127.0.0.1:0",
		Region:  rolesRegion,
		Role:    defaultRole,
		StopSig: syscall.SIGTERM,
	})
	e.guardSecrets(t, &d.outputs)
	e.adminSock = adminSocketOf(t, d.cmd.Env)
	return d
}

// adminSocketOf is the admin socket launchDaemon gave the daemon: the last
// IMDSD_ADMIN_SOCKET of its environment (os/exec uses the last of
// duplicates).
func adminSocketOf(t *testing.T, env []string) string {
	t.Helper()
	var sock string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "IMDSD_ADMIN_SOCKET="); ok {
			sock = v
		}
	}
	if sock == "" {
		t.Fatal("test setup: the daemon has no IMDSD_ADMIN_SOCKET")
	}
	return sock
}

// guardSecrets registers, to run before o's daemon stops and its logs are
// scanned, every secret the fake STS issued and the web identity token.
func (e *rolesEnv) guardSecrets(t *testing.T, o *outputs) {
	t.Helper()
	o.noteSecret(srcBaseSecret, "base secret access key")
	o.noteSecret(e.jwt, "web identity token")
	t.Cleanup(func() {
		for _, is := range e.sts.Issued() {
			o.noteSecret(is.SecretAccessKey, is.Action+" SecretAccessKey")
			o.noteSecret(is.SessionToken, is.Action+" SessionToken")
		}
	})
}

// issuedTo lists the sets ststest issued to role (a role ARN; or, for
// GetSessionToken, "" with the action), oldest first.
func (e *rolesEnv) issuedTo(roleARN, action string) []creds {
	var out []creds
	for _, is := range e.sts.Issued() {
		match := is.Action == action
		if roleARN != "" {
			// arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION
			match = match && strings.Contains(is.ARN, ":assumed-role/"+roleNameOf(roleARN)+"/")
		}
		if match {
			out = append(out, creds{is.AccessKeyID, is.SecretAccessKey, is.SessionToken, is.Expiration})
		}
	}
	return out
}

// onlyIssued wants exactly one set issued to the role and returns it.
func (e *rolesEnv) onlyIssued(t *testing.T, roleARN, action string) creds {
	t.Helper()
	sets := e.issuedTo(roleARN, action)
	if len(sets) != 1 {
		t.Fatalf("ststest issued %d sets by %s for %q, want 1; requests: %v", len(sets), action, roleARN, e.summary())
	}
	return sets[0]
}

func roleNameOf(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// roleByName reads role name's document over IMDS (token PUT, GET
// .../security-credentials[-extended]/NAME) and returns it.
func roleByName(t *testing.T, d *daemon, name string, extended bool) roleDoc {
	t.Helper()
	dir := "security-credentials"
	if extended {
		dir = "security-credentials-extended"
	}
	body := d.get(t, "/latest/meta-data/iam/"+dir+"/"+name)
	var doc roleDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("GET .../%s/%s: not JSON: %v", dir, name, err)
	}
	d.noteSecret(doc.SecretAccessKey, "served SecretAccessKey")
	d.noteSecret(doc.Token, "served Token")
	return doc
}

// wantRoleServed wants role name served over IMDS exactly as want, with
// account in the extended document.
func wantRoleServed(t *testing.T, d *daemon, name string, want creds, account string) {
	t.Helper()
	for _, extended := range []bool{false, true} {
		doc := roleByName(t, d, name, extended)
		if doc.Code != "Success" || doc.Type != "AWS-HMAC" {
			t.Errorf("role %s (extended %v): Code, Type = %q, %q (Message %q), want Success, AWS-HMAC", name, extended, doc.Code, doc.Type, doc.Message)
			continue
		}
		got := creds{doc.AccessKeyId, doc.SecretAccessKey, doc.Token, time.Time{}}
		if !cmp.Equal(got, want, cmpopts.IgnoreFields(creds{}, "Expiration")) {
			t.Errorf("role %s (extended %v): served credentials differ from the ones STS issued for it: %s", name, extended, redactedDiff(got, want))
		}
		if w := want.Expiration.UTC().Format(time.RFC3339); doc.Expiration != w {
			t.Errorf("role %s (extended %v): Expiration = %q, want %q", name, extended, doc.Expiration, w)
		}
		if extended && doc.AccountId != account {
			t.Errorf("role %s: extended AccountId = %q, want %q", name, doc.AccountId, account)
		}
	}
}

// rolesClients are the real IMDS clients: each gets the default role.
var rolesClients = []client{goSDK, boto3, awsCLI}

// wantClientsGet runs every client of rolesClients against d, with the
// endpoint and AWS_EC2_METADATA_V1_DISABLED=true as their only AWS_*
// variables besides the empty-config scrubbing of clientEnv, and wants
// exactly want from each.
func wantClientsGet(t *testing.T, d *daemon, want creds) {
	t.Helper()
	// One group: t.Run returns when its parallel subtests have.
	t.Run("clients", func(t *testing.T) {
		for _, c := range rolesClients {
			argv := c.argv(t)
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				env := append(clientEnv(t, d.Endpoint, true), c.extraEnv...)
				r := runClient(t, env, argv[0], argv[1:]...)
				if r.Err != nil {
					t.Fatalf("%s: %v\nstderr:\n%s", c.name, r.Err, r.Stderr)
				}
				got := c.parse(t, r.Stdout)
				d.noteSecret(got.SecretAccessKey, "SecretAccessKey (as "+c.name+" got it)")
				checkCreds(t, c, r, got.creds, want, want)
				if c.readsRegion && got.Region != rolesRegion {
					t.Errorf("%s: region = %q, want %q", c.name, got.Region, rolesRegion)
				}
			})
		}
	})
}

// imdsdCmd runs an admin command of bin/imdsd (status, reload, …) against
// the admin socket.
func imdsdCmd(t *testing.T, sock string, args ...string) clientRun {
	t.Helper()
	return runClient(t, []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, binPath(t),
		append(args, "--admin-socket", sock)...)
}

// reloadApplied runs `imdsd reload` and wants "applied", exit 0.
func reloadApplied(t *testing.T, sock string) {
	t.Helper()
	r := imdsdCmd(t, sock, "reload", "--wait", "15s")
	if r.Err != nil || !bytes.Contains(r.Stdout, []byte("applied")) {
		t.Fatalf("imdsd reload: %v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
	}
}

// statusRoles is what these tests read of `imdsd status --json`.
type statusRoles struct {
	Healthy     bool   `json:"healthy"`
	DefaultRole string `json:"default_role"`
	RoleName    string `json:"role_name"`
	Roles       []struct {
		Name        string `json:"name"`
		Source      string `json:"source"`
		RoleARN     string `json:"role_arn"`
		Healthy     bool   `json:"healthy"`
		Credentials *struct {
			KeyID     string    `json:"key_id"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"credentials"`
		LastError *struct {
			Code string `json:"code"`
		} `json:"last_error"`
		ContainerTokenID string `json:"container_token_id"`
	} `json:"roles"`
}

// status runs `imdsd status --json` and wants exit 0 when healthy, else 1.
func status(t *testing.T, sock string, healthy bool) statusRoles {
	t.Helper()
	r := imdsdCmd(t, sock, "status", "--json")
	var exitErr *exec.ExitError
	switch {
	case healthy && r.Err != nil, !healthy && (!errors.As(r.Err, &exitErr) || exitErr.ExitCode() != 1):
		t.Fatalf("imdsd status --json: %v, want exit %d\nstdout:\n%s\nstderr:\n%s", r.Err, map[bool]int{true: 0, false: 1}[healthy], r.Stdout, r.Stderr)
	}
	var st statusRoles
	if err := json.Unmarshal(r.Stdout, &st); err != nil {
		t.Fatalf("imdsd status --json: %v\n%s", err, r.Stdout)
	}
	return st
}

// TestRolesIMDS: three roles from three sources at once, each served by
// name exactly as STS issued it; the default one is what the real clients
// get; changing default_role and reloading switches the clients to another
// role without a single STS call.
func TestRolesIMDS(t *testing.T) {
	t.Parallel()
	e := newRolesEnv(t)
	e.writeConfig(t, nil, "", e.alphaItem(), e.betaItem(), gammaItem()) // default: the first
	d := e.start(t, "alpha")

	alpha := e.onlyIssued(t, roleAlphaARN, "AssumeRole")
	beta := e.onlyIssued(t, roleBetaARN, "AssumeRoleWithWebIdentity")
	gamma := e.onlyIssued(t, "", "GetSessionToken")
	if got := d.get(t, "/latest/meta-data/iam/security-credentials/"); got != "alpha" {
		t.Fatalf("listing = %q, want exactly the default role %q", got, "alpha")
	}
	wantRoleServed(t, d, "alpha", alpha, srcRoleAccount)
	wantRoleServed(t, d, "beta", beta, srcRoleAccount)
	wantRoleServed(t, d, "gamma", gamma, srcUserAccount)
	for _, p := range []string{"/latest/meta-data/iam/security-credentials/nosuchrole", "/latest/meta-data/iam/security-credentials-extended/nosuchrole"} {
		if code, _, body := d.do(t, http.MethodGet, p, map[string]string{hdrToken: d.token(t)}); code != http.StatusNotFound {
			t.Errorf("GET %s = %d %q, want 404", p, code, body)
		}
	}
	// Each source called STS once, as itself.
	if p := e.onlyRequest(t, "AssumeRole", srcBaseAKID); p.Get("RoleArn") != roleAlphaARN || p.Get("DurationSeconds") != "3600" {
		t.Errorf("AssumeRole: RoleArn %q, DurationSeconds %q; want %s, 3600", p.Get("RoleArn"), p.Get("DurationSeconds"), roleAlphaARN)
	}
	if p := e.onlyRequest(t, "AssumeRoleWithWebIdentity", ""); p.Get("RoleArn") != roleBetaARN || p.Get("WebIdentityToken") != e.jwt {
		t.Errorf("AssumeRoleWithWebIdentity: RoleArn %q, token of %d bytes; want %s and the token file's", p.Get("RoleArn"), len(p.Get("WebIdentityToken")), roleBetaARN)
	}
	e.onlyRequest(t, "GetSessionToken", srcBaseAKID)

	st := status(t, e.adminSock, true)
	var names []string
	for _, r := range st.Roles {
		names = append(names, r.Name)
		if !r.Healthy || r.Credentials == nil || r.LastError != nil {
			t.Errorf("status: role %s healthy %v, credentials %v, last_error %v; want healthy with credentials", r.Name, r.Healthy, r.Credentials != nil, r.LastError)
		}
	}
	if want := []string{"alpha", "beta", "gamma"}; !slices.Equal(names, want) || st.DefaultRole != "alpha" || st.RoleName != "alpha" {
		t.Errorf("status: roles %q, default_role %q, role_name %q; want %q, alpha, alpha", names, st.DefaultRole, st.RoleName, want)
	}

	wantClientsGet(t, d, alpha)

	// default_role: beta, every role's settings unchanged: the rotators and
	// their credentials stay, only the listing changes.
	calls := e.sts.Stats("").Calls
	e.writeConfig(t, nil, "beta", e.alphaItem(), e.betaItem(), gammaItem())
	reloadApplied(t, e.adminSock)
	if got := d.get(t, "/latest/meta-data/iam/security-credentials/"); got != "beta" {
		t.Fatalf("after default_role: beta and reload, listing = %q, want %q", got, "beta")
	}
	d.Role = "beta"
	wantClientsGet(t, d, beta)
	wantRoleServed(t, d, "alpha", alpha, srcRoleAccount)
	wantRoleServed(t, d, "gamma", gamma, srcUserAccount)
	if n := e.sts.Stats("").Calls; n != calls {
		t.Errorf("changing default_role made %d STS calls, want none (every source unchanged)", n-calls)
	}
	if st := status(t, e.adminSock, true); st.DefaultRole != "beta" || st.RoleName != "beta" || len(st.Roles) != 3 || st.Roles[0].Name != "beta" {
		t.Errorf("status after the reload: default_role %q, role_name %q, %d roles (first %+v); want beta, beta, 3 with beta first",
			st.DefaultRole, st.RoleName, len(st.Roles), st.Roles)
	}
	t.Run("json-logs", func(t *testing.T) { checkJSONLogs(t, d.stderr.String()) })
}

// checkJSONLogs wants every line of logs to be a JSON object without a
// repeated key: log processors keep one of two values of a key (jq and
// most others the last), so a repeated key loses a field.
func checkJSONLogs(t *testing.T, logs string) {
	t.Helper()
	reported := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Errorf("log line is not a JSON object: %q", line)
			continue
		}
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Errorf("log line: %v: %q", err, line)
				break
			}
			key, _ := k.(string)
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Errorf("log line: %v: %q", err, line)
				break
			}
			if seen[key] && !reported[key] {
				reported[key] = true
				t.Errorf("imdsd log line repeats the key %q (one value is lost to log processors): %s", key, line)
			}
			seen[key] = true
		}
	}
}

// TestRolesFailingRole: one role's STS calls all fail (AccessDenied: its
// trust policy wants another external ID); the others serve regardless,
// the failing one's path answers the IMDS error document, the clients get
// the default role, and status tells which role fails and why.
func TestRolesFailingRole(t *testing.T) {
	t.Parallel()
	e := newRolesEnv(t)
	e.writeConfig(t, nil, "alpha", deniedItem(), e.alphaItem(), gammaItem())
	d := e.start(t, "alpha")

	alpha := e.onlyIssued(t, roleAlphaARN, "AssumeRole")
	gamma := e.onlyIssued(t, "", "GetSessionToken")
	wantRoleServed(t, d, "alpha", alpha, srcRoleAccount)
	wantRoleServed(t, d, "gamma", gamma, srcUserAccount)
	if got := d.get(t, "/latest/meta-data/iam/security-credentials/"); got != "alpha" {
		t.Errorf("listing = %q, want %q", got, "alpha")
	}
	doc := roleByName(t, d, "denied", false)
	if doc.Code != "AccessDenied" || doc.AccessKeyId != "" || doc.SecretAccessKey != "" || doc.Token != "" || !timestampRE.MatchString(doc.LastUpdated) {
		t.Errorf("role denied: Code %q, LastUpdated %q, credentials set %v; want the error document with Code AccessDenied and no credentials",
			doc.Code, doc.LastUpdated, doc.AccessKeyId != "" || doc.SecretAccessKey != "" || doc.Token != "")
	}
	var denied int
	for _, r := range e.requests("AssumeRole") {
		if r.Params.Get("RoleArn") == roleDeniedARN {
			denied++
			if r.Status != http.StatusForbidden {
				t.Errorf("AssumeRole of %s answered %d, want 403", roleDeniedARN, r.Status)
			}
		}
	}
	if denied == 0 {
		t.Errorf("no AssumeRole of %s reached STS", roleDeniedARN)
	}

	wantClientsGet(t, d, alpha)

	st := status(t, e.adminSock, false)
	health := map[string]bool{}
	for _, r := range st.Roles {
		health[r.Name] = r.Healthy
		switch r.Name {
		case "denied":
			if r.Healthy || r.Credentials != nil || r.LastError == nil || r.LastError.Code != "AccessDenied" {
				t.Errorf("status: role denied: healthy %v, credentials %v, last_error %+v; want unhealthy, none, AccessDenied", r.Healthy, r.Credentials != nil, r.LastError)
			}
		default:
			if !r.Healthy || r.Credentials == nil || r.LastError != nil {
				t.Errorf("status: role %s: healthy %v, credentials %v, last_error %+v; want healthy with credentials", r.Name, r.Healthy, r.Credentials != nil, r.LastError)
			}
		}
	}
	if want := map[string]bool{"alpha": true, "gamma": true, "denied": false}; !cmp.Equal(health, want) || st.Healthy {
		t.Errorf("status: healthy %v, roles %v; want false, %v", st.Healthy, health, want)
	}
	if r := imdsdCmd(t, e.adminSock, "status"); !bytes.Contains(r.Stdout, []byte("NOT serving valid credentials for denied")) {
		t.Errorf("imdsd status does not name the failing role:\n%s", r.Stdout)
	}

	// The failing role as the default: clients fail fast, the others
	// still serve by name.
	e.writeConfig(t, nil, "denied", deniedItem(), e.alphaItem(), gammaItem())
	reloadApplied(t, e.adminSock)
	if got := d.get(t, "/latest/meta-data/iam/security-credentials/"); got != "denied" {
		t.Fatalf("listing = %q, want %q", got, "denied")
	}
	if _, r := goSDKRetrieve(t, d); r.Err == nil || !strings.Contains(r.Err.Error(), "AccessDenied") {
		t.Errorf("aws-sdk-go-v2 ec2rolecreds with the failing role as default: %v, want an error naming AccessDenied", r.Err)
	}
	wantRoleServed(t, d, "alpha", alpha, srcRoleAccount)
}

// poller reads one role over IMDS in a loop, as a busy SDK would, and
// records every answer that is not the role's credentials.
type poller struct {
	role      string
	fresh     bool // a new connection per request (else keep-alive)
	mayVanish bool // the role is removed: 404 is fine once the reload began
	progress  chan<- struct{}

	mu      sync.Mutex
	n       int      // requests answered
	keys    []string // distinct AccessKeyIds seen, in order
	fails   []string
	gone    bool // saw the 404 of a removed role
	reloadN int  // n when the reload started
}

// run polls until ctx ends. reloadBegun tells whether the reload has
// begun; it is read after each answer, so a 404 of the removed role that
// came before it is a failure.
func (p *poller) run(ctx context.Context, d *daemon, reloadBegun func() bool) {
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: p.fresh, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	base := strings.TrimSuffix(d.Endpoint, "/")
	do := func(method, path string, hdr map[string]string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		for k, v := range hdr {
			req.Header[k] = []string{v}
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	var token string
	for i := 0; ctx.Err() == nil; i++ {
		// A new IMDSv2 token every 8 requests: token PUTs and GETs both
		// cross the reload.
		if i%8 == 0 || token == "" {
			code, body, err := do(http.MethodPut, "/latest/api/token", map[string]string{hdrTokenTTL: "300"})
			if ctx.Err() != nil {
				return
			}
			if err != nil || code != http.StatusOK {
				p.fail(fmt.Sprintf("PUT token: %d %v", code, err))
				continue
			}
			token = body
		}
		code, body, err := do(http.MethodGet, "/latest/meta-data/iam/security-credentials/"+p.role, map[string]string{hdrToken: token})
		if ctx.Err() != nil {
			return
		}
		p.record(code, body, err, reloadBegun())
		select {
		case p.progress <- struct{}{}:
		default:
		}
	}
}

func (p *poller) fail(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.fails) < 10 {
		p.fails = append(p.fails, s)
	}
	p.n++
}

func (p *poller) record(code int, body string, err error, reloadBegun bool) {
	if err != nil {
		p.fail("GET: " + err.Error())
		return
	}
	if p.mayVanish && code == http.StatusNotFound && reloadBegun {
		p.mu.Lock()
		p.gone = true
		p.n++
		p.mu.Unlock()
		return
	}
	var doc roleDoc
	if code != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil || doc.Code != "Success" || doc.AccessKeyId == "" {
		p.fail(fmt.Sprintf("GET role %s: %d, Code %q", p.role, code, doc.Code))
		return
	}
	p.mu.Lock()
	gone := p.gone
	p.mu.Unlock()
	if gone {
		p.fail("role " + p.role + " served again after its 404")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if len(p.keys) == 0 || p.keys[len(p.keys)-1] != doc.AccessKeyId {
		p.keys = append(p.keys, doc.AccessKeyId)
	}
}

func (p *poller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// TestRolesReloadUnderLoad: clients poll the roles while a reload adds one
// (delta), removes one (gamma) and changes one's source (beta: a new
// session name); not one request of a role that stays fails, the changed
// role switches from its old set to its new one once, the unchanged role
// keeps its set without an STS call, and the removed role answers 404 from
// the reload on.
func TestRolesReloadUnderLoad(t *testing.T) {
	t.Parallel()
	e := newRolesEnv(t)
	e.writeConfig(t, nil, "alpha", e.alphaItem(), e.betaItem(), gammaItem())
	d := e.start(t, "alpha")
	alpha := e.onlyIssued(t, roleAlphaARN, "AssumeRole")
	betaOld := e.onlyIssued(t, roleBetaARN, "AssumeRoleWithWebIdentity")

	var begun atomic.Bool
	progress := make(chan struct{}, 1)
	var pollers []*poller
	for _, role := range []string{"alpha", "beta"} {
		pollers = append(pollers, &poller{role: role, progress: progress}, &poller{role: role, fresh: true, progress: progress})
	}
	gamma := &poller{role: "gamma", fresh: true, mayVanish: true, progress: progress}
	pollers = append(pollers, gamma)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, p := range pollers {
		wg.Go(func() { p.run(ctx, d, begun.Load) })
	}
	stopped := false
	stop := func() {
		if !stopped {
			cancel()
			wg.Wait()
			stopped = true
		}
	}
	defer stop()

	// waitRequests waits until every poller has answered n more requests,
	// at most 20 s.
	waitRequests := func(what string, n int) {
		t.Helper()
		base := map[*poller]int{}
		for _, p := range pollers {
			base[p] = p.count()
		}
		timeout := time.NewTimer(20 * time.Second)
		defer timeout.Stop()
		for _, p := range pollers {
			for p.count() < base[p]+n {
				select {
				case <-progress:
				case <-timeout.C:
					t.Fatalf("%s: poller of %s answered %d requests in 20s, want %d", what, p.role, p.count()-base[p], n)
				}
			}
		}
	}
	waitRequests("before the reload", 20)

	e.writeConfig(t, nil, "alpha",
		e.alphaItem(),
		e.betaItem("role_session_name: e2e-beta-v2"),
		deltaItem(),
	)
	// beta's new source gets its credentials a second late, so requests
	// keep arriving while the reload is under way: beta's old source
	// serves until the new one has them (reload --wait returns then).
	e.sts.Inject(ststest.Fault{Action: "AssumeRoleWithWebIdentity", Delay: time.Second, Count: 1})
	begun.Store(true)
	for _, p := range pollers {
		p.mu.Lock()
		p.reloadN = p.n
		p.mu.Unlock()
	}
	start := time.Now()
	reloadApplied(t, e.adminSock)
	took := time.Since(start)
	during := map[*poller]int{}
	for _, p := range pollers {
		during[p] = p.count() - p.reloadN
	}
	waitRequests("after the reload", 20)
	stop()

	var total int
	for _, p := range pollers {
		p.mu.Lock()
		total += p.n
		if len(p.fails) > 0 {
			t.Errorf("poller of %s (new connection each: %v): %d of %d requests failed, first: %q", p.role, p.fresh, len(p.fails), p.n, p.fails)
		}
		if during[p] < 5 {
			t.Errorf("poller of %s: %d requests answered while the reload ran (%v), want >= 5", p.role, during[p], took.Round(time.Millisecond))
		}
		p.mu.Unlock()
	}
	var inReload int
	for _, n := range during {
		inReload += n
	}
	t.Logf("%d requests by %d pollers, %d of them while imdsd reload ran (%v, applied)", total, len(pollers), inReload, took.Round(time.Millisecond))
	if took < time.Second {
		t.Errorf("imdsd reload returned after %v, before beta's new source could have its credentials (STS delays them 1s)", took)
	}

	betaSets := e.issuedTo(roleBetaARN, "AssumeRoleWithWebIdentity")
	if len(betaSets) != 2 {
		t.Fatalf("ststest issued %d sets for beta, want 2 (before and after the reload)", len(betaSets))
	}
	betaNew := betaSets[1]
	if rs := e.requests("AssumeRoleWithWebIdentity"); rs[len(rs)-1].Params.Get("RoleSessionName") != "e2e-beta-v2" {
		t.Errorf("beta's new source asked for session %q, want e2e-beta-v2", rs[len(rs)-1].Params.Get("RoleSessionName"))
	}
	for _, p := range pollers {
		var want []string
		switch p.role {
		case "alpha":
			want = []string{alpha.AccessKeyID}
		case "beta":
			want = []string{betaOld.AccessKeyID, betaNew.AccessKeyID}
		default:
			continue
		}
		if !slices.Equal(p.keys, want) {
			t.Errorf("poller of %s saw access keys %q, want %q", p.role, p.keys, want)
		}
	}
	if !gamma.gone {
		t.Errorf("the removed role gamma never answered 404")
	}

	if n := len(e.issuedTo(roleAlphaARN, "AssumeRole")); n != 1 {
		t.Errorf("alpha was issued %d sets, want 1: an unchanged role keeps its credentials across the reload", n)
	}
	wantRoleServed(t, d, "alpha", alpha, srcRoleAccount)
	wantRoleServed(t, d, "beta", betaNew, srcRoleAccount)
	wantRoleServed(t, d, "delta", e.onlyIssued(t, roleDeltaARN, "AssumeRole"), srcRoleAccount)
	if code, _, body := d.do(t, http.MethodGet, "/latest/meta-data/iam/security-credentials/gamma", map[string]string{hdrToken: d.token(t)}); code != http.StatusNotFound {
		t.Errorf("removed role gamma: %d %q, want 404", code, body)
	}
	var names []string
	for _, r := range status(t, e.adminSock, true).Roles {
		names = append(names, r.Name)
	}
	if want := []string{"alpha", "beta", "delta"}; !slices.Equal(names, want) {
		t.Errorf("status roles after the reload = %q, want %q", names, want)
	}
}
