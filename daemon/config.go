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
// applied.
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
}

func defaultConfig() Config {
	return Config{
		Source:      "dev",
		TokenMode:   "required",
		RoleName:    "imdsd-dev",
		Region:      "us-east-1",
		DevLifetime: time.Hour,
		LogFormat:   "auto",
		LogLevel:    "info",
	}
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

// parseRunFlags applies the command-line flags of `imdsd run` over c.
func parseRunFlags(c *Config, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("imdsd run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: imdsd run [flags]

Serve the instance metadata endpoint in the foreground.

Examples:
  imdsd run                                   # dev credentials on 127.0.0.1:8169
  imdsd run --listen 127.0.0.1:8169 --listen '[::1]:8169'
  imdsd run --token-mode optional             # also accept IMDSv1 requests

Then point SDKs at it:
  export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:8169

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Source, "source", c.Source, "credential source: dev (random local credentials, never accepted by AWS)")
	fs.Var(&stringList{vals: &c.Listen}, "listen", "address to serve, host:port with an IP or localhost; repeatable (default "+defaultListen+")")
	fs.StringVar(&c.TokenMode, "token-mode", c.TokenMode, "IMDSv2 session tokens: required, or optional to also serve IMDSv1")
	fs.Var(&stringList{vals: &c.AllowClient}, "allow-client", "network (CIDR) whose clients may use the endpoint besides this host; repeatable")
	fs.StringVar(&c.RoleName, "role-name", c.RoleName, "role name listed under iam/security-credentials/")
	fs.StringVar(&c.Region, "region", c.Region, "region reported by the endpoint")
	fs.DurationVar(&c.DevLifetime, "dev-lifetime", c.DevLifetime, "lifetime of dev credentials, at least 45m")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: auto (console on a terminal, else JSON), json or console")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: imdsd run takes flags only", fs.Arg(0))
	}
	return nil
}

// Validate reports every problem at once, each as "field: rule (got X)".
func (c Config) Validate() error {
	var errs []error
	bad := func(field, rule string, got any) {
		errs = append(errs, fmt.Errorf("%s: %s (got %q)", field, rule, fmt.Sprint(got)))
	}
	if c.Source != "dev" {
		bad("source", "must be dev", c.Source)
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
	if c.DevLifetime < 45*time.Minute || c.DevLifetime > 36*time.Hour {
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
