package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/imdsd/imdsd/imds"
)

// Config is everything `imdsd run` needs, after every layer has been
// applied. Empty strings and zero durations mean "derive the default" (see
// withDefaults).
type Config struct {
	Source      string
	Listen      []string
	TokenMode   string
	AllowClient []string
	RoleName    string
	Region      string
	DevLifetime time.Duration
	LogFormat   string
	LogLevel    string

	// STS sources; names follow the AWS CLI where one exists.
	RoleARN                 string
	RoleSessionName         string
	Duration                time.Duration
	AllowShortDuration      bool
	ExternalID              string
	PolicyFile              string
	PolicyARNs              []string
	Tags                    []string // KEY=VALUE
	TransitiveTagKeys       []string
	SourceIdentity          string
	MFASerial               string
	MFACommand              string
	WebIdentityTokenFile    string
	WebIdentityTokenCommand string
	WebIdentityCI           string // github | gitlab
	WebIdentityAudience     string
	WebIdentityGitLabVar    string
	SAMLPrincipalARN        string
	SAMLAssertionFile       string
	SAMLAssertionCommand    string
	FederationName          string
	Profile                 string
	STSRegion               string
	STSEndpoint             string
}

// Sources, in the order the help lists them.
var sources = []string{"dev", "assume-role", "web-identity", "saml", "session-token", "federation-token", "profile", "static"}

func defaultConfig() Config {
	return Config{
		Source:               "dev",
		TokenMode:            "required",
		DevLifetime:          time.Hour,
		LogFormat:            "auto",
		LogLevel:             "info",
		WebIdentityAudience:  "sts.amazonaws.com",
		WebIdentityGitLabVar: "GITLAB_OIDC_TOKEN",
	}
}

// withDefaults derives what was left empty: the listen address, the region
// (AWS_REGION, AWS_DEFAULT_REGION, else us-east-1), the STS region (the
// region), the role name (from the role ARN, else per source) and the
// credential lifetime (STS's own defaults).
func (c Config) withDefaults(getenv func(string) string) Config {
	if len(c.Listen) == 0 {
		c.Listen = []string{defaultListen}
	}
	if c.Region == "" {
		c.Region = firstNonEmpty(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), "us-east-1")
	}
	if c.STSRegion == "" {
		c.STSRegion = c.Region
	}
	if c.RoleName == "" {
		switch {
		case c.RoleARN != "":
			c.RoleName = roleNameOf(c.RoleARN)
		case c.Source == "federation-token" && c.FederationName != "":
			c.RoleName = c.FederationName
		default:
			c.RoleName = "imdsd-" + c.Source
		}
	}
	if c.Duration == 0 {
		switch c.Source {
		case "assume-role", "web-identity", "saml":
			c.Duration = time.Hour
		case "session-token", "federation-token":
			c.Duration = 12 * time.Hour
		}
	}
	return c
}

// roleNameOf is the last path element of a role ARN.
func roleNameOf(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// stringList is a repeatable flag. The first use replaces the default.
type stringList struct {
	vals *[]string
	set  bool
}

func (s *stringList) String() string {
	if s.vals == nil {
		return ""
	}
	return strings.Join(*s.vals, ",")
}

func (s *stringList) Set(v string) error {
	if !s.set {
		*s.vals, s.set = nil, true
	}
	*s.vals = append(*s.vals, v)
	return nil
}

// defaultListen is where `imdsd run` listens when no --listen is given: a
// port any user may bind, on loopback.
const defaultListen = "127.0.0.1:8169"

const runHelp = `Usage: imdsd run [flags]

Serve the instance metadata endpoint in the foreground, with credentials
from the chosen source, renewed well before they expire.

Sources (--source):
  dev               random local credentials, never accepted by AWS (default)
  assume-role       sts:AssumeRole with the base credentials of the SDK chain or --profile
  web-identity      sts:AssumeRoleWithWebIdentity with an OIDC token (file, command, CI runner)
  saml              sts:AssumeRoleWithSAML with an assertion (file or command)
  session-token     sts:GetSessionToken (optionally with MFA)
  federation-token  sts:GetFederationToken
  profile           whatever an AWS CLI profile resolves to (SSO, credential_process, role chains)
  static            fixed keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile

Examples:
  imdsd run                                   # dev credentials on 127.0.0.1:8169
  imdsd run --source assume-role --role-arn arn:aws:iam::123456789012:role/dev
  imdsd run --source assume-role --role-arn arn:aws:iam::123456789012:role/admin \
      --mfa-serial arn:aws:iam::123456789012:mfa/alice --mfa-command 'ykman oath accounts code -s aws'
  imdsd run --source web-identity --role-arn arn:aws:iam::123456789012:role/ci --web-identity-ci github
  imdsd run --source profile --profile sso-dev
  imdsd run --listen 127.0.0.1:8169 --listen '[::1]:8169' --token-mode optional

Then point SDKs at it:
  export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:8169/

Secrets are never flags: base credentials and static keys come from the
environment or a profile.

Flags:
`

// parseRunFlags applies the command-line flags of `imdsd run` over c.
func parseRunFlags(c *Config, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("imdsd run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, runHelp)
		fs.PrintDefaults()
	}
	list := func(p *[]string, name, usage string) { fs.Var(&stringList{vals: p}, name, usage) }
	fs.StringVar(&c.Source, "source", c.Source, "credential source: "+strings.Join(sources, ", "))
	list(&c.Listen, "listen", "address to serve, host:port with an IP or localhost; repeatable (default "+defaultListen+")")
	fs.StringVar(&c.TokenMode, "token-mode", c.TokenMode, "IMDSv2 session tokens: required, or optional to also serve IMDSv1")
	list(&c.AllowClient, "allow-client", "network (CIDR) whose clients may use the endpoint besides this host; repeatable")
	fs.StringVar(&c.RoleName, "role-name", c.RoleName, "role name listed under iam/security-credentials/ (default: from --role-arn, else imdsd-SOURCE)")
	fs.StringVar(&c.Region, "region", c.Region, "region reported by the endpoint (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)")
	fs.DurationVar(&c.DevLifetime, "dev-lifetime", c.DevLifetime, "lifetime of dev credentials, 45m..36h")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: auto (console on a terminal, else JSON), json or console")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")

	fs.StringVar(&c.RoleARN, "role-arn", c.RoleARN, "role to assume (assume-role, web-identity, saml)")
	fs.StringVar(&c.RoleSessionName, "role-session-name", c.RoleSessionName, "session name (default: imdsd-USER@HOST)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "credential lifetime, e.g. 1h or 12h (default: 1h for roles, 12h for session and federation tokens)")
	fs.BoolVar(&c.AllowShortDuration, "allow-short-duration", c.AllowShortDuration, "allow --duration under 45m; SDKs may then hold credentials until just before expiry")
	fs.StringVar(&c.ExternalID, "external-id", c.ExternalID, "external ID the role's trust policy requires (assume-role)")
	fs.StringVar(&c.PolicyFile, "policy-file", c.PolicyFile, "file with an inline session policy (JSON)")
	list(&c.PolicyARNs, "policy-arn", "managed session policy ARN; repeatable")
	list(&c.Tags, "tag", "session tag KEY=VALUE; repeatable (assume-role, federation-token)")
	list(&c.TransitiveTagKeys, "transitive-tag-key", "session tag key that passes to chained roles; repeatable (assume-role)")
	fs.StringVar(&c.SourceIdentity, "source-identity", c.SourceIdentity, "source identity (assume-role)")
	fs.StringVar(&c.MFASerial, "mfa-serial", c.MFASerial, "MFA device serial or ARN (assume-role, session-token)")
	fs.StringVar(&c.MFACommand, "mfa-command", c.MFACommand, "command printing a current MFA code, e.g. a TOTP tool")
	fs.StringVar(&c.WebIdentityTokenFile, "web-identity-token-file", c.WebIdentityTokenFile, "file holding the OIDC token, re-read on every refresh (web-identity)")
	fs.StringVar(&c.WebIdentityTokenCommand, "web-identity-token-command", c.WebIdentityTokenCommand, "command printing an OIDC token (web-identity)")
	fs.StringVar(&c.WebIdentityCI, "web-identity-ci", c.WebIdentityCI, "take the OIDC token from the CI runner: github or gitlab (web-identity)")
	fs.StringVar(&c.WebIdentityAudience, "web-identity-audience", c.WebIdentityAudience, "audience asked of GitHub Actions")
	fs.StringVar(&c.WebIdentityGitLabVar, "web-identity-gitlab-variable", c.WebIdentityGitLabVar, "variable named under id_tokens: in .gitlab-ci.yml")
	fs.StringVar(&c.SAMLPrincipalARN, "saml-principal-arn", c.SAMLPrincipalARN, "IAM SAML provider ARN (saml)")
	fs.StringVar(&c.SAMLAssertionFile, "saml-assertion-file", c.SAMLAssertionFile, "file holding the base64 SAML assertion, re-read on every refresh (saml)")
	fs.StringVar(&c.SAMLAssertionCommand, "saml-assertion-command", c.SAMLAssertionCommand, "command printing a base64 SAML assertion (saml)")
	fs.StringVar(&c.FederationName, "federation-name", c.FederationName, "federated user name (federation-token)")
	fs.StringVar(&c.Profile, "profile", c.Profile, "AWS CLI profile: the source (profile, static) or the base credentials (others)")
	fs.StringVar(&c.STSRegion, "sts-region", c.STSRegion, "region of the STS endpoint (default: --region)")
	fs.StringVar(&c.STSEndpoint, "sts-endpoint", c.STSEndpoint, "STS endpoint URL (default: the regional endpoint)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: imdsd run takes flags only", fs.Arg(0))
	}
	return nil
}

// Validate reports every problem of the endpoint's and logging settings at
// once, each as "field: rule (got X)". The source's settings are checked
// when it is built (buildSource), which reports its problems likewise.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, rule string, got any) {
		errs = append(errs, fmt.Errorf("%s: %s (got %q)", field, rule, fmt.Sprint(got)))
	}
	if len(c.Listen) == 0 {
		bad("listen", "at least one address is needed", "")
	}
	seen := map[string]bool{}
	for _, l := range c.Listen {
		if _, err := imds.ParseListen(l); err != nil {
			errs = append(errs, err)
		} else if seen[l] {
			bad("listen", "each address once", l)
		}
		seen[l] = true
	}
	if _, err := imds.ParseMode(c.TokenMode); err != nil {
		bad("token_mode", "must be required or optional", c.TokenMode)
	}
	if _, err := c.allowedClients(); err != nil {
		errs = append(errs, err)
	}
	// The metadata the endpoint serves (role name, region); listen
	// addresses and modes were checked above.
	ic := c.imdsConfig()
	ic.ListenAddrs, ic.AllowedClients, ic.TokenMode = nil, nil, imds.TokenRequired
	if err := ic.WithDefaults().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Source == "dev" && (c.DevLifetime < 45*time.Minute || c.DevLifetime > 36*time.Hour) {
		bad("dev_lifetime", "must be 45m..36h so clients always get credentials with 30 minutes left", c.DevLifetime)
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		bad("log_format", "must be auto, json or console", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}

// imdsConfig is the endpoint's part of c; c must be valid.
func (c Config) imdsConfig() imds.Config {
	mode, _ := imds.ParseMode(c.TokenMode)
	allowed, _ := c.allowedClients()
	return imds.Config{
		RoleName:       c.RoleName,
		Region:         c.Region,
		HostSeed:       hostSeed(),
		TokenMode:      mode,
		AllowedClients: allowed,
		ListenAddrs:    c.Listen,
	}
}

func (c Config) allowedClients() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range c.AllowClient {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("allow_client: must be a network in CIDR form such as 172.17.0.0/16 (got %q)", s))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}
