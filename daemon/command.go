package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Every sub-command has the same shape: a small struct holding its flags
// (registered by flags), and Run, which does the work with the arguments
// left after the flags. How a command ends is said by the error Run
// returns (exitCodeOf), so that the same outcome has the same exit code in
// every command; the codes are listed in imdsd --help.

// A command is one sub-command of imdsd, built afresh for each invocation.
type command interface {
	// flags registers the command's flags, which write into the struct.
	flags(fs *flag.FlagSet)
	// Run does the work. args are the positional arguments, in order;
	// flags may come before, between or after them, and "--" ends them.
	Run(ctx context.Context, args []string) error
}

// A validator is a command that checks its flags and arguments before Run;
// its errors are reported together with those of the flags themselves.
type validator interface {
	validate(args []string) error
}

// cmdIO is what a command uses of the process.
type cmdIO struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// commandSpec describes one sub-command for the dispatcher and the help.
type commandSpec struct {
	name     string // as typed: "status"
	synopsis string // after "imdsd ": "status [--json] [--role NAME]"
	summary  string // one line for imdsd --help
	help     string // what it does, then "Examples:"; the flags follow it
	newCmd   func(io cmdIO) command
}

// Exit codes: the same outcome has the same code in every command.
const (
	exitOK          = 0 // done; status: valid credentials are served
	exitError       = 1 // the command ran and failed (check-config: the configuration is invalid)
	exitUsage       = 2 // a flag, argument or configuration value is wrong: nothing was done
	exitUnreachable = 3 // no running imdsd answers on the admin socket
	exitPermission  = 4 // not allowed: needs root, or the admin socket refuses this user
	exitPending     = 5 // reload: accepted, but the new source has not taken over yet
)

const exitCodesHelp = `Exit status (the same in every command):
  0  done (status: valid credentials are being served)
  1  the command ran and failed (check-config: the configuration is invalid;
     status: no valid credentials are being served)
  2  usage: a flag, argument or configuration value is wrong; nothing was done
  3  no running imdsd answers on the admin socket
  4  permission denied: needs root, or the admin socket refuses this user
  5  reload only: accepted, but the new source has not taken over yet
`

// cmdError is an error with the exit code it ends the command with.
type cmdError struct {
	code int
	err  error
}

func (e *cmdError) Error() string { return e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &cmdError{code: code, err: err}
}

// usageErrorf is a wrong flag, argument or value: exit 2.
func usageErrorf(format string, a ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, a...))
}

// exitCodeOf is the exit code for the error a command returned.
func exitCodeOf(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *cmdError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitError
}

// silentError ends a command with a code after it has printed what
// happened itself (status printing an unhealthy state).
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// runCommand parses args for spec's command and runs it, printing errors as
// "imdsd NAME: …" on stderr, and returns the exit code.
func runCommand(ctx context.Context, spec commandSpec, args []string, cio cmdIO) int {
	name := "imdsd " + spec.name
	cmd := spec.newCmd(cio)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	cmd.flags(fs)
	rest, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(cio.stdout, spec, fs)
		return exitOK
	}
	errs := flatten(err)
	if v, ok := cmd.(validator); ok {
		errs = append(errs, flatten(v.validate(rest))...)
	}
	if len(errs) > 0 {
		printError(cio.stderr, name, errors.Join(errs...))
		fmt.Fprintf(cio.stderr, "Run '%s --help' for its flags and examples.\n", name)
		return exitUsage
	}
	err = cmd.Run(ctx, rest)
	var se silentError
	if errors.As(err, &se) {
		return se.code
	}
	if err != nil {
		printError(cio.stderr, name, err)
	}
	return exitCodeOf(err)
}

// flatten lists the errors err joins (errors.Join), or err itself.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// printError writes err as "imdsd NAME: …", a multi-line error indented.
func printError(w io.Writer, name string, err error) {
	msg := err.Error()
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 1 {
		// Several errors joined: each on its own line.
		fmt.Fprintf(w, "%s:\n  %s\n", name, strings.ReplaceAll(msg, "\n", "\n  "))
		return
	}
	fmt.Fprintf(w, "%s: %s\n", name, strings.ReplaceAll(msg, "\n", "\n  "))
}

// parseArgs parses the flags in args wherever they are, and returns the
// positional arguments in order. Everything after "--" is positional.
// Every bad flag is reported, not only the first: flag.FlagSet stops at an
// error with the bad flag consumed, so parsing resumes after it.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	var errs []error
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		if err != nil {
			errs = append(errs, flagError(fs, err))
			args = fs.Args()
			continue
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		// Parse stopped at a positional argument or after "--".
		if consumed := len(args) - len(left); consumed > 0 && args[consumed-1] == "--" {
			rest = append(rest, left...)
			break
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
	return rest, errors.Join(errs...)
}

// flagError rewrites the flag package's messages into the form of every
// other error ("-x: …"), with the fix where there is one.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimLeft(name, "-")
		if hint := unknownFlagHint(fs, name); hint != "" {
			return fmt.Errorf("--%s: unknown flag; %s", name, hint)
		}
		return fmt.Errorf("--%s: unknown flag", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("--%s: needs a value", strings.TrimLeft(name, "-"))
	}
	return errors.New(strings.TrimPrefix(msg, "invalid value "))
}

// unknownFlagHint names the flag meant, or says where a run flag goes.
func unknownFlagHint(fs *flag.FlagSet, name string) string {
	best, bestD := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best != "" {
		return fmt.Sprintf("did you mean --%s?", best)
	}
	if fs.Lookup("dry-run") != nil && fs.Lookup("source") == nil && isRunFlag(name) {
		return fmt.Sprintf("imdsd run's flags go after \"--\", e.g. %s -- --%s …", fs.Name(), name)
	}
	return ""
}

func isRunFlag(name string) bool {
	if name == configFlag {
		return true
	}
	for _, s := range settings {
		if s.flag != "" && s.flag == name {
			return true
		}
	}
	return false
}

// printHelp writes the help of a command: the synopsis, what it does, its
// examples, then its flags.
func printHelp(w io.Writer, spec commandSpec, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: imdsd %s\n\n%s", spec.synopsis, spec.help)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}
