package daemon

import (
	"context"
	"fmt"
	"io"
)

// version is set at build time with
// -ldflags "-X github.com/imdsd/imdsd/daemon.version=…".
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

var usage = `imdsd serves the EC2 instance metadata endpoint (IMDS) with rotating
credentials, so unmodified AWS SDKs and the AWS CLI find them.

Usage:
  imdsd run [flags]            serve in the foreground
  imdsd install [flags]        install the service running 'imdsd run [flags]' (--dry-run shows it)
  imdsd uninstall              remove the service, its socket and the loopback aliases
  imdsd start|stop|restart     control the installed service
  imdsd alias add|remove       add or remove 169.254.169.254 on the loopback interface
  imdsd check-config [flags]   validate the configuration, exit 0 or 1
  imdsd status                 what the running imdsd serves, and why not
  imdsd creds [--format F]     the served credentials (credential_process JSON with -format process)
  imdsd mfa CODE               hand an MFA code to the running imdsd
  imdsd reload                 make the running imdsd re-read its configuration
  imdsd version                print the version

Configuration: flags, then IMDSD_* environment variables, then the config
file (--config, default ` + defaultConfigPath() + `), then defaults.
Run 'imdsd COMMAND --help' for the flags and examples of each command.
`

// Main is imdsd without the process: it parses args, runs the sub-command
// and returns the exit code. cmd/imdsd calls it with the process's
// arguments, environment and a context cancelled by SIGINT and SIGTERM.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return run(ctx, args, getenv, stdout, stderr)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRunService(ctx, args[1:], getenv, stdout, stderr)
	case "install":
		return cmdInstall(ctx, args[1:], getenv, stdout, stderr)
	case "uninstall":
		return cmdUninstall(ctx, args[1:], getenv, stdout, stderr)
	case "start", "stop", "restart":
		return cmdControl(args[0])(ctx, args[1:], getenv, stdout, stderr)
	case "alias":
		return cmdAlias(ctx, args[1:], getenv, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(ctx, args[1:], getenv, stdout, stderr)
	case "status":
		return cmdStatus(ctx, args[1:], getenv, stdout, stderr)
	case "creds":
		return cmdCreds(ctx, args[1:], getenv, stdout, stderr)
	case "mfa":
		return cmdMFA(ctx, args[1:], getenv, stdout, stderr)
	case "reload":
		return cmdReload(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-version":
		if len(args) > 1 {
			fmt.Fprint(stdout, "Usage: imdsd version\n\nPrint the version of this imdsd binary.\n")
			return exitOK
		}
		fmt.Fprintf(stdout, "imdsd %s\n", version)
		return exitOK
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "imdsd: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
