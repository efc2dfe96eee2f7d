package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
)

var checkSpec = commandSpec{
	name:     "check-config",
	synopsis: "check-config [--no-dev] [--config FILE] [run flags]",
	summary:  "validate the configuration, exit 0 or 1",
	help: `Validate the configuration imdsd run would use (file, IMDSD_* variables and
flags), including every STS parameter and the base credentials a source
needs, without serving or calling STS. Exit status 0 when valid, 1 when not.
--no-dev also refuses a role served by the dev source (the default when no
source is set), whose made-up credentials AWS refuses: the packages start
the service at install only when this passes.

Examples:
  imdsd check-config
  imdsd check-config --no-dev --config /etc/imdsd/config.yaml
  imdsd check-config --config /etc/imdsd/config.yaml
  IMDSD_SOURCE=assume-role imdsd check-config --role-arn arn:aws:iam::123456789012:role/dev
`,
	newCmd: func(cio cmdIO) command { return &checkCmd{cmdIO: cio} },
}

// checkCmd is imdsd check-config: the run flags.
type checkCmd struct {
	cmdIO
	rf    runFlags
	noDev bool
}

func (c *checkCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.noDev, "no-dev", false, "also refuse a role served by the dev source (made-up credentials; the default when no source is set)")
	c.rf.register(fs)
}

func (c *checkCmd) validate(args []string) error { return takesFlagsOnly("imdsd check-config", args) }

func (c *checkCmd) Run(ctx context.Context, _ []string) error {
	cfg, path, srcs, loadErr, invalid := loadRunRoles(ctx, &c.rf, c.getenv, hostDeps(c.getenv))
	if path == "" {
		path = "no config file"
	}
	if c.noDev && loadErr == nil {
		invalid = errors.Join(invalid, devSources(cfg))
	}
	if err := errors.Join(loadErr, invalid); err != nil {
		return fmt.Errorf("%s: invalid:\n%w", path, err)
	}
	roles := cfg.roleConfigs()
	if _, warnings, _ := compileAccess(cfg); len(warnings) > 0 {
		for _, w := range warnings {
			fmt.Fprintf(c.stderr, "imdsd check-config: warning: %s\n", w)
		}
	}
	for _, r := range roles {
		for _, w := range sourceWarnings(srcs[r.RoleName]) {
			if len(cfg.Roles) > 0 {
				w = "role " + r.RoleName + ": " + w
			}
			fmt.Fprintf(c.stderr, "imdsd check-config: warning: %s\n", w)
		}
	}
	if len(cfg.Roles) == 0 {
		fmt.Fprintf(c.stdout, "%s: valid: source %s, role %s, region %s, listening on %s, tokens %s\n",
			path, cfg.Source, cfg.RoleName, cfg.Region, strings.Join(cfg.Listen, ", "), cfg.TokenMode)
	} else {
		fmt.Fprintf(c.stdout, "%s: valid: %d roles, region %s, listening on %s, tokens %s\n",
			path, len(roles), cfg.Region, strings.Join(cfg.Listen, ", "), cfg.TokenMode)
		for _, r := range roles {
			def, ctr := "", ""
			if r.RoleName == cfg.DefaultRole {
				def = " (default: listed by IMDS)"
			}
			if r.Container {
				ctr = ", served to containers"
			}
			fmt.Fprintf(c.stdout, "  role %s: source %s%s%s\n", r.RoleName, r.Source, ctr, def)
		}
	}
	if len(cfg.ContainerListen) > 0 {
		fmt.Fprintf(c.stdout, "  container endpoint on %s, tokens in %s\n", strings.Join(cfg.ContainerListen, ", "), cfg.ContainerTokenDir)
	}
	return nil
}

// devSources is check-config --no-dev's refusal of the roles that the dev
// source would serve: the packages' postinst starts the service only
// without one, so that installing never serves made-up credentials.
func devSources(cfg Config) error {
	var errs []error
	for _, r := range cfg.roleConfigs() {
		if r.Source != "dev" {
			continue
		}
		field := "source"
		if len(cfg.Roles) > 0 {
			field = "role " + r.RoleName + ": source"
		}
		errs = append(errs, fmt.Errorf("%s: must be a real credential source, not dev's made-up credentials; set one (imdsd run --help lists them) (got dev)", field))
	}
	return errors.Join(errs...)
}
