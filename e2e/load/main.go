// Command load is imdsd's bounded load run (`make load`, which runs
// e2e/load/run.sh, or `go run ./e2e/load` from the repository root). It measures bin/imdsd against a bare net/http
// baseline (e2e/load/baseline) on loopback with wrk:
//
//   - credentials GET (with a token) and token PUT, each with keep-alive and
//     with a new connection per request: requests/s, p50, p99, and the
//     server's own CPU time per request answered (cpuTime: its threads'
//     run time over the requests wrk completed);
//   - imdsd's resident memory: idle (VmRSS, and RssAnon: private anonymous
//     memory, what a process costs beyond the pages of its binary that the
//     kernel may share and drop), under the GET load, and before/after
//     exactly LOAD_FLOOD (default 1,000,000) token PUTs.
//
// Every measurement is repeated LOAD_RUNS times, alternating imdsd and the
// baseline: medians are reported, and each ratio imdsd/baseline is the
// median of the runs' pair ratios (each imdsd run against the baseline run
// next to it), so a run slowed by other load on the machine weighs once. When
// taskset is available the servers run on one CPU and the load generators on
// another. Targets are printed as PASS/FAIL; the exit status is 0 unless
// LOAD_STRICT=1 and a target is missed, or the run itself fails.
//
// Everything is bounded: wrk runs for LOAD_DURATION each, the flood stops at
// its count or LOAD_FLOOD_TIMEOUT, and the whole run at LOAD_TIMEOUT. Traffic
// goes to 127.0.0.1 only. A markdown report is written to LOAD_OUT (default
// e2e/load/last-run.md).
//
// `go run ./e2e/load idle` (or `e2e/load/run.sh idle`) is another run: imdsd
// with LOAD_IDLE_CONNS idle connections held open against it, its memory,
// and an SDK-like client served meanwhile (idle.go).
//
// `go run ./e2e/load access` measures what a role's allow list (and the
// audit trail) cost in credentials GET throughput, and `go run ./e2e/load
// roles` the idle memory of 10 roles against 1 (access.go).
//
// Settings (environment): LOAD_THREADS (1), LOAD_CONNECTIONS (32),
// LOAD_DURATION (1s, whole seconds), LOAD_RUNS (3), LOAD_FLOOD (1000000),
// LOAD_FLOOD_TIMEOUT (30s), LOAD_TIMEOUT (150s), LOAD_STRICT, LOAD_OUT,
// IMDSD_BIN (default bin/imdsd).
package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
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
	"text/tabwriter"
	"time"
)

//go:embed wrk.lua
var wrkLua []byte

const (
	roleName = "imdsd-dev" // imdsd's default --role-name
	mib      = 1024        // kB per MiB (VmRSS is in kB)

	targetRPSRatio   = 0.9 // imdsd req/s ≥ 0.9 × baseline
	targetP99Ratio   = 1.2 // imdsd p99 ≤ 1.2 × baseline
	targetIdleRSSKB  = 10 * mib
	targetIdleAnonKB = 2 * mib // private anonymous memory (RssAnon), idle
	targetCPURatio   = 1.10    // imdsd server CPU per keep-alive request ≤ 1.1 × baseline's
	// idleSettle is how long a server runs before its idle memory is read.
	idleSettle       = time.Second
	targetFloodRSSKB = 2 * mib

	// The token flood: pipelined keep-alive connections, so the generator
	// costs little and imdsd (on one CPU) is the bottleneck: about 15 s for
	// 1,000,000 PUTs on the 2-CPU development machine.
	floodConns = 32
	floodDepth = 64
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "flood":
			os.Exit(floodMain(os.Args[2:], os.Stdout, os.Stderr))
		case "idle":
			os.Exit(idleMain())
		case "hold":
			os.Exit(holdMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "access":
			os.Exit(accessMain())
		case "roles":
			os.Exit(rolesMain())
		}
	}
	os.Exit(run())
}

// settings are the knobs of one run.
type settings struct {
	Threads, Conns, Runs, Flood int
	Duration, FloodTimeout      time.Duration
	Timeout                     time.Duration
	Strict                      bool
	Out                         string
}

func loadSettings(root string) (settings, error) {
	s := settings{Threads: 1, Conns: 32, Runs: 3, Flood: 1_000_000,
		Duration: time.Second, FloodTimeout: 30 * time.Second, Timeout: 150 * time.Second,
		Strict: os.Getenv("LOAD_STRICT") == "1",
		Out:    filepath.Join(root, "e2e", "load", "last-run.md")}
	var errs []error
	intVar := func(name string, p *int, lo, hi int) { envInt(&errs, name, p, lo, hi) }
	durVar := func(name string, p *time.Duration, lo, hi time.Duration) { envDuration(&errs, name, p, lo, hi) }
	intVar("LOAD_THREADS", &s.Threads, 1, 16)
	intVar("LOAD_CONNECTIONS", &s.Conns, 1, 1024)
	intVar("LOAD_RUNS", &s.Runs, 1, 31)
	intVar("LOAD_FLOOD", &s.Flood, 0, 10_000_000)
	durVar("LOAD_DURATION", &s.Duration, time.Second, time.Minute)
	durVar("LOAD_FLOOD_TIMEOUT", &s.FloodTimeout, time.Second, 5*time.Minute)
	durVar("LOAD_TIMEOUT", &s.Timeout, 10*time.Second, 30*time.Minute)
	if s.Duration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("LOAD_DURATION: wrk takes whole seconds (got %v)", s.Duration))
	}
	if s.Conns < s.Threads {
		errs = append(errs, fmt.Errorf("LOAD_CONNECTIONS: must be ≥ LOAD_THREADS (got %d < %d)", s.Conns, s.Threads))
	}
	if v := os.Getenv("LOAD_OUT"); v != "" {
		s.Out = v
	}
	return s, errors.Join(errs...)
}

// envInt sets *p from the variable name, an integer lo..hi, or appends
// why not to errs.
func envInt(errs *[]error, name string, p *int, lo, hi int) {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			*errs = append(*errs, fmt.Errorf("%s: must be an integer %d..%d (got %q)", name, lo, hi, v))
			return
		}
		*p = n
	}
}

// envDuration sets *p from the variable name, a duration lo..hi, or
// appends why not to errs.
func envDuration(errs *[]error, name string, p *time.Duration, lo, hi time.Duration) {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			*errs = append(*errs, fmt.Errorf("%s: must be a duration %v..%v (got %q)", name, lo, hi, v))
			return
		}
		*p = d
	}
}

func run() int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "load: "+format+"\n", a...)
		return 1
	}
	root, err := repoRoot()
	if err != nil {
		return fail("%v", err)
	}
	set, err := loadSettings(root)
	if err != nil {
		return fail("%v", err)
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return fail("wrk not found: install it with `apt-get install -y wrk`")
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

	tmp, err := os.MkdirTemp("", "imdsd-load-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp)

	r := &runner{set: set, wrk: wrk, tmp: tmp, started: time.Now()}
	if err := r.main(ctx, root, bin); err != nil {
		r.stopAll()
		return fail("%v", err)
	}
	if !r.stopAll() {
		r.fails = append(r.fails, "a server did not exit cleanly on SIGTERM")
	}
	report := r.report()
	// The file first: stdout may be a pipe that closes early.
	if err := os.WriteFile(set.Out, []byte(report.markdown), 0o644); err != nil {
		return fail("write report: %v", err)
	}
	fmt.Print(report.text)
	fmt.Printf("\nmarkdown report written to %s (%s total)\n", set.Out, time.Since(r.started).Round(100*time.Millisecond))
	if len(r.fails) > 0 && set.Strict {
		return fail("LOAD_STRICT=1 and %d target(s) missed", len(r.fails))
	}
	return 0
}

// repoRoot finds the module root (the directory holding imdsd's go.mod)
// from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/imdsd/imdsd\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the imdsd repository (no go.mod of github.com/imdsd/imdsd above the working directory)")
		}
		dir = parent
	}
}

// scenario is one request shape.
type scenario struct {
	Name   string
	Method string
	Close  bool
}

var scenarios = []scenario{
	{"GET credentials, keep-alive", http.MethodGet, false},
	{"GET credentials, new connection", http.MethodGet, true},
	{"PUT token, keep-alive", http.MethodPut, false},
	{"PUT token, new connection", http.MethodPut, true},
}

// wrkResult is what wrk.lua's done() prints.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Bytes      int64   `json:"bytes"`
	ErrConnect int64   `json:"err_connect"`
	ErrRead    int64   `json:"err_read"`
	ErrWrite   int64   `json:"err_write"`
	ErrStatus  int64   `json:"err_status"`
	ErrTimeout int64   `json:"err_timeout"`
	P50US      int64   `json:"p50_us"`
	P90US      int64   `json:"p90_us"`
	P99US      int64   `json:"p99_us"`
	MaxUS      int64   `json:"max_us"`
	MeanUS     float64 `json:"mean_us"`
}

func (w wrkResult) RPS() float64 {
	if w.DurationUS == 0 {
		return 0
	}
	return float64(w.Requests) / (float64(w.DurationUS) / 1e6)
}

func (w wrkResult) Errors() int64 {
	return w.ErrConnect + w.ErrRead + w.ErrWrite + w.ErrStatus + w.ErrTimeout
}

// server is one running server under test.
type server struct {
	Name string
	Base string // http://127.0.0.1:PORT (no trailing slash)
	Addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
	err  error // from Wait, valid after done
	log  string
}

func (s *server) pid() int { return s.cmd.Process.Pid }

type runner struct {
	set     settings
	wrk     string
	tmp     string
	started time.Time

	pin           bool
	serverCPU     string
	clientCPU     string
	goVersion     string
	wrkVersion    string
	cpuModel      string
	imdsd, base   *server
	credsSize     int
	tokenSize     int
	results       map[string]map[string][]wrkResult // scenario → server → runs
	cpuPerReq     map[string]map[string][]float64   // scenario → server → runs: server CPU µs per request answered
	anonIdle      map[string]int                    // server → kB of private anonymous memory (RssAnon), idle
	rssIdle       map[string]int                    // server → kB
	rssLoadMax    map[string]int                    // server → kB, max during GET keep-alive
	rssFloodPre   int
	rssFloodPeak  int
	rssFloodPost  int
	flood         floodResult
	fails, passes []string
}

func (r *runner) main(ctx context.Context, root, bin string) error {
	r.results = map[string]map[string][]wrkResult{}
	r.cpuPerReq = map[string]map[string][]float64{}
	r.rssIdle = map[string]int{}
	r.anonIdle = map[string]int{}
	r.rssLoadMax = map[string]int{}
	r.cpuModel = cpuModel()
	r.goVersion = strings.TrimSpace(output(ctx, "go", "version"))
	r.wrkVersion = strings.TrimSpace(strings.SplitN(output(ctx, r.wrk, "-v"), "\n", 2)[0])
	if cpus := allowedCPUs(); len(cpus) >= 2 {
		if _, err := exec.LookPath("taskset"); err == nil {
			r.pin, r.serverCPU, r.clientCPU = true, cpus[0], cpus[1]
		}
	}

	baselineBin := filepath.Join(r.tmp, "baseline")
	build := exec.CommandContext(ctx, "go", "build", "-o", baselineBin, "./e2e/load/baseline")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build baseline: %v\n%s", err, out)
	}
	luaPath := filepath.Join(r.tmp, "wrk.lua")
	if err := os.WriteFile(luaPath, wrkLua, 0o644); err != nil {
		return err
	}

	// imdsd exactly as a user starts it.
	var err error
	// Its own admin socket: a running service (or another load run) owns
	// the default one, and imdsd refuses to share it.
	r.imdsd, err = r.start(ctx, "imdsd", bin, "run", "--source", "dev", "--listen", "127.0.0.1:0", "--token-mode", "required",
		"--admin-socket", filepath.Join(r.tmp, "admin", "admin.sock"))
	if err != nil {
		return err
	}
	time.Sleep(idleSettle)
	if r.rssIdle["imdsd"], err = rssKB(r.imdsd.pid()); err != nil {
		return err
	}
	if r.anonIdle["imdsd"], err = statusKB(r.imdsd.pid(), "RssAnon"); err != nil {
		return err
	}
	token, err := httpDo(ctx, http.MethodPut, r.imdsd.Base+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, http.StatusOK)
	if err != nil {
		return fmt.Errorf("imdsd: get token: %w", err)
	}
	credsPath := "/latest/meta-data/iam/security-credentials/" + roleName
	doc, err := httpDo(ctx, http.MethodGet, r.imdsd.Base+credsPath, map[string]string{"X-aws-ec2-metadata-token": token}, http.StatusOK)
	if err != nil {
		return fmt.Errorf("imdsd: get credentials: %w", err)
	}
	r.credsSize, r.tokenSize = len(doc), len(token)

	r.base, err = r.start(ctx, "baseline", baselineBin, "-listen", "127.0.0.1:0",
		"-get-size", strconv.Itoa(r.credsSize), "-put-size", strconv.Itoa(r.tokenSize))
	if err != nil {
		return err
	}
	time.Sleep(idleSettle)
	if r.rssIdle["baseline"], err = rssKB(r.base.pid()); err != nil {
		return err
	}
	if r.anonIdle["baseline"], err = statusKB(r.base.pid(), "RssAnon"); err != nil {
		return err
	}

	for run := 0; run < r.set.Runs; run++ {
		servers := []*server{r.imdsd, r.base}
		if run%2 == 1 { // alternate who goes first
			servers = []*server{r.base, r.imdsd}
		}
		for _, sc := range scenarios {
			for _, srv := range servers {
				env := []string{"LOAD_METHOD=" + sc.Method}
				url := srv.Base + credsPath
				if sc.Method == http.MethodPut {
					url = srv.Base + "/latest/api/token"
					env = append(env, "LOAD_TTL=21600")
				} else {
					env = append(env, "LOAD_TOKEN="+token)
				}
				if sc.Close {
					env = append(env, "LOAD_CLOSE=1")
				}
				var sample *rssSampler
				if sc.Method == http.MethodGet && !sc.Close {
					sample = startRSSSampler(srv.pid())
				}
				cpu0, err := cpuTime(srv.pid())
				if err != nil {
					return err
				}
				res, err := r.runWrk(ctx, luaPath, url, env)
				cpu1, cerr := cpuTime(srv.pid())
				if err == nil {
					err = cerr
				}
				if sample != nil {
					if m := sample.stop(); m > r.rssLoadMax[srv.Name] {
						r.rssLoadMax[srv.Name] = m
					}
				}
				if err != nil {
					return fmt.Errorf("%s, %s: %w", srv.Name, sc.Name, err)
				}
				if r.results[sc.Name] == nil {
					r.results[sc.Name] = map[string][]wrkResult{}
				}
				r.results[sc.Name][srv.Name] = append(r.results[sc.Name][srv.Name], res)
				if r.cpuPerReq[sc.Name] == nil {
					r.cpuPerReq[sc.Name] = map[string][]float64{}
				}
				perReq := float64(cpu1-cpu0) / float64(time.Microsecond) / float64(res.Requests)
				r.cpuPerReq[sc.Name][srv.Name] = append(r.cpuPerReq[sc.Name][srv.Name], perReq)
				fmt.Fprintf(os.Stderr, "run %d/%d  %-32s %-8s %9.0f req/s  p50 %6dµs  p99 %6dµs  CPU %5.2fµs/req  errors %d\n",
					run+1, r.set.Runs, sc.Name, srv.Name, res.RPS(), res.P50US, res.P99US, perReq, res.Errors())
			}
		}
	}

	if r.set.Flood > 0 {
		if err := r.runFlood(ctx); err != nil {
			return err
		}
	}
	return nil
}

// start runs a server pinned to the server CPU and waits for the line that
// names its endpoint.
func (r *runner) start(ctx context.Context, name, bin string, args ...string) (*server, error) {
	argv := append([]string{bin}, args...)
	if r.pin {
		argv = append([]string{"taskset", "-c", r.serverCPU}, argv...) // taskset execs: same PID
	}
	s := &server{Name: name, done: make(chan struct{}), log: filepath.Join(r.tmp, name+".log")}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(argv[0], argv[1:]...) // not CommandContext: stopped with SIGTERM by stopAll
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + r.tmp}
	s.cmd.Stderr = logf
	dieWithParent(s.cmd)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { s.err = s.cmd.Wait(); logf.Close(); close(s.done) }()
	if name == "imdsd" {
		r.imdsd = s // so stopAll sees it even if the line never comes
	} else {
		r.base = s
	}
	select {
	case line := <-lines:
		_, u, ok := strings.Cut(line, "http://")
		if !ok {
			return nil, fmt.Errorf("%s printed %q, want a line with its http:// endpoint", name, line)
		}
		s.Addr = strings.TrimSuffix(u, "/")
		s.Base = "http://" + s.Addr
		if host, _, err := net.SplitHostPort(s.Addr); err != nil || host != "127.0.0.1" {
			return nil, fmt.Errorf("%s endpoint %q is not on 127.0.0.1", name, s.Addr)
		}
	case <-s.done:
		return nil, fmt.Errorf("%s exited at start: %v (log %s)", name, s.err, s.log)
	case <-time.After(15 * time.Second):
		return nil, fmt.Errorf("%s printed no endpoint within 15s", name)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s, nil
}

// stopAll sends SIGTERM to the servers and reports whether all exited 0.
func (r *runner) stopAll() bool {
	ok := true
	for _, s := range []*server{r.imdsd, r.base} {
		if s == nil || s.cmd.Process == nil {
			continue
		}
		select {
		case <-s.done:
			ok = false
			fmt.Fprintf(os.Stderr, "load: %s exited early: %v\n", s.Name, s.err)
			continue
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			if s.err != nil {
				ok = false
				fmt.Fprintf(os.Stderr, "load: %s exit after SIGTERM: %v\n", s.Name, s.err)
			}
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			ok = false
			fmt.Fprintf(os.Stderr, "load: %s did not exit within 10s of SIGTERM\n", s.Name)
		}
	}
	return ok
}

func (r *runner) wrkArgs() []string {
	return []string{"-t" + strconv.Itoa(r.set.Threads), "-c" + strconv.Itoa(r.set.Conns),
		"-d" + strconv.Itoa(int(r.set.Duration/time.Second)) + "s", "--timeout", "2s"}
}

func (r *runner) runWrk(ctx context.Context, lua, url string, env []string) (wrkResult, error) {
	argv := append([]string{r.wrk}, r.wrkArgs()...)
	argv = append(argv, "-s", lua, url)
	if r.pin {
		argv = append([]string{"taskset", "-c", r.clientCPU}, argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, r.set.Duration+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if j, ok := strings.CutPrefix(line, "WRK_JSON "); ok {
			var res wrkResult
			if err := json.Unmarshal([]byte(j), &res); err != nil {
				return wrkResult{}, fmt.Errorf("wrk output %q: %w", j, err)
			}
			if res.Requests == 0 {
				return wrkResult{}, fmt.Errorf("wrk made no requests:\n%s", out)
			}
			return res, nil
		}
	}
	return wrkResult{}, fmt.Errorf("wrk printed no WRK_JSON line:\n%s", out)
}

// runFlood sends exactly r.set.Flood token PUTs to imdsd through a child
// process (this binary's flood mode) pinned to the client CPU, and samples
// imdsd's RSS before, during and right after.
func (r *runner) runFlood(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let the last wrk run's connections drain
	if r.rssFloodPre, err = rssKB(r.imdsd.pid()); err != nil {
		return err
	}
	argv := []string{self, "flood", "-addr", r.imdsd.Addr, "-n", strconv.Itoa(r.set.Flood),
		"-conns", strconv.Itoa(floodConns), "-depth", strconv.Itoa(floodDepth), "-timeout", r.set.FloodTimeout.String()}
	if r.pin {
		argv = append([]string{"taskset", "-c", r.clientCPU}, argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, r.set.FloodTimeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GOMAXPROCS=1"}
	dieWithParent(cmd)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	sample := startRSSSampler(r.imdsd.pid())
	out, err := cmd.Output()
	r.rssFloodPeak = sample.stop()
	if err != nil {
		return fmt.Errorf("flood: %w\n%s", err, stderr.Bytes())
	}
	if r.rssFloodPost, err = rssKB(r.imdsd.pid()); err != nil {
		return err
	}
	if err := json.Unmarshal(out, &r.flood); err != nil {
		return fmt.Errorf("flood output %q: %w", out, err)
	}
	fmt.Fprintf(os.Stderr, "flood: %d × 200, %d other, %d unsent, %.1fs (%.0f req/s)\n",
		r.flood.OK, r.flood.Other, r.flood.Unsent, r.flood.Seconds, float64(r.flood.OK+r.flood.Other)/r.flood.Seconds)
	return nil
}

// floodResult is the flood child's JSON output.
type floodResult struct {
	OK, Other, Unsent int64
	Seconds           float64
	Reconnects        int64
}

// floodMain is the flood child: exactly n token PUTs over conns pipelined
// keep-alive connections (depth requests in flight per connection), stopping
// at -timeout. Prints floodResult as JSON.
func floodMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	addr := fs.String("addr", "", "imdsd host:port (loopback)")
	n := fs.Int64("n", 1_000_000, "number of PUTs")
	conns := fs.Int("conns", 8, "connections")
	depth := fs.Int64("depth", 64, "pipelined requests per connection")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(stderr, "flood: -addr must be a loopback host:port (got %q)\n", *addr)
		return 2
	}
	req := []byte("PUT /latest/api/token HTTP/1.1\r\nHost: " + *addr +
		"\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n")
	var remaining, ok, other, reconnects atomic.Int64
	remaining.Store(*n)
	claim := func() int64 {
		for {
			r := remaining.Load()
			if r <= 0 {
				return 0
			}
			k := min(*depth, r)
			if remaining.CompareAndSwap(r, r-k) {
				return k
			}
		}
	}
	start := time.Now()
	deadline := start.Add(*timeout)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range *conns {
		wg.Go(func() {
			batch := bytes.Repeat(req, int(*depth))
			failures := 0
			for time.Now().Before(deadline) && failures < 100 {
				c, err := net.DialTimeout("tcp", *addr, time.Second)
				if err != nil {
					failures++
					firstErr.CompareAndSwap(nil, err)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				_ = c.SetDeadline(deadline)
				br := bufio.NewReaderSize(c, 64<<10)
				done := false
				for {
					k := claim()
					if k == 0 {
						done = true
						break
					}
					if _, err := c.Write(batch[:int(k)*len(req)]); err != nil {
						remaining.Add(k)
						firstErr.CompareAndSwap(nil, err)
						failures++
						break
					}
					var got int64
					closed := false
					for ; got < k; got++ {
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							firstErr.CompareAndSwap(nil, err)
							failures++
							closed = true
							break
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							ok.Add(1)
						} else {
							other.Add(1)
						}
						if resp.Close {
							got++
							closed = true
							break
						}
					}
					if got < k {
						remaining.Add(k - got) // unanswered: send again on a new connection
					}
					if closed {
						break
					}
				}
				c.Close()
				if done {
					return
				}
				reconnects.Add(1)
			}
		})
	}
	wg.Wait()
	res := floodResult{OK: ok.Load(), Other: other.Load(), Unsent: max(remaining.Load(), 0),
		Seconds: time.Since(start).Seconds(), Reconnects: reconnects.Load()}
	if err, _ := firstErr.Load().(error); err != nil && res.Unsent > 0 {
		fmt.Fprintf(stderr, "flood: first error: %v\n", err)
	}
	_ = json.NewEncoder(stdout).Encode(res)
	return 0
}

// rssKB reads VmRSS of pid in kB.
func rssKB(pid int) (int, error) { return statusKB(pid, "VmRSS") }

// statusKB reads the field (VmRSS, RssAnon, …) of /proc/PID/status, in kB.
func statusKB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// rssSampler records the maximum VmRSS of a process every 20 ms.
type rssSampler struct {
	stopc chan struct{}
	done  chan int
}

func startRSSSampler(pid int) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan int)}
	go func() {
		maxKB := 0
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := rssKB(pid); err == nil && kb > maxKB {
				maxKB = kb
			}
			select {
			case <-s.stopc:
				s.done <- maxKB
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int { close(s.stopc); return <-s.done }

// httpDo sends one request with Go's net/http (no proxy) and returns the body.
func httpDo(ctx context.Context, method, url string, hdr map[string]string, want int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return "", err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != want {
		return "", fmt.Errorf("%s %s = %d, want %d", method, url, resp.StatusCode, want)
	}
	return string(b), nil
}

func output(ctx context.Context, name string, args ...string) string {
	out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out)
}

// allowedCPUs lists the CPUs this process may run on (Cpus_allowed_list).
func allowedCPUs() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	var cpus []string
	for line := range strings.SplitSeq(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		for part := range strings.SplitSeq(strings.TrimSpace(v), ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				return nil
			}
			for c := a; c <= b; c++ {
				cpus = append(cpus, strconv.Itoa(c))
			}
		}
	}
	return cpus
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// pairRatio is the median over runs i of f(im[i]) / f(ba[i]).
func pairRatio(im, ba []wrkResult, f func(wrkResult) float64) float64 {
	of := func(rs []wrkResult) []float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return xs
	}
	return median(pairRatios(of(im), of(ba)))
}

// pairRatios is im[i] / ba[i] for each run i the two share (a baseline
// value of 0 gives no ratio).
func pairRatios(im, ba []float64) []float64 {
	var rs []float64
	for i := range min(len(im), len(ba)) {
		if ba[i] > 0 {
			rs = append(rs, im[i]/ba[i])
		}
	}
	return rs
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type summary struct {
	RPS, P50, P99 float64 // medians; latencies in µs
	Errors        int64   // sum over runs
}

func summarize(rs []wrkResult) summary {
	var rps, p50, p99 []float64
	var errs int64
	for _, r := range rs {
		rps = append(rps, r.RPS())
		p50 = append(p50, float64(r.P50US))
		p99 = append(p99, float64(r.P99US))
		errs += r.Errors()
	}
	return summary{median(rps), median(p50), median(p99), errs}
}

type reportOut struct{ text, markdown string }

func fmtMiB(kb int) string { return fmt.Sprintf("%.1f MiB", float64(kb)/mib) }

func fmtUS(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}

func (r *runner) verdict(ok bool, what string) string {
	if ok {
		r.passes = append(r.passes, what)
		return "PASS"
	}
	r.fails = append(r.fails, what)
	return "FAIL"
}

func (r *runner) command() string {
	entry := os.Args[0]
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		entry = "go run ./e2e/load"
	}
	if e := os.Getenv("LOAD_ENTRY"); e != "" { // set by run.sh
		entry = e
	}
	cmd := strings.Join(append([]string{entry}, os.Args[1:]...), " ") // the mode, as in "idle"
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LOAD_ENTRY=") {
			continue
		}
		if strings.HasPrefix(kv, "LOAD_") || strings.HasPrefix(kv, "IMDSD_BIN=") {
			env = append(env, kv)
		}
	}
	slices.Sort(env)
	return strings.TrimSpace(strings.Join(env, " ") + " " + cmd)
}

func (r *runner) report() reportOut {
	var text, md strings.Builder
	tw := tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
	pinning := "none (taskset missing or fewer than 2 CPUs)"
	if r.pin {
		pinning = fmt.Sprintf("servers on CPU %s, wrk and the flood generator on CPU %s (taskset); so each server runs with GOMAXPROCS=1", r.serverCPU, r.clientCPU)
	}
	wrkParams := strings.Join(r.wrkArgs(), " ")

	fmt.Fprintf(&md, "### Load run %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&md, "- command: `%s`\n", r.command())
	fmt.Fprintf(&md, "- machine: nproc %d, %s, %s %s\n", runtime.NumCPU(), r.cpuModel, runtime.GOOS, strings.TrimSpace(output(context.Background(), "uname", "-r")))
	fmt.Fprintf(&md, "- %s; %s\n", r.goVersion, r.wrkVersion)
	fmt.Fprintf(&md, "- wrk: `%s` (threads %d, connections %d, duration %v), %d runs per cell alternating imdsd/baseline, median reported\n",
		wrkParams, r.set.Threads, r.set.Conns, r.set.Duration, r.set.Runs)
	fmt.Fprintf(&md, "- pinning: %s\n", pinning)
	fmt.Fprintf(&md, "- imdsd: `bin/imdsd run --source dev --listen 127.0.0.1:0 --token-mode required`; baseline: bare net/http, fixed bodies of %d bytes (credentials document) and %d bytes (token)\n\n",
		r.credsSize, r.tokenSize)

	fmt.Fprintln(&md, "| scenario | imdsd req/s | baseline req/s | ratio, median of pairs (≥ 0.9) | imdsd p50 | baseline p50 | imdsd p99 | baseline p99 | p99 ratio, median of pairs (≤ 1.2) | errors imdsd/baseline |")
	fmt.Fprintln(&md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintln(tw, "scenario\timdsd req/s\tbaseline req/s\tratio\timdsd p50\tbase p50\timdsd p99\tbase p99\tp99 ratio\terrors\t")
	var checks []string
	for _, sc := range scenarios {
		im, ba := summarize(r.results[sc.Name]["imdsd"]), summarize(r.results[sc.Name]["baseline"])
		// Ratios are medians of the runs' pair ratios (imdsd's run against
		// the baseline's run next to it), as for CPU below: a run that other
		// load on the machine slowed weighs once, on both sides.
		rpsRatio := pairRatio(r.results[sc.Name]["imdsd"], r.results[sc.Name]["baseline"], wrkResult.RPS)
		p99Ratio := pairRatio(r.results[sc.Name]["imdsd"], r.results[sc.Name]["baseline"], func(w wrkResult) float64 { return float64(w.P99US) })
		errs := fmt.Sprintf("%d/%d", im.Errors, ba.Errors)
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%.2f\t%s\t\n", sc.Name, im.RPS, ba.RPS, rpsRatio,
			fmtUS(im.P50), fmtUS(ba.P50), fmtUS(im.P99), fmtUS(ba.P99), p99Ratio, errs)
		fmt.Fprintf(&md, "| %s | %.0f | %.0f | %.2f | %s | %s | %s | %s | %.2f | %s |\n", sc.Name, im.RPS, ba.RPS, rpsRatio,
			fmtUS(im.P50), fmtUS(ba.P50), fmtUS(im.P99), fmtUS(ba.P99), p99Ratio, errs)
		checks = append(checks,
			fmt.Sprintf("%s  %s: req/s ratio %.2f ≥ %.1f", r.verdict(rpsRatio >= targetRPSRatio, sc.Name+" req/s"), sc.Name, rpsRatio, targetRPSRatio),
			fmt.Sprintf("%s  %s: p99 ratio %.2f ≤ %.1f", r.verdict(p99Ratio <= targetP99Ratio, sc.Name+" p99"), sc.Name, p99Ratio, targetP99Ratio),
			fmt.Sprintf("%s  %s: imdsd answered every request with 2xx (%d errors)", r.verdict(im.Errors == 0, sc.Name+" errors"), sc.Name, im.Errors))
	}
	tw.Flush()

	// Server CPU per request: the servers' own CPU time over the requests
	// they completed, per run; the ratio is the median of the runs' pair
	// ratios, so a run disturbed by other load on the machine weighs once.
	fmt.Fprintln(&md, "\n| scenario | imdsd CPU/req | baseline CPU/req | CPU ratio, median of pairs (≤ 1.10 keep-alive) | pair ratios |")
	fmt.Fprintln(&md, "|---|---:|---:|---:|---|")
	fmt.Fprintf(&text, "\n")
	tw = tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\timdsd CPU/req\tbaseline CPU/req\tratio\tpair ratios\t")
	for _, sc := range scenarios {
		im, ba := r.cpuPerReq[sc.Name]["imdsd"], r.cpuPerReq[sc.Name]["baseline"]
		pairs := pairRatios(im, ba)
		var pairText []string
		for _, p := range pairs {
			pairText = append(pairText, fmt.Sprintf("%.2f", p))
		}
		ratio := median(pairs)
		fmt.Fprintf(tw, "%s\t%.2f µs\t%.2f µs\t%.2f\t%s\t\n", sc.Name, median(im), median(ba), ratio, strings.Join(pairText, " "))
		fmt.Fprintf(&md, "| %s | %.2f µs | %.2f µs | %.2f | %s |\n", sc.Name, median(im), median(ba), ratio, strings.Join(pairText, " "))
		if !sc.Close {
			checks = append(checks, fmt.Sprintf("%s  %s: server CPU per request ratio %.2f ≤ %.2f (median of %d pairs)",
				r.verdict(ratio <= targetCPURatio, sc.Name+" CPU"), sc.Name, ratio, targetCPURatio, len(pairs)))
		}
	}
	tw.Flush()

	fmt.Fprintln(&md, "\n| memory | imdsd | baseline |")
	fmt.Fprintln(&md, "|---|---:|---:|")
	fmt.Fprintf(&md, "| idle, after start: VmRSS | %s | %s |\n", fmtMiB(r.rssIdle["imdsd"]), fmtMiB(r.rssIdle["baseline"]))
	fmt.Fprintf(&md, "| idle, after start: private anonymous (RssAnon) | %s | %s |\n", fmtMiB(r.anonIdle["imdsd"]), fmtMiB(r.anonIdle["baseline"]))
	fmt.Fprintf(&md, "| max during GET keep-alive load | %s | %s |\n", fmtMiB(r.rssLoadMax["imdsd"]), fmtMiB(r.rssLoadMax["baseline"]))
	fmt.Fprintf(&text, "\n%-28s  %-10s  %s\n", "memory (VmRSS)", "imdsd", "baseline")
	fmt.Fprintf(&text, "%-28s  %-10s  %s\n", "idle, after start", fmtMiB(r.rssIdle["imdsd"]), fmtMiB(r.rssIdle["baseline"]))
	fmt.Fprintf(&text, "%-28s  %-10s  %s\n", "idle, private anonymous", fmtMiB(r.anonIdle["imdsd"]), fmtMiB(r.anonIdle["baseline"]))
	fmt.Fprintf(&text, "%-28s  %-10s  %s\n", "max under GET keep-alive", fmtMiB(r.rssLoadMax["imdsd"]), fmtMiB(r.rssLoadMax["baseline"]))
	checks = append(checks, fmt.Sprintf("%s  idle RSS %s ≤ %s", r.verdict(r.rssIdle["imdsd"] <= targetIdleRSSKB, "idle RSS"),
		fmtMiB(r.rssIdle["imdsd"]), fmtMiB(targetIdleRSSKB)))
	checks = append(checks, fmt.Sprintf("%s  idle private anonymous memory (RssAnon) %s ≤ %s", r.verdict(r.anonIdle["imdsd"] <= targetIdleAnonKB, "idle RssAnon"),
		fmtMiB(r.anonIdle["imdsd"]), fmtMiB(targetIdleAnonKB)))

	if r.set.Flood > 0 {
		sent := r.flood.OK + r.flood.Other
		rate := float64(sent) / r.flood.Seconds
		delta := r.rssFloodPost - r.rssFloodPre
		fmt.Fprintf(&md, "| before %d token PUTs | %s | |\n", r.set.Flood, fmtMiB(r.rssFloodPre))
		fmt.Fprintf(&md, "| max during them | %s | |\n", fmtMiB(r.rssFloodPeak))
		fmt.Fprintf(&md, "| right after them | %s | |\n", fmtMiB(r.rssFloodPost))
		fmt.Fprintf(&md, "\nToken flood: %d PUTs answered (%d × 200) in %.1f s (%.0f req/s; %d keep-alive connections, %d requests pipelined on each), %d unsent; RSS right after − before = %+.2f MiB.\n",
			sent, r.flood.OK, r.flood.Seconds, rate, floodConns, floodDepth, r.flood.Unsent, float64(delta)/mib)
		fmt.Fprintf(&text, "%-28s  %s\n%-28s  %s\n%-28s  %s\n",
			fmt.Sprintf("before %d token PUTs", r.set.Flood), fmtMiB(r.rssFloodPre),
			"max during them", fmtMiB(r.rssFloodPeak), "right after them", fmtMiB(r.rssFloodPost))
		fmt.Fprintf(&text, "token flood: %d answered (%d × 200) in %.1fs (%.0f req/s), %d unsent\n", sent, r.flood.OK, r.flood.Seconds, rate, r.flood.Unsent)
		checks = append(checks,
			fmt.Sprintf("%s  token flood: exactly %d PUTs answered 200 (got %d × 200, %d other, %d unsent)",
				r.verdict(r.flood.OK == int64(r.set.Flood) && r.flood.Other == 0, "token flood count"), r.set.Flood, r.flood.OK, r.flood.Other, r.flood.Unsent),
			fmt.Sprintf("%s  RSS after the token flood %+.2f MiB vs before (|Δ| ≤ %s)",
				r.verdict(abs(delta) <= targetFloodRSSKB, "flood RSS"), float64(delta)/mib, fmtMiB(targetFloodRSSKB)))
	}

	fmt.Fprintln(&text)
	fmt.Fprint(&md, "\nTargets:\n\n")
	for _, c := range checks {
		fmt.Fprintln(&text, c)
		fmt.Fprintf(&md, "- %s\n", c)
	}
	fmt.Fprintf(&text, "\n%d PASS, %d FAIL (%s)\n", len(r.passes), len(r.fails), pinning)
	return reportOut{text.String(), md.String()}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// firstLine is the first line of s, trimmed (imdsd version's version).
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
