package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The idle-connection run (`go run ./e2e/load idle`, or `e2e/load/run.sh
// idle`): a local user opens LOAD_IDLE_CONNS connections to imdsd, each
// making one request and then staying open (keep-alive, idle), while an
// SDK-like client keeps fetching credentials on a new connection per fetch.
// It reports imdsd's resident memory before, at the peak, with the
// connections held and after they are released, how many of them imdsd
// closed, and whether and how fast the client was served.
//
// Bounded: exactly LOAD_IDLE_CONNS connections and LOAD_IDLE_PROBES
// fetches, the whole run stops at LOAD_IDLE_TIMEOUT, traffic goes to
// 127.0.0.1 only. The connections are held by a child process (this binary
// in "hold" mode, on the client CPU when pinning) whose open-file limit is
// raised to fit them.
//
// Settings (environment): LOAD_IDLE_CONNS (10000), LOAD_IDLE_PROBES (200),
// LOAD_IDLE_TIMEOUT (60s), LOAD_IMDSD_ARGS (extra flags for imdsd run,
// space-separated, e.g. "--max-connections 4096"), LOAD_OUT (default
// e2e/load/last-idle.md), IMDSD_BIN (default bin/imdsd).

type idleSettings struct {
	Conns, Probes int
	Timeout       time.Duration
	ExtraArgs     []string
	Out           string
}

func loadIdleSettings(root string) (idleSettings, error) {
	s := idleSettings{Conns: 10_000, Probes: 200, Timeout: 60 * time.Second,
		Out: filepath.Join(root, "e2e", "load", "last-idle.md")}
	var errs []error
	envInt(&errs, "LOAD_IDLE_CONNS", &s.Conns, 1, 60_000)
	envInt(&errs, "LOAD_IDLE_PROBES", &s.Probes, 1, 10_000)
	envDuration(&errs, "LOAD_IDLE_TIMEOUT", &s.Timeout, 10*time.Second, 10*time.Minute)
	s.ExtraArgs = strings.Fields(os.Getenv("LOAD_IMDSD_ARGS"))
	if v := os.Getenv("LOAD_OUT"); v != "" {
		s.Out = v
	}
	return s, errors.Join(errs...)
}

// holdResult is the hold child's first JSON line (connections opened) and
// second (after the release).
type holdResult struct {
	Opened, Failed int
	Seconds        float64
	FirstError     string `json:",omitempty"`
	ClosedByServer int    // while held, before the release
}

// idleResult is what the idle run measured.
type idleResult struct {
	set                                      idleSettings
	version                                  string
	rssIdle, rssPeak, rssHeld, rssAfter      int
	fdsHeld                                  int // -1: not readable
	hold                                     holdResult
	probeOK, probeFailed, probeSkipped       int
	probeFirstErr                            string
	probeP50, probeP99, probeMax, probeTotal time.Duration
}

func idleMain() int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "load idle: "+format+"\n", a...)
		return 1
	}
	root, err := repoRoot()
	if err != nil {
		return fail("%v", err)
	}
	set, err := loadIdleSettings(root)
	if err != nil {
		return fail("%v", err)
	}
	bin := os.Getenv("IMDSD_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "imdsd")
	}
	if _, err := os.Stat(bin); err != nil {
		return fail("imdsd binary not found at %s: run `make build` first (or set IMDSD_BIN)", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), set.Timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "imdsd-load-idle-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp)

	r := &runner{tmp: tmp, started: time.Now()}
	if cpus := allowedCPUs(); len(cpus) >= 2 {
		if _, err := exec.LookPath("taskset"); err == nil {
			r.pin, r.serverCPU, r.clientCPU = true, cpus[0], cpus[1]
		}
	}
	res := idleResult{set: set, version: firstLine(output(ctx, bin, "version"))}
	err = r.idle(ctx, bin, &res)
	if !r.stopAll() && err == nil {
		err = errors.New("imdsd did not exit cleanly on SIGTERM")
	}
	if err != nil {
		return fail("%v", err)
	}
	text, md := res.report(r)
	if err := os.WriteFile(set.Out, []byte(md), 0o644); err != nil {
		return fail("write report: %v", err)
	}
	fmt.Print(text)
	fmt.Printf("\nmarkdown report written to %s (%s total)\n", set.Out, time.Since(r.started).Round(100*time.Millisecond))
	return 0
}

func (r *runner) idle(ctx context.Context, bin string, res *idleResult) error {
	args := append([]string{"run", "--source", "dev", "--listen", "127.0.0.1:0", "--token-mode", "required"}, res.set.ExtraArgs...)
	srv, err := r.start(ctx, "imdsd", bin, args...)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // settle after start-up
	pid := srv.pid()
	if res.rssIdle, err = rssKB(pid); err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := []string{self, "hold", "-addr", srv.Addr, "-n", strconv.Itoa(res.set.Conns), "-timeout", res.set.Timeout.String()}
	if r.pin {
		argv = append([]string{"taskset", "-c", r.clientCPU}, argv...)
	}
	child := exec.CommandContext(ctx, argv[0], argv[1:]...)
	child.Env = []string{"PATH=" + os.Getenv("PATH")}
	child.Stderr = os.Stderr
	dieWithParent(child)
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	sample := startRSSSampler(pid)
	if err := child.Start(); err != nil {
		sample.stop()
		return err
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	dec := json.NewDecoder(stdout)
	if err := dec.Decode(&res.hold); err != nil {
		sample.stop()
		return fmt.Errorf("hold: %w", err)
	}
	res.rssHeld, _ = rssKB(pid)
	res.fdsHeld = countFDs(pid)
	fmt.Fprintf(os.Stderr, "idle: %d connections opened (%d failed) in %.1fs; imdsd RSS %s\n",
		res.hold.Opened, res.hold.Failed, res.hold.Seconds, fmtMiB(res.rssHeld))

	res.probe(ctx, srv.Base)
	res.rssPeak = sample.stop()

	var after holdResult
	if _, err := io.WriteString(stdin, "release\n"); err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	if err := dec.Decode(&after); err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	res.hold.ClosedByServer = after.ClosedByServer
	time.Sleep(2 * time.Second) // let imdsd's connection goroutines end
	res.rssAfter, err = rssKB(pid)
	return err
}

// probe fetches credentials the way botocore does (a token PUT and a
// credentials GET, a new connection for each request), res.set.Probes
// times in a row, timing each fetch.
func (res *idleResult) probe(ctx context.Context, base string) {
	client := &http.Client{Timeout: 2 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	do := func(req *http.Request) (string, error) {
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, resp.StatusCode)
		}
		return string(b), err
	}
	// Leave time to release the connections and report, whatever happens.
	stop := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Add(-10*time.Second).Before(stop) {
		stop = d.Add(-10 * time.Second)
	}
	var took []time.Duration
	start := time.Now()
	for range res.set.Probes {
		if time.Now().After(stop) {
			res.probeSkipped++
			continue
		}
		t0 := time.Now()
		put, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/latest/api/token", nil)
		put.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
		token, err := do(put)
		if err == nil {
			get, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/latest/meta-data/iam/security-credentials/"+roleName, nil)
			get.Header.Set("X-aws-ec2-metadata-token", token)
			_, err = do(get)
		}
		if err != nil {
			res.probeFailed++
			if res.probeFirstErr == "" {
				res.probeFirstErr = err.Error()
			}
			continue
		}
		res.probeOK++
		took = append(took, time.Since(t0))
	}
	res.probeTotal = time.Since(start)
	if len(took) > 0 {
		slices.Sort(took)
		res.probeP50 = took[len(took)/2]
		res.probeP99 = took[min(len(took)-1, len(took)*99/100)]
		res.probeMax = took[len(took)-1]
	}
}

// countFDs counts pid's open files, or -1 when /proc/PID/fd is not
// readable (imdsd is not dumpable: only root reads it then).
func countFDs(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

func (res *idleResult) report(r *runner) (text, md string) {
	var t, m strings.Builder
	pinning := "none (taskset missing or fewer than 2 CPUs)"
	if r.pin {
		pinning = fmt.Sprintf("imdsd on CPU %s, the connections and the client on CPU %s (taskset)", r.serverCPU, r.clientCPU)
	}
	fds := "n/a (not readable)"
	if res.fdsHeld >= 0 {
		fds = strconv.Itoa(res.fdsHeld)
	}
	args := strings.Join(append([]string{"--source dev --listen 127.0.0.1:0 --token-mode required"}, res.set.ExtraArgs...), " ")
	fmt.Fprintf(&m, "### Idle connections %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&m, "- command: `%s`\n", r.command())
	fmt.Fprintf(&m, "- machine: nproc %d, %s, %s %s; %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS,
		strings.TrimSpace(output(context.Background(), "uname", "-r")), runtime.Version())
	fmt.Fprintf(&m, "- imdsd: %s, `imdsd run %s`; pinning: %s\n\n", res.version, args, pinning)
	failed := ""
	if res.hold.FirstError != "" {
		failed = " (first failure: " + res.hold.FirstError + ")"
	}
	fmt.Fprintf(&m, "%d of %d connections opened%s in %.1f s, each after one request (keep-alive, then idle); imdsd closed %d of them while they were held; open files in imdsd then: %s.\n\n",
		res.hold.Opened, res.set.Conns, failed, res.hold.Seconds, res.hold.ClosedByServer, fds)
	fmt.Fprintln(&m, "| imdsd VmRSS | |")
	fmt.Fprintln(&m, "|---|---:|")
	rows := [][2]string{
		{"idle, after start", fmtMiB(res.rssIdle)},
		{fmt.Sprintf("%d connections opened, left idle", res.hold.Opened), fmtMiB(res.rssHeld)},
		{"peak, while opening and during the fetches", fmtMiB(res.rssPeak)},
		{"2 s after they were closed", fmtMiB(res.rssAfter)},
	}
	for _, row := range rows {
		fmt.Fprintf(&m, "| %s | %s |\n", row[0], row[1])
		fmt.Fprintf(&t, "%-44s  %s\n", row[0], row[1])
	}
	probes := fmt.Sprintf("SDK-like fetches (token PUT + credentials GET, a new connection each, 2 s timeout) meanwhile: %d ok, %d failed, %d not tried (out of time); p50 %s, p99 %s, max %s of those served (%.1f s in all)",
		res.probeOK, res.probeFailed, res.probeSkipped, res.probeP50.Round(10*time.Microsecond), res.probeP99.Round(10*time.Microsecond),
		res.probeMax.Round(10*time.Microsecond), res.probeTotal.Seconds())
	if res.probeFirstErr != "" {
		probes += "; first error: " + res.probeFirstErr
	}
	fmt.Fprintf(&m, "\n%s.\n", probes)
	fmt.Fprintf(&t, "connections: %d opened (%d failed) in %.1fs, %d closed by imdsd while held, imdsd open files %s\n%s\n",
		res.hold.Opened, res.hold.Failed, res.hold.Seconds, res.hold.ClosedByServer, fds, probes)
	return t.String(), m.String()
}

// holdMain is the hold child: it opens exactly n connections to addr, each
// making one request, prints a holdResult, keeps them open until a line
// arrives on stdin (or -timeout), then prints how many imdsd closed in
// the meantime and exits.
func holdMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	addr := fs.String("addr", "", "imdsd host:port (loopback)")
	n := fs.Int("n", 10_000, "connections")
	workers := fs.Int("workers", 32, "connections opened at once")
	timeout := fs.Duration("timeout", time.Minute, "give up after")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(stderr, "hold: -addr must be a loopback host:port (got %q)\n", *addr)
		return 2
	}
	if err := raiseNoFile(uint64(*n) + 64); err != nil {
		fmt.Fprintf(stderr, "hold: %v\n", err) // a warning: go on
	}
	deadline := time.Now().Add(*timeout)
	req := []byte("GET /latest/meta-data/ HTTP/1.1\r\nHost: " + *addr + "\r\n\r\n")
	var (
		next, failed, closed atomic.Int64
		released             atomic.Bool
		mu                   sync.Mutex
		conns                []net.Conn
		firstErr             atomic.Value
		wg, watchers         sync.WaitGroup
	)
	start := time.Now()
	for range *workers {
		wg.Go(func() {
			for next.Add(1) <= int64(*n) {
				c, err := openOne(*addr, req, deadline)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mu.Lock()
				conns = append(conns, c.Conn)
				mu.Unlock()
				// Idle from now on: a read ends only when imdsd closes
				// the connection, or when it is released.
				watchers.Go(func() {
					if _, err := c.br.ReadByte(); err != nil && !released.Load() {
						closed.Add(1)
						c.Close() // frees the port for the next ones
					}
				})
			}
		})
	}
	wg.Wait()
	res := holdResult{Opened: len(conns), Failed: int(failed.Load()), Seconds: time.Since(start).Seconds()}
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	enc := json.NewEncoder(stdout)
	_ = enc.Encode(res)

	lines := make(chan struct{})
	go func() { _, _ = bufio.NewReader(stdin).ReadString('\n'); close(lines) }()
	select {
	case <-lines:
	case <-time.After(time.Until(deadline)):
	}
	held := closed.Load()
	released.Store(true)
	for _, c := range conns {
		c.Close()
	}
	watchers.Wait()
	_ = enc.Encode(holdResult{ClosedByServer: int(held)})
	return 0
}

type openConn struct {
	net.Conn
	br *bufio.Reader
}

// openOne connects, makes one request and reads its answer, leaving the
// connection idle.
func openOne(addr string, req []byte, deadline time.Time) (openConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return openConn{}, err
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReaderSize(c, 512)
	if _, err := c.Write(req); err != nil {
		c.Close()
		return openConn{}, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return openConn{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		c.Close()
		return openConn{}, errors.New("imdsd closed the connection after the request")
	}
	_ = c.SetDeadline(deadline)
	return openConn{c, br}, nil
}
