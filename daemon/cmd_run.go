package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/rotator"
)

// The handler is fed by the rotator; daemon is the only package that knows
// both.
var _ interface{ Publish(imds.Snapshot) } = (*imds.Handler)(nil)

// drainTimeout bounds how long a shutdown waits for requests in flight.
const drainTimeout = 10 * time.Second

func cmdRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	deps := hostDeps(getenv)
	deps.mfaInbox = rotator.NewMFAInbox(nil)
	c, _, fetcher, loadErr, invalid := loadRunConfig(ctx, "imdsd run", runHelp, args, getenv, stderr, deps)
	switch {
	case errors.Is(loadErr, flag.ErrHelp):
		return exitOK
	case loadErr != nil:
		fmt.Fprintf(stderr, "imdsd run: %s\n", strings.ReplaceAll(loadErr.Error(), "\n", "\n  "))
		return exitUsage
	case invalid != nil:
		fmt.Fprintf(stderr, "imdsd run: invalid configuration:\n  %s\n", strings.ReplaceAll(invalid.Error(), "\n", "\n  "))
		return exitUsage
	}
	log := newLogger(stderr, c.LogFormat, c.LogLevel)
	d, err := newDaemon(c, fetcher, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return exitError
	}
	d.inbox = deps.mfaInbox
	// SIGHUP re-reads every layer (file, environment, the same flags).
	reload := func(ctx context.Context) (Config, rotator.Fetcher, error) {
		c, _, f, loadErr, invalid := loadRunConfig(ctx, "imdsd run", runHelp, args, getenv, io.Discard, deps)
		if err := errors.Join(loadErr, invalid); err != nil {
			return Config{}, nil, err
		}
		return c, f, nil
	}
	hup := make(chan os.Signal, 1)
	notifyHangup(hup)
	defer signal.Stop(hup)
	if err := d.serve(ctx, stdout, hup, reload); err != nil {
		log.Error().Err(err).Msg("stopped")
		return exitError
	}
	return exitOK
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
