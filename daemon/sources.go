package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	ec2imds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/imdsd/imdsd/rotator"
)

// sourceFlags lists, per setting, the sources it applies to; a setting
// given to another source is a mistake worth reporting, not ignoring.
var sourceFlags = []struct {
	field   string
	set     func(Config) bool
	sources []string
}{
	{"role_arn", func(c Config) bool { return c.RoleARN != "" }, []string{"assume-role", "web-identity", "saml"}},
	{"role_session_name", func(c Config) bool { return c.RoleSessionName != "" }, []string{"assume-role", "web-identity"}},
	{"duration", func(c Config) bool { return c.Duration != 0 }, []string{"assume-role", "web-identity", "saml", "session-token", "federation-token", "profile"}},
	{"external_id", func(c Config) bool { return c.ExternalID != "" }, []string{"assume-role"}},
	{"policy_file", func(c Config) bool { return c.PolicyFile != "" }, []string{"assume-role", "web-identity", "saml", "federation-token"}},
	{"policy_arn", func(c Config) bool { return len(c.PolicyARNs) > 0 }, []string{"assume-role", "web-identity", "saml", "federation-token"}},
	{"tag", func(c Config) bool { return len(c.Tags) > 0 }, []string{"assume-role", "federation-token"}},
	{"transitive_tag_key", func(c Config) bool { return len(c.TransitiveTagKeys) > 0 }, []string{"assume-role"}},
	{"source_identity", func(c Config) bool { return c.SourceIdentity != "" }, []string{"assume-role"}},
	{"mfa_serial", func(c Config) bool { return c.MFASerial != "" }, []string{"assume-role", "session-token"}},
	{"mfa_command", func(c Config) bool { return c.MFACommand != "" }, []string{"assume-role", "session-token"}},
	{"web_identity_token_file", func(c Config) bool { return c.WebIdentityTokenFile != "" }, []string{"web-identity"}},
	{"web_identity_token_command", func(c Config) bool { return c.WebIdentityTokenCommand != "" }, []string{"web-identity"}},
	{"web_identity_ci", func(c Config) bool { return c.WebIdentityCI != "" }, []string{"web-identity"}},
	{"saml_principal_arn", func(c Config) bool { return c.SAMLPrincipalARN != "" }, []string{"saml"}},
	{"saml_assertion_file", func(c Config) bool { return c.SAMLAssertionFile != "" }, []string{"saml"}},
	{"saml_assertion_command", func(c Config) bool { return c.SAMLAssertionCommand != "" }, []string{"saml"}},
	{"federation_name", func(c Config) bool { return c.FederationName != "" }, []string{"federation-token"}},
	{"sts_endpoint", func(c Config) bool { return c.STSEndpoint != "" }, []string{"assume-role", "web-identity", "saml", "session-token", "federation-token", "profile"}},
}

// stsDeps are what STS sources are built with; tests replace them.
type stsDeps struct {
	// loadConfig resolves the SDK configuration (base credentials,
	// shared config); the default is config.LoadDefaultConfig with IMDS
	// disabled.
	loadConfig func(ctx context.Context, c Config) (aws.Config, error)
	// httpClient reaches CI runners' OIDC endpoints and STS.
	httpClient *http.Client
	getenv     func(string) string
	now        func() time.Time
	// mfaInbox supplies MFA codes delivered by imdsd mfa when no
	// mfa_command is set.
	mfaInbox *rotator.MFAInbox
}

// hostDeps are the STS dependencies of the real host.
func hostDeps(getenv func(string) string) stsDeps {
	return stsDeps{
		loadConfig: func(ctx context.Context, c Config) (aws.Config, error) { return loadAWSConfig(ctx, c, getenv) },
		getenv:     getenv,
		now:        time.Now,
	}
}

// profileName is the profile --source profile serves: --profile, else
// $AWS_PROFILE, else default.
func profileName(c Config, getenv func(string) string) string {
	return firstNonEmpty(c.Profile, getenv("AWS_PROFILE"), "default")
}

// loadAWSConfig resolves base credentials from the SDK's default chain or
// the profile, with IMDS disabled in that chain so imdsd never asks itself.
// Nothing is called: providers that need the network (a profile's
// role_arn, SSO, credential_process) are only built.
//
// The STS calls the SDK makes itself, for a profile's role_arn or
// web_identity_token_file, go to --sts-endpoint and --sts-region like
// imdsd's own: the SDK would otherwise send them, signed with the user's
// keys, to the public endpoint the user did not name.
func loadAWSConfig(ctx context.Context, c Config, getenv func(string) string) (aws.Config, error) {
	endpoint := func(o *sts.Options) {
		if c.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.STSEndpoint)
		}
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(c.STSRegion),
		config.WithEC2IMDSClientEnableState(ec2imds.ClientDisabled),
		// Roles a profile assumes (role_arn + source_profile) last 15
		// minutes by the SDK's default, too short to serve (SPEC.md R7.2):
		// ask for STS's own default, 1h, unless the profile sets
		// duration_seconds; --duration overrides both for --source profile.
		config.WithAssumeRoleCredentialOptions(func(o *stscreds.AssumeRoleOptions) {
			switch {
			case c.Source == "profile" && c.Duration > 0:
				o.Duration = c.Duration
			case o.Duration == 0:
				o.Duration = time.Hour
			}
			o.Client = assumeRoleAt{o.Client, endpoint}
		}),
		config.WithWebIdentityRoleCredentialOptions(func(o *stscreds.WebIdentityRoleOptions) {
			o.Client = webIdentityAt{o.Client, endpoint}
		}),
	}
	switch {
	case c.Source == "profile":
		// Named explicitly, so that the SDK resolves this profile, not
		// AWS_ACCESS_KEY_ID, which would otherwise come first.
		opts = append(opts, config.WithSharedConfigProfile(profileName(c, getenv)))
	case c.Profile != "":
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.AccessKeyID != "" && c.Source != "profile" {
		// Keys from the config file or IMDSD_* replace the SDK's chain.
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// assumeRoleAt and webIdentityAt add sts.Options (the endpoint) to every
// call of the SDK's own role providers.
type assumeRoleAt struct {
	stscreds.AssumeRoleAPIClient
	opt func(*sts.Options)
}

func (a assumeRoleAt) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	return a.AssumeRoleAPIClient.AssumeRole(ctx, in, append(optFns, a.opt)...)
}

type webIdentityAt struct {
	stscreds.AssumeRoleWithWebIdentityAPIClient
	opt func(*sts.Options)
}

func (w webIdentityAt) AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return w.AssumeRoleWithWebIdentityAPIClient.AssumeRoleWithWebIdentity(ctx, in, append(optFns, w.opt)...)
}

// sourceWarnings returns what the user should read about the source
// buildSource made, though it does not stop imdsd: run logs each at warn
// level when it starts (and after a reload), check-config prints each and
// still reports the configuration valid. For now: a federation-token
// without a session policy.
func sourceWarnings(f rotator.Fetcher) []string {
	if w, ok := f.(interface{ Warnings() []string }); ok {
		return w.Warnings()
	}
	return nil
}

// withSourceRole names the role after the one the source acts as when only
// the built source knows it (the role_arn of a --source profile profile)
// and the configuration left the role name to its default: "", or
// imdsd-SOURCE, which withDefaults sets when nothing else names the role.
// An empty name without such a role becomes imdsd-SOURCE. loadRunConfig
// applies it to the result of buildSource.
func (c Config) withSourceRole(f rotator.Fetcher) Config {
	if p, ok := f.(interface{ RoleARN() string }); ok && p.RoleARN() != "" &&
		(c.RoleName == "" || c.RoleName == "imdsd-"+c.Source) {
		c.RoleName = roleNameOf(p.RoleARN())
	}
	if c.RoleName == "" {
		c.RoleName = "imdsd-" + c.Source
	}
	return c
}

// buildSource checks the source's settings, reporting every problem at
// once, and builds its Fetcher. Nothing is sent to STS or anywhere else:
// a source that signs its STS calls with base credentials fails here when
// none can be found (see checkBaseCredentials), not at its first fetch.
func buildSource(ctx context.Context, c Config, d stsDeps) (rotator.Fetcher, error) {
	if !slices.Contains(sources, c.Source) {
		return nil, fmt.Errorf("source: must be one of %s (got %q)", strings.Join(sources, ", "), c.Source)
	}
	var errs []error
	// Without what a source needs it cannot be built; everything else is
	// reported together with the source's own checks.
	missing := false
	bad := func(field, rule string, got any) {
		errs = append(errs, fmt.Errorf("%s: %s (got %q)", field, rule, fmt.Sprint(got)))
	}
	for _, f := range sourceFlags {
		if f.set(c) && !slices.Contains(f.sources, c.Source) {
			errs = append(errs, fmt.Errorf("%s: applies only to source %s (got source %q)", f.field, strings.Join(f.sources, ", "), c.Source))
		}
	}
	needs := func(field, value string) {
		if value == "" {
			missing = true
			errs = append(errs, fmt.Errorf("%s: required by source %s", field, c.Source))
		}
	}
	oneOf := func(what string, fields map[string]string) {
		n := 0
		for _, v := range fields {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			missing = true
			keys := make([]string, 0, len(fields))
			for k := range fields {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			errs = append(errs, fmt.Errorf("%s: exactly one of %s is needed (got %d)", what, strings.Join(keys, ", "), n))
		}
	}
	if d := c.Duration; d != 0 {
		ok := false
		switch {
		case d%time.Second != 0:
			bad("duration", "whole seconds", d)
		case d < 0 || d > 36*time.Hour:
			bad("duration", "at most 36h, the longest any STS API grants", d)
		case d < 45*time.Minute && !c.AllowShortDuration:
			bad("duration", "at least 45m so clients always get credentials with 30 minutes left; allow shorter with --allow-short-duration", d)
		default:
			ok = true
		}
		if !ok {
			// Reported once: the STS checks below see STS's default.
			c.Duration = 0
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("access_key_id, secret_access_key: set both or neither (in the config file or IMDSD_ACCESS_KEY_ID and IMDSD_SECRET_ACCESS_KEY)"))
	}
	if c.AccessKeyID != "" && (c.Source == "dev" || c.Source == "profile") {
		errs = append(errs, fmt.Errorf("access_key_id: not used by source %s; remove it", c.Source))
	}
	if c.MFACommand != "" && c.MFASerial == "" {
		errs = append(errs, errors.New("mfa_command: needs mfa_serial, the device the codes are for"))
	}
	if c.WebIdentityCI != "" && c.WebIdentityCI != "github" && c.WebIdentityCI != "gitlab" {
		bad("web_identity_ci", "github or gitlab", c.WebIdentityCI)
		missing = true
	}
	var policy string
	if c.PolicyFile != "" {
		b, err := os.ReadFile(c.PolicyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy_file: cannot read it: %w", err))
			missing = true
		}
		policy = string(b)
	}
	tags, err := parseTags(c.Tags)
	if err != nil {
		errs = append(errs, err)
	}
	switch c.Source {
	case "assume-role":
		needs("role_arn", c.RoleARN)
	case "web-identity":
		needs("role_arn", c.RoleARN)
		oneOf("web identity token", map[string]string{"web_identity_token_file": c.WebIdentityTokenFile, "web_identity_token_command": c.WebIdentityTokenCommand, "web_identity_ci": c.WebIdentityCI})
	case "saml":
		needs("role_arn", c.RoleARN)
		needs("saml_principal_arn", c.SAMLPrincipalARN)
		oneOf("saml assertion", map[string]string{"saml_assertion_file": c.SAMLAssertionFile, "saml_assertion_command": c.SAMLAssertionCommand})
	case "federation-token":
		needs("federation_name", c.FederationName)
	}
	if missing || c.Source == "dev" {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return rotator.NewDev(rotator.DevOptions{Lifetime: c.DevLifetime, RoleName: c.RoleName, Now: d.now}), nil
	}
	f, err := newFetcher(ctx, c, d, policy, tags)
	if err = errors.Join(append(errs, err)...); err != nil {
		return nil, err
	}
	return f, nil
}

// newFetcher builds the STS-backed source of c; its constructor checks the
// STS parameters.
func newFetcher(ctx context.Context, c Config, d stsDeps, policy string, tags []types.Tag) (rotator.Fetcher, error) {
	cfg, err := d.loadConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	switch c.Source {
	case "assume-role", "session-token", "federation-token":
		if err := checkBaseCredentials(ctx, c, cfg, d.getenv); err != nil {
			return nil, err
		}
	}
	newClient := func(p aws.CredentialsProvider) rotator.STSClient {
		return sts.NewFromConfig(cfg, func(o *sts.Options) {
			if p != nil {
				o.Credentials = p
			}
			if c.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(c.STSEndpoint)
			}
			if d.httpClient != nil {
				o.HTTPClient = d.httpClient
			}
		})
	}
	client := newClient(nil)
	session := rotator.SessionOptions{
		RoleSessionName: firstNonEmpty(c.RoleSessionName, defaultSessionName()),
		Duration:        c.Duration,
		Policy:          policy,
		PolicyARNs:      c.PolicyARNs,
	}
	mfa := rotator.MFAOptions{Serial: c.MFASerial, NewClient: newClient, Now: d.now}
	switch {
	case c.MFACommand != "":
		mfa.Code = rotator.CommandInput(c.MFACommand, rotator.CommandOptions{})
	case d.mfaInbox != nil:
		mfa.Code = d.mfaInbox
	}

	switch c.Source {
	case "assume-role":
		return rotator.NewAssumeRole(client, c.RoleARN, rotator.AssumeRoleOptions{
			SessionOptions:    session,
			ExternalID:        c.ExternalID,
			Tags:              tags,
			TransitiveTagKeys: c.TransitiveTagKeys,
			SourceIdentity:    c.SourceIdentity,
			MFA:               mfa,
		})
	case "web-identity":
		var token rotator.Input
		switch {
		case c.WebIdentityTokenFile != "":
			token = rotator.FileInput(c.WebIdentityTokenFile)
		case c.WebIdentityTokenCommand != "":
			token = rotator.CommandInput(c.WebIdentityTokenCommand, rotator.CommandOptions{})
		case c.WebIdentityCI == "github":
			token = rotator.GitHubActionsInput(c.WebIdentityAudience, d.getenv, d.httpClient)
		case c.WebIdentityCI == "gitlab":
			token = rotator.GitLabInput(c.WebIdentityGitLabVar, d.getenv)
		}
		return rotator.NewWebIdentity(client, c.RoleARN, token, rotator.WebIdentityOptions{SessionOptions: session})
	case "saml":
		var assertion rotator.Input
		if c.SAMLAssertionFile != "" {
			assertion = rotator.FileInput(c.SAMLAssertionFile)
		} else {
			assertion = rotator.CommandInput(c.SAMLAssertionCommand, rotator.CommandOptions{})
		}
		return rotator.NewSAML(client, c.RoleARN, c.SAMLPrincipalARN, assertion, session)
	case "session-token":
		return rotator.NewSessionToken(client, c.Duration, mfa)
	case "federation-token":
		return rotator.NewFederationToken(client, c.FederationName, session, tags)
	case "profile":
		name := profileName(c, d.getenv)
		return rotator.NewProfile(name, profileRoleARN(cfg, name), cfg.Credentials, client, d.now), nil
	case "static":
		if c.Profile != "" {
			// Only keys written in the profile: anything else would be
			// resolved now, over the network (a role, SSO), and expire.
			if !aws.IsCredentialsProvider(cfg.Credentials, credentials.StaticCredentialsProvider{}) {
				return nil, fmt.Errorf("static: profile %s does not hold keys (it assumes a role, or uses SSO or a credential process); use --source profile for it", c.Profile)
			}
			creds, err := cfg.Credentials.Retrieve(ctx)
			if err != nil {
				return nil, fmt.Errorf("static: read profile %s: %w", c.Profile, err)
			}
			return rotator.NewStatic(creds, d.now)
		}
		if c.AccessKeyID != "" {
			return rotator.NewStatic(aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}, d.now)
		}
		if d.getenv("AWS_ACCESS_KEY_ID") == "" && d.getenv("AWS_SECRET_ACCESS_KEY") == "" {
			return nil, errors.New("static: no keys found; imdsd looked at access_key_id and secret_access_key (config file, " +
				"IMDSD_ACCESS_KEY_ID and IMDSD_SECRET_ACCESS_KEY) and at AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the " +
				"service's environment; set a pair in one of them, or name a profile holding keys with --profile")
		}
		return rotator.NewStatic(aws.Credentials{
			AccessKeyID:     d.getenv("AWS_ACCESS_KEY_ID"),
			SecretAccessKey: d.getenv("AWS_SECRET_ACCESS_KEY"),
			SessionToken:    d.getenv("AWS_SESSION_TOKEN"),
		}, d.now)
	}
	panic("unreachable: buildSource checked the source")
}

// profileRoleARN is the role_arn of profile name in the shared config the
// SDK loaded into cfg, "" when it has none or cfg was not loaded from
// files.
func profileRoleARN(cfg aws.Config, name string) string {
	for _, s := range cfg.ConfigSources {
		if sc, ok := s.(config.SharedConfig); ok && sc.Profile == name {
			return sc.RoleARN
		}
	}
	return ""
}

// checkBaseCredentials fails when the SDK found no base credentials for
// c's source to sign with: its chain (IMDSD_* or config file keys, the
// environment, the profile) ended at instance metadata, which imdsd
// disables (it would ask itself). Nothing is retrieved, so nothing is
// called: a profile that assumes a role, uses SSO or a credential process
// counts as found, and is resolved at run.
func checkBaseCredentials(ctx context.Context, c Config, cfg aws.Config, getenv func(string) string) error {
	if cfg.Credentials != nil && !aws.IsCredentialsProvider(cfg.Credentials, (*ec2rolecreds.Provider)(nil)) {
		return nil
	}
	configFile := firstNonEmpty(getenv("AWS_CONFIG_FILE"), config.DefaultSharedConfigFilename())
	credsFile := firstNonEmpty(getenv("AWS_SHARED_CREDENTIALS_FILE"), config.DefaultSharedCredentialsFilename())
	name, why := c.Profile, "--profile"
	if name == "" {
		name, why = firstNonEmpty(getenv("AWS_PROFILE"), "default"), "AWS_PROFILE"
		if getenv("AWS_PROFILE") == "" {
			why = "AWS_PROFILE unset"
		}
	}
	state := "found, without credentials"
	if _, err := config.LoadSharedConfigProfile(ctx, name, func(o *config.LoadSharedConfigOptions) {
		o.ConfigFiles, o.CredentialsFiles = []string{configFile}, []string{credsFile}
	}); err != nil {
		state = "not found"
	}
	file := func(p string) string {
		if _, err := os.Stat(p); err != nil {
			return p + " (missing)"
		}
		return p
	}
	return fmt.Errorf("base credentials: source %s signs its STS calls with them and found none; imdsd looked at "+
		"access_key_id and secret_access_key (config file, IMDSD_ACCESS_KEY_ID and IMDSD_SECRET_ACCESS_KEY), "+
		"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and profile %q (%s; %s) in %s and %s, but not at instance metadata",
		c.Source, name, why, state, file(configFile), file(credsFile))
}

// parseTags parses KEY=VALUE session tags; values may contain '='.
func parseTags(specs []string) ([]types.Tag, error) {
	var tags []types.Tag
	var errs []error
	for _, s := range specs {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("tag: must be KEY=VALUE (got %q)", s))
			continue
		}
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return tags, errors.Join(errs...)
}

// defaultSessionName is imdsd-USER@HOST, made valid for STS.
func defaultSessionName() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return rotator.DefaultRoleSessionName(name, host)
}
