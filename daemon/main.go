package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time with
// -ldflags "-X github.com/imdsd/imdsd/daemon.version=…".
var version = "dev"

// commit and buildDate are set at build time likewise (make build: the
// commit and its time, so that a build is reproducible); without them, the
// Go toolchain's VCS stamp, when it made one.
var commit, buildDate string

// commands lists every sub-command in the order imdsd --help shows them.
func commands() []commandSpec {
	return []commandSpec{
		runSpec, installSpec, uninstallSpec,
		controlSpec("start"), controlSpec("stop"), controlSpec("restart"),
		aliasSpec, checkSpec, statusSpec, credsSpec, mfaSpec, reloadSpec,
		containerEnvSpec, containerTokenSpec, auditSpec, profileSpec, versionSpec,
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString(`imdsd serves the EC2 instance metadata endpoint (IMDS) with rotating
credentials, so unmodified AWS SDKs and the AWS CLI find them.

Usage:
`)
	for _, s := range commands() {
		fmt.Fprintf(&b, "  imdsd %-22s %s\n", s.name, s.summary)
	}
	b.WriteString(`
Configuration: flags, then IMDSD_* environment variables, then the config
file (--config, default ` + defaultConfigPath() + `), then defaults.
Run 'imdsd COMMAND --help' for the flags and examples of each command.

` + exitCodesHelp)
	return b.String()
}

// Main is imdsd without the process: it parses args, runs the sub-command
// and returns the exit code. cmd/imdsd calls it with the process's
// arguments, environment and a context cancelled by SIGINT and SIGTERM.
//
// Before anything else it disables core dumps of the process: every
// command but version handles secrets (credentials, MFA codes), and a
// crash must never write them to disk.
//
// It runs Go with one P (GOMAXPROCS=1) unless GOMAXPROCS is set: an IMDS
// answer costs about 15 µs of CPU, so one CPU serves more answers a second
// than the SDKs of any host ask for, imdsd never takes more than one CPU
// from the host's own work, even under a flood, and an idle imdsd keeps
// about 350 KiB less private memory (each P caches partly used spans of
// its own; BENCHMARKS.md).
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if err := disableCoreDumps(); err != nil {
		fmt.Fprintf(stderr, "imdsd: warning: core dumps stay enabled, so a crash could write credentials to disk: %v\n", err)
	}
	return run(ctx, args, getenv, stdout, stderr)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "--help", "-help", "-h":
		if len(args) > 1 { // imdsd help COMMAND
			return run(ctx, []string{args[1], "--help"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage())
		return exitOK
	case "--version", "-version":
		name = "version"
	}
	for _, s := range commands() {
		if s.name == name {
			return runCommand(ctx, s, args[1:], cmdIO{getenv: getenv, stdout: stdout, stderr: stderr})
		}
	}
	fmt.Fprintf(stderr, "imdsd: unknown command %q\n\n%s", args[0], usage())
	return exitUsage
}

var versionSpec = commandSpec{
	name:     "version",
	synopsis: "version",
	summary:  "print the version",
	help: `Print the version of this imdsd binary (from the git tag it was built
at), the commit, when that commit was made, and the Go release and
platform it was built with.

Examples:
  imdsd version
`,
	newCmd: func(cio cmdIO) command { return &versionCmd{cmdIO: cio} },
}

type versionCmd struct{ cmdIO }

func (*versionCmd) flags(*flag.FlagSet) {}

func (c *versionCmd) validate(args []string) error { return takesFlagsOnly("imdsd version", args) }

func (c *versionCmd) Run(context.Context, []string) error {
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintf(c.stdout, "imdsd %s\n", versionOf(version, bi))
	commit, built, modified := firstNonEmpty(commit, "unknown"), firstNonEmpty(buildDate, "unknown"), false
	if bi != nil && commit == "unknown" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				built = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(c.stdout, "  commit: %s\n  built:  %s (the commit's time)\n  go:     %s %s/%s\n", commit, built, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// versionOf is the version to print: the one make stamps (git describe),
// else the module version go install recorded (go install
// github.com/imdsd/imdsd/cmd/imdsd@v1.2.3 builds with no stamp), else
// "dev".
func versionOf(stamped string, bi *debug.BuildInfo) string {
	if stamped != "dev" && stamped != "" {
		return stamped
	}
	if bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
