package daemon

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/kardianos/service"

	"github.com/imdsd/imdsd/install"
)

// programStopWait bounds Stop: the service control manager expects a stop
// within a few seconds. Requests still in flight after it are cut off when
// the process exits.
const programStopWait = 5 * time.Second

// program is `imdsd run` as a kardianos/service Interface, for a service
// manager that calls Start and Stop instead of signalling the process: the
// Windows service control manager. Start launches run and returns at once;
// Stop cancels it and waits at most stopWait; neither calls os.Exit.
// systemd and launchd exec imdsd run and stop it with SIGTERM, which the
// context of main already handles, so there imdsd run does not go through
// program (kardianos's Run would only wait for the same signal).
type program struct {
	run      func(ctx context.Context) int
	stopWait time.Duration
	done     chan struct{} // closed when run has returned
	code     int           // run's exit code, once done is closed

	mu     sync.Mutex
	cancel context.CancelFunc // program owns the root cancel: kardianos gives no ctx
}

func newProgram(run func(ctx context.Context) int, stopWait time.Duration) *program {
	return &program{run: run, stopWait: stopWait, done: make(chan struct{})}
}

// Start implements service.Interface: it starts run in a goroutine and
// returns at once. It must be called once.
func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	go func() {
		defer close(p.done)
		p.code = p.run(ctx)
	}()
	return nil
}

// Stop implements service.Interface: it cancels run and waits for it to
// drain, at most stopWait.
func (p *program) Stop(service.Service) error {
	p.mu.Lock()
	cancel := p.cancel
	p.mu.Unlock()
	if cancel == nil {
		return nil // never started
	}
	cancel()
	t := time.NewTimer(p.stopWait)
	defer t.Stop()
	select {
	case <-p.done:
		if p.code != exitOK {
			return fmt.Errorf("imdsd run ended with exit status %d", p.code)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("stop: imdsd run still draining after %s", p.stopWait)
	}
}

// exitCode is run's exit code, or exitError while it still runs.
func (p *program) exitCode() int {
	select {
	case <-p.done:
		return p.code
	default:
		return exitError
	}
}

// runService runs serve (imdsd run): under the Windows service control
// manager through kardianos's Run (the SCM's start and stop requests),
// everywhere else directly. It returns serve's exit code.
func runService(ctx context.Context, serve func(ctx context.Context) int, stderr io.Writer) int {
	if runtime.GOOS != "windows" || service.Interactive() {
		return serve(ctx)
	}
	p := newProgram(serve, programStopWait)
	return runProgram(p, func(p *program) (service.Service, error) {
		exe, err := executablePath()
		if err != nil {
			return nil, err
		}
		// The SCM knows the arguments; Run needs only the name.
		return service.New(p, install.ServiceConfig(exe, nil, install.ServiceOptions{}))
	}, stderr)
}

// runProgram runs p under the service manager until the manager stops it
// or run ends by itself (an invalid configuration, a port taken): then the
// process exits with run's code and the manager's recovery actions apply.
func runProgram(p *program, newService func(*program) (service.Service, error), stderr io.Writer) int {
	s, err := newService(p)
	if err != nil {
		fmt.Fprintf(stderr, "imdsd run: service manager: %v\n", err)
		return exitError
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run() }()
	select {
	case err := <-errc:
		if err != nil {
			fmt.Fprintf(stderr, "imdsd run: %v\n", err)
			if code := p.exitCode(); code != exitOK {
				return code
			}
			return exitError
		}
		return p.exitCode()
	case <-p.done:
		return p.code
	}
}
