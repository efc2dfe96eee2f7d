package daemon

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"
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
	cfg, err := loadAWSConfig(context.Background(), c)
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
