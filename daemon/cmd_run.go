package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"github.com/imdsd/imdsd/imds"
	"github.com/imdsd/imdsd/rotator"
	"github.com/rs/zerolog"
)

// The handler is fed by the rotator; daemon is the only package that knows
// both.
var _ interface{ Publish(imds.Snapshot) } = (*imds.Handler)(nil)

// drainTimeout bounds how long a shutdown waits for requests in flight.
const drainTimeout = 10 * time.Second

func cmdRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, _, err := loadConfig("imdsd run", runHelp, args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "imdsd run: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return exitUsage
	}
	deps := stsDeps{loadConfig: loadAWSConfig, getenv: getenv, now: time.Now}
	fetcher, err := buildSource(ctx, c, deps)
	if err = errors.Join(c.Validate(), err); err != nil {
		fmt.Fprintf(stderr, "imdsd run: invalid configuration:\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return exitUsage
	}
	log := newLogger(stderr, c.LogFormat, c.LogLevel)
	d, err := newDaemon(c, fetcher, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return exitError
	}
	if err := d.serve(ctx, stdout); err != nil {
		log.Error().Err(err).Msg("stopped")
		return exitError
	}
	return exitOK
}

// daemon is one running configuration: the rotator, the handler it feeds,
// and the listeners serving it.
type daemon struct {
	cfg     Config
	log     zerolog.Logger
	handler *imds.Handler
	rot     *rotator.Rotator
	ready   chan struct{}
	once    sync.Once
}

func newDaemon(c Config, src rotator.Fetcher, log zerolog.Logger) (*daemon, error) {
	h, err := imds.NewHandler(c.imdsConfig(), log.With().Str("component", "imds").Logger())
	if err != nil {
		return nil, err
	}
	d := &daemon{cfg: c, log: log, handler: h, ready: make(chan struct{})}
	d.rot = rotator.New(src, rotator.Options{
		Source:  c.Source,
		Publish: d.publish,
		Log:     log.With().Str("component", "rotator").Logger(),
	})
	return d, nil
}

// publish hands a rotator state to the handler and marks the daemon ready
// after the first attempt.
func (d *daemon) publish(s rotator.State) {
	d.handler.Publish(snapshotOf(s))
	d.once.Do(func() { close(d.ready) })
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

// serve binds every listener, runs the rotator, prints the export line once
// the first credentials are held, and blocks until ctx ends; then it drains
// requests in flight and returns nil.
func (d *daemon) serve(ctx context.Context, stdout io.Writer) error {
	var lns []net.Listener
	for _, addr := range d.cfg.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}

	rctx, stopRotator := context.WithCancel(ctx)
	defer stopRotator()
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.rot.Run(rctx) })

	errc := make(chan error, len(lns))
	var servers []*http.Server
	for _, ln := range lns {
		srv := imds.NewServer(d.handler, d.log.With().Str("component", "http").Logger())
		servers = append(servers, srv)
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
			}
		})
		d.log.Info().Str("addr", ln.Addr().String()).Str("token_mode", d.cfg.TokenMode).Msg("listening")
	}

	var err error
	select {
	case <-d.ready:
		fmt.Fprintf(stdout, "export AWS_EC2_METADATA_SERVICE_ENDPOINT=%s\n", endpointURL(lns[0].Addr()))
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	case <-ctx.Done():
	case err = <-errc:
	}

	d.log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	for _, srv := range servers {
		if e := srv.Shutdown(sctx); e != nil {
			err = errors.Join(err, fmt.Errorf("drain: %w", e))
		}
	}
	stopRotator()
	wg.Wait()
	return err
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
