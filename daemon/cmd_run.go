package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/internal/gctune"
	"github.com/imdsd/imdsd/rotator"
	"github.com/rs/zerolog"
)

// The handler is fed by the rotator; daemon is the only package that knows
// both.
var _ interface{ Publish(imds.Snapshot) } = (*imds.Handler)(nil)

// drainTimeout bounds how long a shutdown waits for requests in flight.
const drainTimeout = 10 * time.Second

var runSpec = commandSpec{
	name:     "run",
	synopsis: "run [flags]",
	summary:  "serve in the foreground",
	help:     runHelp,
	newCmd:   func(cio cmdIO) command { return &runCmd{cmdIO: cio} },
}

// runCmd is imdsd run: every setting as a flag.
type runCmd struct {
	cmdIO
	rf runFlags
}

func (c *runCmd) flags(fs *flag.FlagSet) { c.rf.register(fs) }

func (c *runCmd) validate(args []string) error { return takesFlagsOnly("imdsd run", args) }

// Run serves until ctx ends: under the Windows service control manager
// through kardianos's Run (the SCM's start and stop requests), everywhere
// else directly.
func (c *runCmd) Run(ctx context.Context, _ []string) error {
	code := runService(ctx, c.serve, c.stderr)
	if code != exitOK {
		return silentError{code}
	}
	return nil
}

// serve is imdsd run in the foreground; it returns the exit code.
func (c *runCmd) serve(ctx context.Context) int {
	getenv, stdout, stderr := c.getenv, c.stdout, c.stderr
	deps := hostDeps(getenv)
	deps.mfaInbox = rotator.NewMFAInbox(nil)
	cfg, _, srcs, loadErr, invalid := loadRunRoles(ctx, &c.rf, getenv, deps)
	switch {
	case loadErr != nil:
		printError(stderr, "imdsd run", loadErr)
		return exitUsage
	case invalid != nil:
		printError(stderr, "imdsd run", fmt.Errorf("invalid configuration:\n%w", invalid))
		return exitUsage
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	logWarnings(log, srcs)
	d, err := newDaemonRoles(cfg, srcs, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return exitError
	}
	d.inbox = deps.mfaInbox
	// SIGHUP re-reads every layer (file, environment, the same flags).
	reload := func(ctx context.Context) (Config, map[string]rotator.Fetcher, error) {
		cfg, _, srcs, loadErr, invalid := loadRunRoles(ctx, &c.rf, getenv, deps)
		if err := errors.Join(loadErr, invalid); err != nil {
			return Config{}, nil, err
		}
		logWarnings(log, srcs)
		return cfg, srcs, nil
	}
	hup := make(chan os.Signal, 1)
	notifyHangup(hup)
	defer signal.Stop(hup)
	// Fewer garbage collections while busy (internal/gctune).
	defer gctune.Start().Stop()
	if err := d.serve(ctx, stdout, hup, reload); err != nil {
		log.Error().Err(err).Msg("stopped")
		return exitError
	}
	return exitOK
}

// logWarnings logs what each role's source warns of.
func logWarnings(log zerolog.Logger, srcs map[string]rotator.Fetcher) {
	for role, src := range srcs {
		for _, w := range sourceWarnings(src) {
			log.Warn().Str("role", role).Msg(w)
		}
	}
}

// snapshotOf translates the rotator's state into what the handler serves.
// Failure messages reach clients, so only upstream messages (which carry no
// secrets) are passed through.
func snapshotOf(s rotator.State) imds.Snapshot {
	snap := imds.Snapshot{
		Credentials: s.Credentials.Credentials,
		Obtained:    s.Obtained,
		RoleARN:     s.Credentials.RoleARN,
		AccountID:   s.Credentials.AccountID,
	}
	if s.Credentials.CanExpire {
		// No client is handed a set that dies in its hands.
		snap.ServeUntil = s.Credentials.Expires.Add(-rotator.ExpiryMargin)
	}
	if s.Err != nil {
		snap.ErrCode, snap.ErrAt = rotator.ErrorCode(s.Err), s.ErrAt
		snap.ErrMessage = "imdsd could not obtain credentials; run 'imdsd status' or read its log for details"
		var api smithy.APIError
		if errors.As(s.Err, &api) && api.ErrorMessage() != "" {
			snap.ErrMessage = api.ErrorMessage()
		}
	}
	return snap
}

// endpointURL is the value for AWS_EC2_METADATA_SERVICE_ENDPOINT. It ends in
// a slash: botocore (AWS CLI v2, boto3) appends "latest/api/token" to the
// endpoint without adding one.
func endpointURL(a net.Addr) string {
	return endpointBase(a) + "/"
}

func endpointBase(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		if ap.Port() == 80 {
			if ap.Addr().Is6() && !ap.Addr().Is4In6() {
				return "http://[" + ap.Addr().String() + "]"
			}
			return "http://" + ap.Addr().Unmap().String()
		}
		return "http://" + net.JoinHostPort(ap.Addr().Unmap().String(), fmt.Sprint(ap.Port()))
	}
	return "http://" + a.String()
}

// hostSeed makes derived metadata (instance ID, MAC) stable per host.
func hostSeed() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b))
		}
	}
	h, _ := os.Hostname()
	return h
}
