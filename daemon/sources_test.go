package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"

	"github.com/imdsd/imdsd/rotator"
	"github.com/imdsd/imdsd/rotator/ststest"
)

// Broken source settings, each with its exact messages, every problem of
// one configuration reported together.
func TestBuildSourceBadInput(t *testing.T) {
	dir := t.TempDir()
	longPolicy := filepath.Join(dir, "long.json")
	if err := os.WriteFile(longPolicy, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"`+strings.Repeat("x", 2100)+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const role = "arn:aws:iam::123456789012:role/dev"
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"unknown source", []string{"--source", "vault"}, nil, []string{
			`source: must be one of dev, assume-role, web-identity, saml, session-token, federation-token, profile, static (got "vault")`}},
		{"assume-role without a role", []string{"--source", "assume-role"}, nil, []string{
			`role_arn: required by source assume-role`}},
		{"settings of other sources", []string{"--source", "dev", "--external-id", "x-123", "--web-identity-ci", "github", "--federation-name", "build"}, nil, []string{
			`external_id: applies only to source assume-role (got source "dev")`,
			`web_identity_ci: applies only to source web-identity (got source "dev")`,
			`federation_name: applies only to source federation-token (got source "dev")`}},
		{"short and fractional durations", []string{"--source", "assume-role", "--role-arn", role, "--duration", "30m"}, nil, []string{
			`duration: at least 45m so clients always get credentials with 30 minutes left; allow shorter with --allow-short-duration (got "30m0s")`}},
		{"short duration allowed, still within STS limits", []string{"--source", "assume-role", "--role-arn", role, "--duration", "10m", "--allow-short-duration"}, nil, []string{
			`duration: 15m..12h for AssumeRole (got "10m0s")`}},
		{"huge duration", []string{"--source", "session-token", "--duration", "1193047h"}, nil, []string{
			`duration: at most 36h, the longest any STS API grants (got "1193047h0m0s")`}},
		{"fractional duration", []string{"--source", "session-token", "--duration", "1h0m0.5s"}, nil, []string{
			`duration: whole seconds (got "1h0m0.5s")`}},
		{"STS limits, all at once", []string{"--source", "assume-role", "--role-arn", "dev", "--role-session-name", "a",
			"--external-id", "x", "--tag", "team", "--tag", "env=prod", "--transitive-tag-key", "owner", "--source-identity", "aws:me",
			"--policy-file", longPolicy, "--mfa-command", "totp"}, nil, []string{
			`mfa_command: needs mfa_serial, the device the codes are for`,
			`tag: must be KEY=VALUE (got "team")`,
			`role_arn: an IAM role ARN such as arn:aws:iam::123456789012:role/NAME (got "dev")`,
			`role_session_name: 2..64 characters of [\w+=,.@-] (got "a")`,
			`external_id: 2..1224 characters of [\w+=,.@:/-] (got "x")`,
			`source_identity: must not start with "aws:", which AWS reserves (got "aws:me")`,
			`policy: 1..2048 characters (got 2195 characters)`,
			`transitive_tag_keys[0]: one of the keys in tags (got "owner")`}},
		{"unreadable policy file", []string{"--source", "federation-token", "--federation-name", "build", "--policy-file", filepath.Join(dir, "missing.json")}, nil, []string{
			`policy_file: cannot read it: open ` + filepath.Join(dir, "missing.json") + `: no such file or directory`}},
		{"web identity needs one token source", []string{"--source", "web-identity", "--role-arn", role}, nil, []string{
			`web identity token: exactly one of web_identity_ci, web_identity_token_command, web_identity_token_file is needed (got 0)`}},
		{"web identity with two token sources", []string{"--source", "web-identity", "--role-arn", role, "--web-identity-ci", "gitlab", "--web-identity-token-file", "/t"}, nil, []string{
			`web identity token: exactly one of web_identity_ci, web_identity_token_command, web_identity_token_file is needed (got 2)`}},
		{"unknown CI", []string{"--source", "web-identity", "--role-arn", role, "--web-identity-ci", "jenkins"}, nil, []string{
			`web_identity_ci: github or gitlab (got "jenkins")`}},
		{"saml without principal or assertion", []string{"--source", "saml", "--role-arn", role}, nil, []string{
			`saml_principal_arn: required by source saml`,
			`saml assertion: exactly one of saml_assertion_command, saml_assertion_file is needed (got 0)`}},
		{"saml principal of the wrong kind", []string{"--source", "saml", "--role-arn", role, "--saml-principal-arn", role, "--saml-assertion-file", "/a"}, nil, []string{
			`saml_principal_arn: an IAM SAML provider ARN such as arn:aws:iam::123456789012:saml-provider/NAME (got "arn:aws:iam::123456789012:role/dev")`}},
		{"federation without a name", []string{"--source", "federation-token"}, nil, []string{
			`federation_name: required by source federation-token`}},
		{"mfa serial without a code source", []string{"--source", "session-token", "--mfa-serial", "arn:aws:iam::123456789012:mfa/alice"}, nil, []string{
			`mfa_serial arn:aws:iam::123456789012:mfa/alice: no MFA code source configured; set mfa_command`}},
		{"static without keys", []string{"--source", "static"}, nil, []string{
			`static: no keys found; imdsd looked at access_key_id and secret_access_key (config file, IMDSD_ACCESS_KEY_ID and IMDSD_SECRET_ACCESS_KEY) ` +
				`and at AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the service's environment; set a pair in one of them, or name a profile holding keys with --profile`}},
		{"static with half a key pair", []string{"--source", "static"}, map[string]string{"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}, []string{
			`static: an access key ID and secret access key are needed; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the service's environment, or use --profile`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultConfig()
			if err := parseRunFlags(&c, tc.args, &strings.Builder{}); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string { return tc.env[k] }
			c = c.withDefaults(getenv)
			_, err := buildSource(context.Background(), c, fakeDeps(getenv))
			if err == nil {
				t.Fatal("buildSource() = nil error")
			}
			if diff := cmp.Diff(tc.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("buildSource() error (-want +got):\n%s", diff)
			}
		})
	}
}

func fakeDeps(getenv func(string) string) stsDeps {
	return stsDeps{
		loadConfig: func(context.Context, Config) (aws.Config, error) {
			return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(baseKeyID, baseSecret, "")}, nil
		},
		getenv: getenv,
		now:    time.Now,
	}
}

func TestBuildSourceValid(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/dev"
	for _, args := range [][]string{
		{"--source", "dev"},
		{"--source", "assume-role", "--role-arn", role, "--external-id", "ext-1234", "--tag", "team=a=b", "--transitive-tag-key", "team", "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"},
		{"--source", "assume-role", "--role-arn", role, "--mfa-serial", "arn:aws:iam::123456789012:mfa/alice", "--mfa-command", "echo 123456"},
		{"--source", "web-identity", "--role-arn", role, "--web-identity-ci", "github"},
		{"--source", "saml", "--role-arn", role, "--saml-principal-arn", "arn:aws:iam::123456789012:saml-provider/corp", "--saml-assertion-command", "corp-sso"},
		{"--source", "session-token", "--duration", "36h"},
		{"--source", "federation-token", "--federation-name", "build", "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"},
		{"--source", "profile", "--profile", "dev"},
	} {
		c := defaultConfig()
		if err := parseRunFlags(&c, args, &strings.Builder{}); err != nil {
			t.Fatal(err)
		}
		getenv := func(string) string { return "" }
		c = c.withDefaults(getenv)
		if err := c.Validate(); err != nil {
			t.Errorf("%v: Validate() = %v", args, err)
		}
		if _, err := buildSource(context.Background(), c, fakeDeps(getenv)); err != nil {
			t.Errorf("%v: buildSource() = %v", args, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	env := map[string]string{"AWS_DEFAULT_REGION": "eu-west-3"}
	c := defaultConfig()
	_ = parseRunFlags(&c, []string{"--source", "assume-role", "--role-arn", "arn:aws:iam::123456789012:role/path/to/deploy"}, &strings.Builder{})
	c = c.withDefaults(func(k string) string { return env[k] })
	want := struct {
		Region, STSRegion, RoleName string
		Duration                    time.Duration
		Listen                      []string
	}{"eu-west-3", "eu-west-3", "deploy", time.Hour, []string{defaultListen}}
	got := want
	got.Region, got.STSRegion, got.RoleName, got.Duration, got.Listen = c.Region, c.STSRegion, c.RoleName, c.Duration, c.Listen
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withDefaults() (-want +got):\n%s", diff)
	}
}

// Keys in the config file (or IMDSD_*): the static source serves them, the
// STS sources sign with them; never flags.
func TestKeysFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("source: static\naccess_key_id: AKIAFILEKEY000000001\nsecret_access_key: file/secret/key/000000000000000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := loadConfigArgs([]string{"--config", file}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	src, err := buildSource(context.Background(), c, fakeDeps(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Fetch(context.Background())
	if err != nil || got.AccessKeyID != "AKIAFILEKEY000000001" || got.SecretAccessKey != "file/secret/key/000000000000000000000000" {
		t.Errorf("static source from the file: %v, %v", got.AccessKeyID, err)
	}

	// As base credentials: the SDK configuration signs with them.
	c.Source, c.RoleARN = "assume-role", "arn:aws:iam::123456789012:role/dev"
	cfg, err := loadAWSConfig(context.Background(), c, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	base, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || base.AccessKeyID != "AKIAFILEKEY000000001" {
		t.Errorf("base credentials = %q, %v, want the file's", base.AccessKeyID, err)
	}

	env := map[string]string{"IMDSD_ACCESS_KEY_ID": "AKIAONLYHALF00000001"}
	c, _, _ = loadConfigArgs([]string{"--source", "assume-role", "--role-arn", "arn:aws:iam::123456789012:role/dev"}, func(k string) string { return env[k] })
	_, err = buildSource(context.Background(), c, fakeDeps(noEnv))
	if want := "access_key_id, secret_access_key: set both or neither (in the config file or IMDSD_ACCESS_KEY_ID and IMDSD_SECRET_ACCESS_KEY)"; err == nil || err.Error() != want {
		t.Errorf("half a key pair: %v, want %q", err, want)
	}
	if _, _, err := loadConfigArgs([]string{"--secret-access-key", "x"}, noEnv); err == nil {
		t.Error("--secret-access-key was accepted as a flag")
	}
}

// isolateAWS gives the AWS SDK, which reads the process environment and
// files itself, an empty HOME with its config and credentials files in dir
// (not created), and none of the variables it would find credentials,
// profiles or endpoints in. Tests using it cannot run in parallel.
func isolateAWS(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_STS_REGIONAL_ENDPOINTS"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", dir)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// hostConfig is c after the flags args and withDefaults, reading the
// process environment as imdsd run does.
func hostConfig(t *testing.T, args ...string) Config {
	t.Helper()
	c := defaultConfig()
	if err := parseRunFlags(&c, args, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	return c.withDefaults(os.Getenv)
}

// --source profile: the SDK's own AssumeRole for the profile's role_arn
// goes to --sts-endpoint (not the public endpoint), signed with the
// source_profile's keys, asking for 1h as the profile sets no
// duration_seconds; and the role is named after the profile's role_arn.
func TestProfileSourceUsesSTSEndpoint(t *testing.T) {
	dir := isolateAWS(t)
	srv := ststest.NewServer(ststest.WithBaseCredentials(baseKeyID, baseSecret, "arn:aws:iam::123456789012:user/alice"))
	defer srv.Close()
	const role = "arn:aws:iam::123456789012:role/team/deployer"
	writeFile(t, filepath.Join(dir, "config"), "[profile base]\naws_access_key_id = "+baseKeyID+"\naws_secret_access_key = "+baseSecret+"\n\n"+
		"[profile dev]\nrole_arn = "+role+"\nsource_profile = base\n")
	c := hostConfig(t, "--source", "profile", "--profile", "dev", "--sts-endpoint", srv.URL, "--sts-region", "eu-west-3")
	src, err := buildSource(t.Context(), c, hostDeps(os.Getenv))
	if err != nil {
		t.Fatalf("buildSource() = %v", err)
	}
	if n := srv.Stats("").Calls; n != 0 {
		t.Fatalf("buildSource made %d STS calls, want none", n)
	}
	if got := c.withSourceRole(src).RoleName; got != "deployer" {
		t.Errorf("role name = %q, want the profile's role, deployer", got)
	}
	for _, tc := range []struct{ given, want string }{{"", "deployer"}, {"web", "web"}} {
		named := c
		named.RoleName = tc.given
		if got := named.withSourceRole(src).RoleName; got != tc.want {
			t.Errorf("role name %q given: %q, want %q", tc.given, got, tc.want)
		}
	}
	if got := (Config{Source: "profile"}).withSourceRole(rotator.NewDev(rotator.DevOptions{})).RoleName; got != "imdsd-profile" {
		t.Errorf("role name without a role ARN = %q, want imdsd-profile", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	got, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch() = %v, want credentials from the fake STS at --sts-endpoint", err)
	}
	if got.RoleARN != role {
		t.Errorf("Fetch() RoleARN = %q, want %q", got.RoleARN, role)
	}
	var assume []ststest.Request
	for _, r := range srv.Requests() {
		if r.Action == "AssumeRole" {
			assume = append(assume, r)
		}
	}
	if len(assume) != 1 || assume[0].AccessKeyID != baseKeyID || assume[0].Params.Get("RoleArn") != role || assume[0].Params.Get("DurationSeconds") != "3600" {
		t.Errorf("AssumeRole requests at --sts-endpoint = %+v, want one for %s signed by %s with DurationSeconds=3600", assume, role, baseKeyID)
	}
}

// Sources that sign with base credentials fail to build when the SDK finds
// none, naming where imdsd looked; found ones (or ones only resolved at
// run) pass, and nothing is run or called to find out.
func TestBuildSourceBaseCredentials(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/dev"
	tests := []struct {
		name         string
		args         []string
		env          map[string]string
		config, keys string // file contents; "" leaves a file missing
		accessKey    string // access_key_id from the config file or IMDSD_*
		want         string // "" for none
	}{
		{name: "assume-role, none anywhere", args: []string{"--source", "assume-role", "--role-arn", role},
			want: `base credentials: source assume-role signs its STS calls with them and found none; imdsd looked at ` +
				`access_key_id and secret_access_key (config file, IMDSD_ACCESS_KEY_ID and IMDSD_SECRET_ACCESS_KEY), ` +
				`AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and profile "default" (AWS_PROFILE unset; not found) ` +
				`in DIR/config (missing) and DIR/credentials (missing), but not at instance metadata`},
		{name: "session-token, a profile without keys", args: []string{"--source", "session-token", "--profile", "empty"},
			config: "[profile empty]\nregion = eu-west-3\n",
			want: `base credentials: source session-token signs its STS calls with them and found none; imdsd looked at ` +
				`access_key_id and secret_access_key (config file, IMDSD_ACCESS_KEY_ID and IMDSD_SECRET_ACCESS_KEY), ` +
				`AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and profile "empty" (--profile; found, without credentials) ` +
				`in DIR/config and DIR/credentials (missing), but not at instance metadata`},
		{name: "federation-token, AWS_PROFILE without keys", args: []string{"--source", "federation-token", "--federation-name", "build"},
			env: map[string]string{"AWS_PROFILE": "ci"}, keys: "[ci]\n",
			want: `base credentials: source federation-token signs its STS calls with them and found none; imdsd looked at ` +
				`access_key_id and secret_access_key (config file, IMDSD_ACCESS_KEY_ID and IMDSD_SECRET_ACCESS_KEY), ` +
				`AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and profile "ci" (AWS_PROFILE; found, without credentials) ` +
				`in DIR/config (missing) and DIR/credentials, but not at instance metadata`},
		{name: "keys in the environment", args: []string{"--source", "assume-role", "--role-arn", role},
			env: map[string]string{"AWS_ACCESS_KEY_ID": baseKeyID, "AWS_SECRET_ACCESS_KEY": baseSecret}},
		{name: "keys in the credentials file", args: []string{"--source", "session-token"},
			keys: "[default]\naws_access_key_id = " + baseKeyID + "\naws_secret_access_key = " + baseSecret + "\n"},
		{name: "keys from IMDSD_* or the config file", args: []string{"--source", "federation-token", "--federation-name", "build"},
			accessKey: baseKeyID},
		{name: "credential process: resolved at run", args: []string{"--source", "assume-role", "--role-arn", role, "--profile", "proc"},
			config: "[profile proc]\ncredential_process = sh -c 'touch DIR/ran'\n"},
		{name: "SSO: resolved at run", args: []string{"--source", "assume-role", "--role-arn", role, "--profile", "sso"},
			config: "[profile sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = eu-west-3\nsso_account_id = 123456789012\nsso_role_name = dev\n"},
		{name: "a profile assuming a role: resolved at run", args: []string{"--source", "session-token", "--profile", "chain"},
			config: "[profile chain]\nrole_arn = " + role + "\ncredential_source = Environment\n"},
		{name: "static from a profile without keys: not resolved", args: []string{"--source", "static", "--profile", "proc"},
			config: "[profile proc]\ncredential_process = sh -c 'touch DIR/ran'\n",
			want:   "static: profile proc does not hold keys (it assumes a role, or uses SSO or a credential process); use --source profile for it"},
		{name: "static from a profile with keys", args: []string{"--source", "static", "--profile", "keys"},
			keys: "[keys]\naws_access_key_id = " + baseKeyID + "\naws_secret_access_key = " + baseSecret + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolateAWS(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if tc.config != "" {
				writeFile(t, filepath.Join(dir, "config"), strings.ReplaceAll(tc.config, "DIR", dir))
			}
			if tc.keys != "" {
				writeFile(t, filepath.Join(dir, "credentials"), tc.keys)
			}
			c := hostConfig(t, tc.args...)
			if tc.accessKey != "" {
				c.AccessKeyID, c.SecretAccessKey = tc.accessKey, baseSecret
			}
			_, err := buildSource(t.Context(), c, hostDeps(os.Getenv))
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			switch {
			case want == "" && err != nil:
				t.Errorf("buildSource() = %v, want a source", err)
			case want != "" && (err == nil || err.Error() != want):
				t.Errorf("buildSource() = %v\nwant: %s", err, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				t.Error("the credential process ran while building the source")
			}
		})
	}
}

// A federation token without a session policy is allowed (resource-based
// policies can let such a session in), with a warning.
func TestFederationTokenWithoutPolicyWarns(t *testing.T) {
	c := defaultConfig()
	if err := parseRunFlags(&c, []string{"--source", "federation-token", "--federation-name", "build"}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	c = c.withDefaults(noEnv)
	src, err := buildSource(t.Context(), c, fakeDeps(noEnv))
	if err != nil {
		t.Fatalf("buildSource() = %v, want a source", err)
	}
	w := sourceWarnings(src)
	if len(w) != 1 || !strings.Contains(w[0], "federated user build has no permissions of its own") {
		t.Errorf("sourceWarnings() = %q, want one warning about the missing session policy", w)
	}
	c.PolicyARNs = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
	src, err = buildSource(t.Context(), c, fakeDeps(noEnv))
	if err != nil || sourceWarnings(src) != nil {
		t.Errorf("with a policy ARN: %v, sourceWarnings() = %q, want none", err, sourceWarnings(src))
	}
}
