package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

var profileSpec = commandSpec{
	name:     "profile",
	synopsis: "profile cpu|heap|allocs|goroutine|mutex|block|trace [--seconds N] [-o FILE] [--admin-socket PATH] [--config FILE]",
	summary:  "save a Go profile of the running imdsd (needs debug_pprof: true)",
	help: `Save a profile of the running imdsd, taken through its admin API, to a
file for go tool pprof (go tool trace for trace). The running imdsd must
have profiling on: debug_pprof: true in its config file (then imdsd
reload), or imdsd run --debug-pprof. It is off by default; the admin
socket is the service user's or root's only, like the credentials.

cpu and trace record for --seconds; the others are a snapshot (heap: live
memory; allocs: every allocation since start).

Examples:
  sudo imdsd profile cpu --seconds 30 -o cpu.pprof && go tool pprof -top cpu.pprof
  sudo imdsd profile heap -o heap.pprof
`,
	newCmd: func(cio cmdIO) command { return &profileCmd{cmdIO: cio} },
}

// profileKinds maps each kind to its path under /debug/pprof/.
var profileKinds = map[string]string{
	"cpu": "profile", "heap": "heap", "allocs": "allocs", "goroutine": "goroutine",
	"mutex": "mutex", "block": "block", "trace": "trace",
}

type profileCmd struct {
	cmdIO
	target  adminTarget
	seconds int
	out     string
}

func (c *profileCmd) flags(fs *flag.FlagSet) {
	c.target.register(fs)
	fs.IntVar(&c.seconds, "seconds", 30, "how long cpu and trace record, 1..600")
	fs.StringVar(&c.out, "o", "", "file to write (default imdsd-KIND.pprof, or imdsd.trace)")
}

func (c *profileCmd) validate(args []string) error {
	var errs []error
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range profileKinds {
			if !yield(k) {
				return
			}
		}
	})
	if len(args) != 1 || profileKinds[args[0]] == "" {
		errs = append(errs, fmt.Errorf("want one of %s, e.g. imdsd profile cpu --seconds 30", strings.Join(kinds, ", ")))
	}
	if c.seconds < 1 || c.seconds > 600 {
		errs = append(errs, fmt.Errorf("--seconds: must be 1..600 (got %d)", c.seconds))
	}
	return errors.Join(errs...)
}

func (c *profileCmd) Run(ctx context.Context, args []string) error {
	kind := args[0]
	out := c.out
	if out == "" {
		out = "imdsd-" + kind + ".pprof"
		if kind == "trace" {
			out = "imdsd.trace"
		}
	}
	path, err := c.target.path(c.getenv)
	if err != nil {
		return err
	}
	route := "/debug/pprof/" + profileKinds[kind]
	timeout := adminTimeout
	switch kind {
	case "cpu", "trace":
		route += fmt.Sprintf("?seconds=%d", c.seconds)
		timeout += time.Duration(c.seconds) * time.Second
	case "heap":
		route += "?gc=1" // live memory: collect first
	}
	if kind == "cpu" || kind == "trace" {
		fmt.Fprintf(c.stderr, "recording %s for %ds…\n", kind, c.seconds)
	}
	resp, err := adminDo(ctx, path, http.MethodGet, route, nil, timeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("imdsd at %s: %s profile: HTTP %d: %s", path, kind, resp.StatusCode, e.Error)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write the profile: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the profile to %s: %w", out, err)
	}
	tool := "go tool pprof -top " + out
	if kind == "trace" {
		tool = "go tool trace " + out
	}
	fmt.Fprintf(c.stdout, "wrote %s (%d bytes); view it with: %s\n", out, n, tool)
	return nil
}
