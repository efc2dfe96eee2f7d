package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

const checkHelp = `Usage: imdsd check-config [--config FILE] [run flags]

Validate the configuration imdsd run would use (file, IMDSD_* variables and
flags), including every STS parameter, without serving or calling STS.
Exit status 0 when valid, 1 when not.

Examples:
  imdsd check-config
  imdsd check-config --config /etc/imdsd/config.yaml
  IMDSD_SOURCE=assume-role imdsd check-config --role-arn arn:aws:iam::123456789012:role/dev

Flags:
`

func cmdCheckConfig(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, path, _, loadErr, invalid := loadRunConfig(ctx, "imdsd check-config", checkHelp, args, getenv, stderr, hostDeps(getenv))
	if errors.Is(loadErr, flag.ErrHelp) {
		return exitOK
	}
	err := errors.Join(loadErr, invalid)
	if path == "" {
		path = "no config file"
	}
	if err != nil {
		fmt.Fprintf(stderr, "imdsd check-config: %s: invalid:\n  %s\n", path, strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return exitError
	}
	fmt.Fprintf(stdout, "%s: valid: source %s, role %s, region %s, listening on %s, tokens %s\n",
		path, c.Source, c.RoleName, c.Region, strings.Join(c.Listen, ", "), c.TokenMode)
	return exitOK
}
