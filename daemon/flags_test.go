package daemon

import (
	"flag"
	"io"

	"github.com/imdsd/imdsd/rotator"
)

// testRunFlags parses args as imdsd run's flags.
func testRunFlags(args []string) (*runFlags, error) {
	var rf runFlags
	fs := flag.NewFlagSet("imdsd run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rf.register(fs)
	rest, err := parseArgs(fs, args)
	if err == nil {
		err = takesFlagsOnly("imdsd run", rest)
	}
	return &rf, err
}

// loadConfigArgs is loadConfig for the run flags args.
func loadConfigArgs(args []string, getenv func(string) string) (Config, string, error) {
	rf, err := testRunFlags(args)
	if err != nil {
		return Config{}, "", err
	}
	return loadConfig(rf, getenv)
}

// parseRunFlags applies the run flags args over c.
func parseRunFlags(c *Config, args []string, _ io.Writer) error {
	rf, err := testRunFlags(args)
	if err != nil {
		return err
	}
	rf.apply(c)
	return nil
}

// oneRole is what a reloadFunc returns for a configuration of one role.
func oneRole(c Config, src rotator.Fetcher, err error) (Config, map[string]rotator.Fetcher, error) {
	if err != nil {
		return Config{}, nil, err
	}
	return c, map[string]rotator.Fetcher{c.defaultRoleName(): src}, nil
}
