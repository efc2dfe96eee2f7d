package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imdsd/imdsd/rotator"
	"go.yaml.in/yaml/v3"
)

// A setting is one configuration value, reachable three ways: the config
// file key, the flag (the key with dashes, singular for repeatable ones) and
// the environment variable IMDSD_<KEY>. One table keeps the three in step:
// every flag has a config key by construction.
type setting struct {
	key   string
	flag  string // "" for secrets: file and environment only
	usage string
	field func(*Config) any // *string, *[]string, *bool, *int or *time.Duration
}

// settings lists them in the order the help shows them.
var settings = []setting{
	{"source", "source", "credential source: " + strings.Join(sources, ", "), func(c *Config) any { return &c.Source }},
	{"listen", "listen", "address to serve, host:port with an IP or localhost; repeatable (default " + defaultListen + ")", func(c *Config) any { return &c.Listen }},
	{"token_mode", "token-mode", "IMDSv2 session tokens: required, or optional to also serve IMDSv1", func(c *Config) any { return &c.TokenMode }},
	{"allow_clients", "allow-client", "network (CIDR) whose clients may use the endpoint besides this host; repeatable", func(c *Config) any { return &c.AllowClient }},
	{"allowed_hosts", "allowed-host", "host name (or address) clients may name in the Host header besides this endpoint's addresses, e.g. a compose service name; repeatable", func(c *Config) any { return &c.AllowedHosts }},
	{"role_name", "role-name", "role name listed under iam/security-credentials/ (default: from --role-arn, else imdsd-SOURCE)", func(c *Config) any { return &c.RoleName }},
	{"region", "region", "region reported by the endpoint (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)", func(c *Config) any { return &c.Region }},
	{"dev_lifetime", "dev-lifetime", "lifetime of dev credentials, 45m..36h", func(c *Config) any { return &c.DevLifetime }},
	{"log_format", "log-format", "log format: auto (console on a terminal, else JSON), json or console", func(c *Config) any { return &c.LogFormat }},
	{"log_level", "log-level", "log level: debug, info, warn or error", func(c *Config) any { return &c.LogLevel }},
	{"role_arn", "role-arn", "role to assume (assume-role, web-identity, saml)", func(c *Config) any { return &c.RoleARN }},
	{"role_session_name", "role-session-name", "session name (default: imdsd-USER@HOST)", func(c *Config) any { return &c.RoleSessionName }},
	{"duration", "duration", "credential lifetime, e.g. 1h or 12h (default: 1h for roles, 12h for session and federation tokens)", func(c *Config) any { return &c.Duration }},
	{"allow_short_duration", "allow-short-duration", "allow --duration under 45m; SDKs may then hold credentials until just before expiry", func(c *Config) any { return &c.AllowShortDuration }},
	{"external_id", "external-id", "external ID the role's trust policy requires (assume-role)", func(c *Config) any { return &c.ExternalID }},
	{"policy_file", "policy-file", "file with an inline session policy (JSON)", func(c *Config) any { return &c.PolicyFile }},
	{"policy_arns", "policy-arn", "managed session policy ARN; repeatable", func(c *Config) any { return &c.PolicyARNs }},
	{"tags", "tag", "session tag KEY=VALUE; repeatable (assume-role, federation-token)", func(c *Config) any { return &c.Tags }},
	{"transitive_tag_keys", "transitive-tag-key", "session tag key that passes to chained roles; repeatable (assume-role)", func(c *Config) any { return &c.TransitiveTagKeys }},
	{"source_identity", "source-identity", "source identity (assume-role)", func(c *Config) any { return &c.SourceIdentity }},
	{"mfa_serial", "mfa-serial", "MFA device serial or ARN (assume-role, session-token)", func(c *Config) any { return &c.MFASerial }},
	{"mfa_command", "mfa-command", "command printing a current MFA code, e.g. a TOTP tool", func(c *Config) any { return &c.MFACommand }},
	{"web_identity_token_file", "web-identity-token-file", "file holding the OIDC token, re-read on every refresh (web-identity)", func(c *Config) any { return &c.WebIdentityTokenFile }},
	{"web_identity_token_command", "web-identity-token-command", "command printing an OIDC token (web-identity)", func(c *Config) any { return &c.WebIdentityTokenCommand }},
	{"web_identity_ci", "web-identity-ci", "take the OIDC token from the CI runner: github or gitlab (web-identity)", func(c *Config) any { return &c.WebIdentityCI }},
	{"web_identity_audience", "web-identity-audience", "audience asked of GitHub Actions", func(c *Config) any { return &c.WebIdentityAudience }},
	{"web_identity_gitlab_variable", "web-identity-gitlab-variable", "variable named under id_tokens: in .gitlab-ci.yml", func(c *Config) any { return &c.WebIdentityGitLabVar }},
	{"saml_principal_arn", "saml-principal-arn", "IAM SAML provider ARN (saml)", func(c *Config) any { return &c.SAMLPrincipalARN }},
	{"saml_assertion_file", "saml-assertion-file", "file holding the base64 SAML assertion, re-read on every refresh (saml)", func(c *Config) any { return &c.SAMLAssertionFile }},
	{"saml_assertion_command", "saml-assertion-command", "command printing a base64 SAML assertion (saml)", func(c *Config) any { return &c.SAMLAssertionCommand }},
	{"federation_name", "federation-name", "federated user name (federation-token)", func(c *Config) any { return &c.FederationName }},
	{"profile", "profile", "AWS CLI profile: the source (profile, static) or the base credentials (others)", func(c *Config) any { return &c.Profile }},
	{"sts_region", "sts-region", "region of the STS endpoint (default: --region)", func(c *Config) any { return &c.STSRegion }},
	{"sts_endpoint", "sts-endpoint", "STS endpoint URL (default: the regional endpoint)", func(c *Config) any { return &c.STSEndpoint }},
	{"default_role", "default-role", "with a roles: list in the config file: the role IMDS lists (default: the first)", func(c *Config) any { return &c.DefaultRole }},
	{"container", "container", "also serve the role on the container credentials endpoint, with a token of its own", func(c *Config) any { return &c.Container }},
	{"container_listen", "container-listen", "address of the container credentials endpoint, e.g. 169.254.170.23:80 or 127.0.0.1:8170; repeatable (default: off)", func(c *Config) any { return &c.ContainerListen }},
	{"container_token_dir", "container-token-dir", "directory of the container tokens, one subdirectory per role (default: $STATE_DIRECTORY/container-tokens, /var/lib/imdsd/container-tokens for root, else ~/.local/state/imdsd/container-tokens)", func(c *Config) any { return &c.ContainerTokenDir }},
	{"container_token_group", "container-token-group", "group (name or id) that may read the container tokens (default: imdsd's own)", func(c *Config) any { return &c.ContainerTokenGroup }},
	{"allow", "", "", func(c *Config) any { return &c.Allow }},
	{"default_roles", "", "", func(c *Config) any { return &c.DefaultRoles }},
	{"session_name_from_caller", "session-name-from-caller", "one STS session per user of allow.users, named imdsd-USER@HOST, so CloudTrail shows who asked", func(c *Config) any { return &c.SessionNameFromCaller }},
	{"source_identity_from_caller", "source-identity-from-caller", "one STS session per user of allow.users, with the user as its source identity (assume-role)", func(c *Config) any { return &c.SourceIdentityFromCaller }},
	{"audit_log", "audit-log", "file of the audit trail: one JSON line per credentials answer and refusal (mode 0600; reopened on SIGHUP)", func(c *Config) any { return &c.AuditLog }},
	{"audit_to_log", "audit-to-log", "also write the audit trail to the service log", func(c *Config) any { return &c.AuditToLog }},
	{"max_connections", "max-connections", "connections held open at once per listen address, 16..65536; at the cap the one waiting longest is closed (default 1024)", func(c *Config) any { return &c.MaxConnections }},
	{"debug_pprof", "debug-pprof", "serve CPU, heap and goroutine profiles on the admin socket (/debug/pprof/; imdsd profile)", func(c *Config) any { return &c.DebugPprof }},
	{"admin_socket", "admin-socket", "admin API socket for imdsd status, creds and mfa (default: $RUNTIME_DIRECTORY, /run/imdsd or the user's runtime directory)", func(c *Config) any { return &c.AdminSocket }},
	{"access_key_id", "", "", func(c *Config) any { return &c.AccessKeyID }},
	{"secret_access_key", "", "", func(c *Config) any { return &c.SecretAccessKey }},
	{"session_token", "", "", func(c *Config) any { return &c.SessionToken }},
}

func envName(key string) string { return "IMDSD_" + strings.ToUpper(key) }

// listFlag is a repeatable flag; the first use replaces what the lower
// layers set.
type listFlag struct {
	vals *[]string
	set  bool
}

func (l *listFlag) String() string {
	if l.vals == nil {
		return ""
	}
	return strings.Join(*l.vals, ",")
}

func (l *listFlag) Set(v string) error {
	if !l.set {
		*l.vals, l.set = nil, true
	}
	*l.vals = append(*l.vals, v)
	return nil
}

// configFlag names the config file; it is not a setting of its own.
const configFlag = "config"

// runFlags are the settings given as flags, shared by run, check-config
// and install (after "--"): the config file path and every setting that
// has a flag. Only flags given on the command line override the lower
// layers (apply).
type runFlags struct {
	configPath string
	values     Config
	fs         *flag.FlagSet // set by register; Visit tells what was given
}

// register adds --config and a flag per setting to fs.
func (f *runFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.configPath, configFlag, "", "config file (YAML; default "+defaultConfigPath()+" when it exists; env IMDSD_CONFIG)")
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		switch p := s.field(&f.values).(type) {
		case *string:
			fs.StringVar(p, s.flag, "", s.usage)
		case *[]string:
			fs.Var(&listFlag{vals: p}, s.flag, s.usage)
		case *bool:
			fs.BoolVar(p, s.flag, false, s.usage)
		case *int:
			fs.IntVar(p, s.flag, 0, s.usage)
		case *time.Duration:
			fs.DurationVar(p, s.flag, 0, s.usage)
		}
	}
}

// given reports whether the flag of setting key was on the command line.
func (f *runFlags) given(key string) bool {
	found := false
	if f.fs != nil {
		f.fs.Visit(func(fl *flag.Flag) { found = found || fl.Name == flagOf(key) })
	}
	return found
}

// apply copies the settings given as flags over c.
func (f *runFlags) apply(c *Config) {
	if f.fs == nil {
		return
	}
	byFlag := map[string]setting{}
	for _, s := range settings {
		byFlag[s.flag] = s
	}
	f.fs.Visit(func(fl *flag.Flag) {
		if s, ok := byFlag[fl.Name]; ok && s.flag != "" {
			copyField(s.field(c), s.field(&f.values))
		}
	})
}

// check reports the flags given with values no layer accepts: a duration
// of zero or less (the file and IMDSD_* refuse them as they parse).
func (f *runFlags) check() error {
	if f.fs == nil {
		return nil
	}
	var errs []error
	for _, s := range settings {
		if d, ok := s.field(&f.values).(*time.Duration); ok && s.flag != "" && *d <= 0 && f.given(s.key) {
			errs = append(errs, fmt.Errorf("--%s: must be a positive duration such as 1h or 90m (got %v)", s.flag, *d))
		}
	}
	return errors.Join(errs...)
}

// flagOf is the flag of the setting key, or "" (secrets have none).
func flagOf(key string) string {
	for _, s := range settings {
		if s.key == key {
			return s.flag
		}
	}
	return ""
}

// takesFlagsOnly is the validate step of the commands whose only input is
// the run flags.
func takesFlagsOnly(name string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %s: %s takes flags only", quote(args[0]), name)
	}
	return nil
}

func copyField(dst, src any) {
	switch d := dst.(type) {
	case *string:
		*d = *src.(*string)
	case *[]string:
		*d = slices.Clone(*src.(*[]string))
	case *bool:
		*d = *src.(*bool)
	case *int:
		*d = *src.(*int)
	case *time.Duration:
		*d = *src.(*time.Duration)
	case **allowSpec:
		*d = *src.(**allowSpec)
	case *[]defaultRoleSpec:
		*d = slices.Clone(*src.(*[]defaultRoleSpec))
	}
}

// applyEnv applies IMDSD_* variables over c. Lists are comma-separated.
func applyEnv(c *Config, getenv func(string) string) error {
	var errs []error
	for _, s := range settings {
		name := envName(s.key)
		v := getenv(name)
		if v == "" {
			continue
		}
		switch p := s.field(c).(type) {
		case *string:
			*p = v
		case *[]string:
			*p = nil
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					*p = append(*p, item)
				}
			}
			// An empty list is "none" for the others, but listen has a
			// default: IMDSD_LISTEN="," must not fall back to it.
			if len(*p) == 0 && s.key == "listen" {
				errs = append(errs, fmt.Errorf("%s: must name at least one address such as 127.0.0.1:8169; unset it to use the default (got %s)", name, quote(v)))
			}
		case *bool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: must be true or false (got %s)", name, quote(v)))
			}
			*p = b
		case *int:
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: must be a whole number such as 1024 (got %s)", name, quote(v)))
			}
			*p = n
		case *time.Duration:
			d, err := parseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			*p = d
		default: // mappings and lists of them: the config file only
			errs = append(errs, fmt.Errorf("%s: %s is set in the config file only; unset the variable", name, s.key))
		}
	}
	return errors.Join(errs...)
}

// parseConfigFile applies a YAML config file over c, strictly: unknown keys,
// repeated keys, values of the wrong type and a second YAML document are
// errors naming the file, line and key. name labels the messages.
func parseConfigFile(c *Config, r io.Reader, name string) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	// Only the first document would be applied: refuse the others rather
	// than ignore them. Empty ones (a trailing "---") set nothing.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(next.Content) > 0 && next.Content[0].Tag != "!!null" {
			return fmt.Errorf("%s:%d: a second YAML document: a config file is one mapping; merge its keys into the first and remove the \"---\" on line %d", name, next.Line, next.Line)
		}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: the file must be a mapping of keys to values, such as \"source: dev\"", name, root.Line)
	}
	byKey := map[string]setting{}
	for _, s := range settings {
		byKey[s.key] = s
	}
	var errs []error
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		at := fmt.Sprintf("%s:%d", name, k.Line)
		if k.Value == "roles" {
			if line, dup := seen[k.Value]; dup {
				errs = append(errs, fmt.Errorf("%s: roles: set twice (first on line %d)", at, line))
				continue
			}
			seen[k.Value] = k.Line
			entries, err := parseRoles(v, name)
			errs = append(errs, err)
			c.roleEntries = entries
			continue
		}
		s, ok := byKey[k.Value]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown key %s%s", at, quote(k.Value), suggest(k.Value)))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			errs = append(errs, fmt.Errorf("%s: %s: set twice (first on line %d)", at, k.Value, line))
			continue
		}
		seen[k.Value] = k.Line
		if err := setFromNode(s.key, s.field(c), v); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", name, v.Line, k.Value, err))
		}
	}
	return errors.Join(errs...)
}

// setFromNode converts the YAML value of setting key into the setting's
// type. A list may be given as one string (listen: 127.0.0.1:8169); tags
// also as a mapping (tags: {team: a} reads as team=a).
func setFromNode(key string, dst any, v *yaml.Node) error {
	str := func(n *yaml.Node) (string, error) {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			return "", fmt.Errorf("must be a string (got %s); quote it if it looks like a number or boolean", describe(n))
		}
		return n.Value, nil
	}
	keyValues := key == "tags"
	switch p := dst.(type) {
	case **allowSpec:
		a, err := parseAllow(v)
		if err != nil {
			return err
		}
		*p = a
		return nil
	case *[]defaultRoleSpec:
		rules, err := parseDefaultRoles(v)
		if err != nil {
			return err
		}
		*p = rules
		return nil
	case *string:
		s, err := str(v)
		if err != nil {
			return err
		}
		*p = s
	case *[]string:
		var items []*yaml.Node
		switch {
		case v.Kind == yaml.SequenceNode:
			items = v.Content
		case v.Kind == yaml.MappingNode && keyValues:
			var out []string
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, err := str(v.Content[i])
				if err != nil {
					return fmt.Errorf("key on line %d %w", v.Content[i].Line, err)
				}
				val, err := str(v.Content[i+1])
				if err != nil {
					return fmt.Errorf("value of %s %w", clip(k), err)
				}
				out = append(out, k+"="+val)
			}
			sort.Strings(out)
			*p = out
			return nil
		case keyValues:
			return fmt.Errorf("must be a mapping such as {team: a} or a list such as [team=a] (got %s)", describe(v))
		case v.Kind == yaml.ScalarNode && v.Tag == "!!str":
			items = []*yaml.Node{v}
		default:
			return fmt.Errorf("must be a list such as [a, b] or one string (got %s)", describe(v))
		}
		// listen has a default, which an empty list must not silently
		// stand for; for the other lists empty means none.
		if len(items) == 0 && key == "listen" {
			return errors.New("must name at least one address such as [127.0.0.1:8169]; remove the key to use the default (got an empty list)")
		}
		var out []string
		for _, it := range items {
			s, err := str(it)
			if err != nil {
				return fmt.Errorf("item on line %d %w", it.Line, err)
			}
			out = append(out, s)
		}
		*p = out
	case *bool:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			return fmt.Errorf("must be true or false (got %s)", describe(v))
		}
		b, _ := strconv.ParseBool(strings.ToLower(v.Value))
		*p = b
	case *int:
		var n int
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil {
			return fmt.Errorf("must be a whole number such as 1024 (got %s)", describe(v))
		}
		*p = n
	case *time.Duration:
		s, err := str(v)
		if err != nil {
			return fmt.Errorf("must be a duration such as 1h or 90m (got %s)", describe(v))
		}
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		*p = d
	}
	return nil
}

// parseDuration parses a duration setting. Every one is a positive span:
// zero or less is refused here, so a later range check never reports
// "-1h" as too long.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("must be a duration such as 1h or 90m (got %s)", quote(s))
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be a positive duration such as 1h or 90m (got %s)", quote(s))
	}
	return d, nil
}

// maxEcho is how much of a value a message repeats: enough to recognise
// it, never a whole pasted document (the same cut as rotator.FieldError).
const maxEcho = 64

// clip cuts s to maxEcho characters and "…".
func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxEcho {
		return s
	}
	n := 0
	for i := range s {
		if n == maxEcho {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// quote is %q of clip(s), for the "(got X)" of messages.
func quote(s string) string { return strconv.Quote(clip(s)) }

// clipQuoted cuts every quoted value longer than maxEcho in the messages
// of err, one message per line. It guards the messages of checks that
// quote values whole (the endpoint's metadata, the source's settings).
func clipQuoted(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var b strings.Builder
	changed := false
	for i := 0; i < len(msg); {
		if msg[i] == '"' {
			if q, qerr := strconv.QuotedPrefix(msg[i:]); qerr == nil {
				if u, uerr := strconv.Unquote(q); uerr == nil && utf8.RuneCountInString(u) > maxEcho {
					b.WriteString(quote(u))
					changed = true
				} else {
					b.WriteString(q)
				}
				i += len(q)
				continue
			}
		}
		b.WriteByte(msg[i])
		i++
	}
	if !changed {
		return err
	}
	var errs []error
	for line := range strings.SplitSeq(b.String(), "\n") {
		errs = append(errs, errors.New(line))
	}
	return errors.Join(errs...)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strings.TrimPrefix(n.Tag, "!!") + " " + quote(n.Value)
	}
	return "an alias"
}

// suggest names the known key closest to an unknown one.
func suggest(key string) string {
	if len(key) > maxEcho {
		return "" // no key is that long; and distances cost len(key)×len(known)
	}
	best, bestD := "", 4
	for _, s := range settings {
		if d := editDistance(key, s.key); d < bestD {
			best, bestD = s.key, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// loadConfig builds the configuration of `imdsd run` (and check-config) from
// its layers: built-in defaults, then the config file, then IMDSD_*
// variables, then the flags given; then derives what is left empty. It
// returns the config file used ("" when none).
func loadConfig(flags *runFlags, getenv func(string) string) (Config, string, error) {
	c := defaultConfig()
	path, explicit := flags.configPath, flags.configPath != ""
	if path == "" {
		path = getenv("IMDSD_CONFIG")
		explicit = path != ""
	}
	if path == "" {
		path = defaultConfigPath()
	}
	var errs []error
	f, err := openConfigFile(path)
	switch {
	case err == nil:
		errs = append(errs, parseConfigFile(&c, io.LimitReader(f, maxConfigSize), path))
		f.Close()
	case explicit || !errors.Is(err, os.ErrNotExist):
		return Config{}, path, fmt.Errorf("config: cannot read %s: %w", path, err)
	default:
		path = "" // no default file: defaults, env and flags only
	}
	errs = append(errs, applyEnv(&c, getenv), flags.check())
	if err := errors.Join(errs...); err != nil {
		return Config{}, path, err
	}
	flags.apply(&c)
	return c.expandRoles().withDefaults(getenv), path, nil
}

// maxConfigSize bounds the config file read: a few hundred bytes is usual.
const maxConfigSize = 1 << 20

// openConfigFile opens the config file, which must be a regular file of at
// most maxConfigSize bytes. It looks before it opens: opening a FIFO
// blocks until something writes to it (and imdsd would wait there, deaf
// to SIGTERM), and a device such as /dev/zero never ends.
func openConfigFile(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkConfigFile(fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// Replaced between the two looks: check what was opened.
	if fi, err = f.Stat(); err == nil {
		err = checkConfigFile(fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func checkConfigFile(fi os.FileInfo) error {
	var kind string
	switch m := fi.Mode(); {
	case m.IsRegular():
		if fi.Size() > maxConfigSize {
			return fmt.Errorf("it is %d bytes, and a config file is at most 1 MiB", fi.Size())
		}
		return nil
	case m.IsDir():
		kind = "a directory"
	case m&os.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		kind = "a socket"
	case m&os.ModeDevice != 0:
		kind = "a device"
	default:
		kind = "not a regular file"
	}
	return fmt.Errorf("it is %s; give the path of a YAML file (--config or IMDSD_CONFIG)", kind)
}

// loadRunConfig is loadConfig followed by every check imdsd run makes
// before serving: the endpoint's settings, and the source's, STS parameters
// included, building the source without calling STS. loadErr means a layer
// could not be read; invalid lists every problem of a configuration that
// was read. src is the default role's source (loadRunRoles has every
// role's).
func loadRunConfig(ctx context.Context, flags *runFlags, getenv func(string) string, deps stsDeps) (c Config, path string, src rotator.Fetcher, loadErr, invalid error) {
	c, path, srcs, loadErr, invalid := loadRunRoles(ctx, flags, getenv, deps)
	return c, path, srcs[c.defaultRoleName()], loadErr, invalid
}

// loadRunRoles is loadRunConfig for every role: their sources by name.
func loadRunRoles(ctx context.Context, flags *runFlags, getenv func(string) string, deps stsDeps) (c Config, path string, srcs map[string]rotator.Fetcher, loadErr, invalid error) {
	c, path, err := loadConfig(flags, getenv)
	if err != nil {
		return c, path, nil, err, nil
	}
	c, srcs, err = buildSources(ctx, c, deps)
	_, _, accessErr := compileAccess(c)
	return c, path, srcs, nil, errors.Join(c.Validate(), clipQuoted(err), accessErr)
}

// buildSources builds every role's source (buildSource), naming the role in
// its errors when there are several.
func buildSources(ctx context.Context, c Config, deps stsDeps) (Config, map[string]rotator.Fetcher, error) {
	srcs := map[string]rotator.Fetcher{}
	roles := c.roleConfigs()
	if len(c.Roles) == 0 {
		src, err := buildSource(ctx, c, deps)
		if err != nil {
			return c, nil, err
		}
		c = c.withSourceRole(src)
		srcs[c.RoleName] = src
		roles = c.roleConfigs()[1:] // the per-user sessions, if any
	}
	var errs []error
	for _, r := range roles {
		if _, done := srcs[r.RoleName]; done {
			continue
		}
		src, err := buildSource(ctx, r, deps)
		if err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("role %s: %w", r.RoleName, e))
			}
			continue
		}
		srcs[r.RoleName] = src
	}
	return c, srcs, errors.Join(errs...)
}
