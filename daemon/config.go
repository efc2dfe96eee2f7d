package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/rotator"
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
	// AllowedHosts are names (or addresses) accepted in the IMDS Host
	// header besides the endpoint's own addresses (imds.ParseAllowedHost).
	AllowedHosts []string

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

	// MaxConnections caps the connections each listener holds open; at
	// the cap the one waiting longest is closed (imds.NewServer).
	MaxConnections int

	// Several roles (roles.go). Roles are the roles: list of the config
	// file, each over this configuration's own role settings; empty, c is
	// the one role, named RoleName. DefaultRole is the role IMDS lists
	// (default: the first).
	Roles       []Config
	roleEntries []roleEntry // the roles: list as parsed, before expandRoles
	DefaultRole string
	// Container serves this role on the container endpoint too, with a
	// token of its own.
	Container bool
	// The container credentials endpoint (SPEC.md §9): its listeners, the
	// directory of the roles' token files and the group that may read
	// them.
	ContainerListen     []string
	ContainerTokenDir   string
	ContainerTokenGroup string

	// Who may have the role (access.go): nil, any local caller. Per user
	// or group default roles (top level). The audit trail's file, and
	// whether it also goes to the service log.
	Allow        *allowSpec
	DefaultRoles []defaultRoleSpec
	// The caller becomes part of the STS session, one session per user
	// of Allow.Users (callers.go): in the role session name, or as the
	// source identity. callerOf names the user of such a session.
	SessionNameFromCaller    bool
	SourceIdentityFromCaller bool
	callerOf, variantOf      string // of a per-user session: the user, the role
	AuditLog                 string
	AuditToLog               bool

	// AdminSocket is where the admin API listens (a unix socket; on
	// Windows the token file of its loopback listener).
	AdminSocket string
	// DebugPprof serves Go's profiles (net/http/pprof) on the admin API
	// under /debug/pprof/; off by default.
	DebugPprof bool

	// Keys for the static source, or base credentials for the STS
	// sources instead of the SDK's chain. Secrets: config file and
	// IMDSD_* variables only, never flags (process arguments are visible
	// to every user).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Sources, in the order the help lists them.
var sources = []string{"dev", "assume-role", "web-identity", "saml", "session-token", "federation-token", "profile", "static"}

func defaultConfig() Config {
	return Config{
		Source:               "dev",
		TokenMode:            "required",
		MaxConnections:       imds.DefaultMaxConns,
		DevLifetime:          time.Hour,
		LogFormat:            "auto",
		LogLevel:             "info",
		WebIdentityAudience:  rotator.DefaultOIDCAudience,
		WebIdentityGitLabVar: rotator.DefaultGitLabOIDCVariable,
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
	if c.AdminSocket == "" {
		c.AdminSocket = defaultAdminSocket(getenv)
	}
	if c.STSRegion == "" {
		c.STSRegion = c.Region
	}
	if c.ContainerTokenDir == "" && len(c.ContainerListen) > 0 {
		c.ContainerTokenDir = defaultContainerTokenDir(getenv)
	}
	c.Roles = slices.Clone(c.Roles)
	for i, r := range c.Roles {
		r.Region, r.AdminSocket = c.Region, c.AdminSocket
		c.Roles[i] = r.withDefaults(getenv)
	}
	if len(c.Roles) > 0 && c.DefaultRole == "" {
		c.DefaultRole = c.Roles[0].RoleName
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

// defaultListen is where `imdsd run` listens when no --listen is given: a
// port any user may bind, on loopback.
const defaultListen = "127.0.0.1:8169"

const runHelp = `Serve the instance metadata endpoint in the foreground, with credentials
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
`

// Validate reports every problem of the endpoint's and logging settings at
// once, each as "field: rule (got X)". The source's settings are checked
// when it is built (buildSource), which reports its problems likewise.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, rule string, got any) {
		errs = append(errs, fmt.Errorf("%s: %s (got %s)", field, rule, quote(fmt.Sprint(got))))
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
	for _, h := range c.AllowedHosts {
		if _, err := imds.ParseAllowedHost(h); err != nil {
			errs = append(errs, clipQuoted(err))
		}
	}
	// The metadata the endpoint serves (role name, region); listen
	// addresses and modes were checked above.
	ic := c.imdsConfig()
	ic.ListenAddrs, ic.AllowedClients, ic.AllowedHosts, ic.TokenMode = nil, nil, nil, imds.TokenRequired
	if err := ic.WithDefaults().Validate(); err != nil {
		errs = append(errs, clipQuoted(err))
	}
	errs = append(errs, c.validateRoles(), c.validateContainers())
	if c.MaxConnections < minMaxConnections || c.MaxConnections > maxMaxConnections {
		bad("max_connections", fmt.Sprintf("must be %d..%d", minMaxConnections, maxMaxConnections), c.MaxConnections)
	}
	for _, r := range c.roleConfigs() {
		field := "dev_lifetime"
		if len(c.Roles) > 0 {
			field = "role " + r.RoleName + ": dev_lifetime"
		}
		if r.Source == "dev" && (r.DevLifetime < 45*time.Minute || r.DevLifetime > 36*time.Hour) {
			bad(field, "must be 45m..36h so clients always get credentials with 30 minutes left", r.DevLifetime)
		}
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

// Bounds of max_connections. Below 16, clients connecting at the same
// moment would close each other's connections before their requests are
// read; above 65536, the cap no longer bounds memory (about 20 KiB a
// connection, BENCHMARKS.md) nor file descriptors.
const (
	minMaxConnections = 16
	maxMaxConnections = 65536
)

// imdsConfig is the endpoint's part of c; c must be valid.
func (c Config) imdsConfig() imds.Config {
	mode, _ := imds.ParseMode(c.TokenMode)
	allowed, _ := c.allowedClients()
	names := c.roleNames()
	return imds.Config{
		RoleName:       names[0],
		Roles:          names[1:],
		Region:         c.Region,
		HostSeed:       hostSeed(),
		TokenMode:      mode,
		AllowedClients: allowed,
		AllowedHosts:   c.AllowedHosts,
		ListenAddrs:    c.Listen,
	}
}

func (c Config) allowedClients() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range c.AllowClient {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("allow_client: must be a network in CIDR form such as 172.17.0.0/16 (got %s)", quote(s)))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}
