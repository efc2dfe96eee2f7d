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
	synopsis: "check-config [--config FILE] [run flags]",
	summary:  "validate the configuration, exit 0 or 1",
	help: `Validate the configuration imdsd run would use (file, IMDSD_* variables and
flags), including every STS parameter and the base credentials a source
needs, without serving or calling STS. Exit status 0 when valid, 1 when not.

Examples:
  imdsd check-config
  imdsd check-config --config /etc/imdsd/config.yaml
  IMDSD_SOURCE=assume-role imdsd check-config --role-arn arn:aws:iam::123456789012:role/dev
`,
	newCmd: func(cio cmdIO) command { return &checkCmd{cmdIO: cio} },
}

// checkCmd is imdsd check-config: the run flags.
type checkCmd struct {
	cmdIO
	rf runFlags
}

func (c *checkCmd) flags(fs *flag.FlagSet) { c.rf.register(fs) }

func (c *checkCmd) validate(args []string) error { return takesFlagsOnly("imdsd check-config", args) }

func (c *checkCmd) Run(ctx context.Context, _ []string) error {
	cfg, path, srcs, loadErr, invalid := loadRunRoles(ctx, &c.rf, c.getenv, hostDeps(c.getenv))
	if path == "" {
		path = "no config file"
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
