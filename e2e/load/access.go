package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Two runs of the cost of access control and of several roles:
//
// `go run ./e2e/load access` (or `e2e/load/run.sh access`): credentials
// GET throughput, keep-alive and a new connection per request, of three
// imdsd that differ only in their config file: "off" (no allow list),
// "on" (the role allows the load generator's own uid: every new
// connection is looked up in the kernel once, and every request decided)
// and "on-audit" (the same, with an audit_log: every answer also looks up
// the client's process and queues a record). Each serves two roles, the
// measured one and one whose allow list names another uid, which must be
// 403 with the policy on and 200 without, so the policy is known to be in
// force. LOAD_RUNS runs alternating the order of the three, median
// reported, with the ratios on/off against their targets, and imdsd's CPU
// time per request (cpuTime), which other load on a shared machine
// disturbs less than throughput.
//
// `go run ./e2e/load roles`: idle memory of imdsd serving 10 roles
// against 1 role (dev sources, the same listener), LOAD_RUNS starts of
// each alternating: VmRSS and /proc/PID/smaps_rollup (Rss, Pss,
// Anonymous, Private_*) after start-up, the same 10 credentials GETs (one
// per role, or ten of the one role) and LOAD_SETTLE.
//
// Both are bounded (LOAD_TIMEOUT, wrk LOAD_DURATION per cell, at most
// LOAD_RUNS rounds), use 127.0.0.1 only, and give each imdsd its own admin
// socket in a temporary directory. Settings as for the main run
// (LOAD_THREADS, LOAD_CONNECTIONS, LOAD_DURATION, LOAD_RUNS, LOAD_TIMEOUT,
// LOAD_STRICT, IMDSD_BIN), and LOAD_SETTLE (2s) for roles; the report
// goes to LOAD_OUT (default e2e/load/last-access.md, last-roles.md).

const (
	// The access run's targets: the policy costs at most 5 % of keep-alive
	// throughput and 15 % of new-connection throughput.
	targetAccessKeepAlive = 0.95
	targetAccessNewConn   = 0.85
	// The roles run's target: 10 roles cost at most 1 MiB more than 1.
	targetRolesExtraKB = 1 * mib
	// otherUID is the uid the second role allows: nobody of the run.
	otherUID = 47199
)

// accessVariant is one imdsd of the access run.
type accessVariant struct {
	name   string
	policy bool
	audit  bool
	srv    *server
	r      *runner
	token  string
	sock   string
	// results by scenario name, in run order
	results map[string][]wrkResult
	// cpuPerReq is imdsd's CPU time (user + system) per request answered,
	// in µs, by scenario name, in run order.
	cpuPerReq map[string][]float64
	// trail reports the audit trail's counters (audit only).
	trail string
}

// accessScenarios are the credentials GETs measured.
var accessScenarios = []scenario{
	{"GET credentials, keep-alive", http.MethodGet, false},
	{"GET credentials, new connection", http.MethodGet, true},
}

// commonRun prepares what every mode of this file needs: the repo root,
// the settings, imdsd, a bounded context and a temporary directory.
type commonRun struct {
	root, bin, tmp string
	set            settings
	pin            bool
	serverCPU      string
	clientCPU      string
	started        time.Time
}

func newCommonRun(outName string) (*commonRun, error) {
	c := &commonRun{started: time.Now()}
	var err error
	if c.root, err = repoRoot(); err != nil {
		return nil, err
	}
	if c.set, err = loadSettings(c.root); err != nil {
		return nil, err
	}
	if os.Getenv("LOAD_OUT") == "" {
		c.set.Out = filepath.Join(c.root, "e2e", "load", outName)
	}
	c.bin = os.Getenv("IMDSD_BIN")
	if c.bin == "" {
		c.bin = filepath.Join(c.root, "bin", "imdsd")
	}
	if _, err := os.Stat(c.bin); err != nil {
		return nil, fmt.Errorf("imdsd binary not found at %s: run `make build` first (or set IMDSD_BIN)", c.bin)
	}
	if cpus := allowedCPUs(); len(cpus) >= 2 {
		if _, err := exec.LookPath("taskset"); err == nil {
			c.pin, c.serverCPU, c.clientCPU = true, cpus[0], cpus[1]
		}
	}
	// Short: admin sockets live here (unix socket paths are limited to
	// about 100 bytes).
	if c.tmp, err = os.MkdirTemp("", "imdsd-load-"); err != nil {
		return nil, err
	}
	return c, nil
}

// runner returns a runner of its own for one server, so that its stopAll
// stops that server only.
func (c *commonRun) runner(wrk string) *runner {
	return &runner{set: c.set, wrk: wrk, tmp: c.tmp, started: c.started, pin: c.pin, serverCPU: c.serverCPU, clientCPU: c.clientCPU}
}

func (c *commonRun) pinning() string {
	if c.pin {
		return fmt.Sprintf("imdsd on CPU %s, wrk on CPU %s (taskset), so imdsd runs with GOMAXPROCS=1", c.serverCPU, c.clientCPU)
	}
	return "none (taskset missing or fewer than 2 CPUs)"
}

// writeConfig writes an imdsd config file named name.yaml in c.tmp.
func (c *commonRun) writeConfig(name, body string) (string, error) {
	p := filepath.Join(c.tmp, name+".yaml")
	return p, os.WriteFile(p, []byte(body), 0o600)
}

// accessConfigBody is the access run's config of v: two dev roles, the
// first (measured) allowing this process's uid when the policy is on, the
// second allowing otherUID only.
func (c *commonRun) accessConfigBody(v *accessVariant) string {
	s := "listen: [127.0.0.1:0]\ntoken_mode: required\n" +
		"admin_socket: " + v.sock + "\n"
	if v.audit {
		s += "audit_log: " + filepath.Join(c.tmp, "audit", v.name+".log") + "\n"
	}
	s += "roles:\n  - name: " + roleName + "\n    source: dev\n"
	if v.policy {
		s += fmt.Sprintf("    allow: {users: [%d]}\n", os.Getuid())
	}
	s += "  - name: other\n    source: dev\n"
	if v.policy {
		s += fmt.Sprintf("    allow: {users: [%d]}\n", otherUID)
	}
	return s
}

func accessMain() int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "load access: "+format+"\n", a...)
		return 1
	}
	c, err := newCommonRun("last-access.md")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(c.tmp)
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return fail("wrk not found: install it with `apt-get install -y wrk`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.set.Timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.Mkdir(filepath.Join(c.tmp, "audit"), 0o700); err != nil {
		return fail("%v", err)
	}
	luaPath := filepath.Join(c.tmp, "wrk.lua")
	if err := os.WriteFile(luaPath, wrkLua, 0o644); err != nil {
		return fail("%v", err)
	}

	variants := []*accessVariant{{name: "off"}, {name: "on", policy: true}, {name: "on-audit", policy: true, audit: true}}
	stopAll := func() bool {
		ok := true
		for _, v := range variants {
			if v.r != nil && !v.r.stopAll() {
				ok = false
			}
		}
		return ok
	}
	err = runAccess(ctx, c, wrk, luaPath, variants)
	if !stopAll() && err == nil {
		err = errors.New("an imdsd did not exit cleanly on SIGTERM")
	}
	if err != nil {
		return fail("%v", err)
	}
	text, md, fails := accessReport(c, wrk, variants)
	if err := os.WriteFile(c.set.Out, []byte(md), 0o644); err != nil {
		return fail("write report: %v", err)
	}
	fmt.Print(text)
	fmt.Printf("\nmarkdown report written to %s (%s total)\n", c.set.Out, time.Since(c.started).Round(100*time.Millisecond))
	if fails > 0 && c.set.Strict {
		return fail("LOAD_STRICT=1 and %d target(s) missed", fails)
	}
	return 0
}

func runAccess(ctx context.Context, c *commonRun, wrk, luaPath string, variants []*accessVariant) error {
	credsPath := "/latest/meta-data/iam/security-credentials/"
	for _, v := range variants {
		v.sock = filepath.Join(c.tmp, v.name+".sock")
		v.results, v.cpuPerReq = map[string][]wrkResult{}, map[string][]float64{}
		cfg, err := c.writeConfig(v.name, c.accessConfigBody(v))
		if err != nil {
			return err
		}
		v.r = c.runner(wrk)
		if v.srv, err = v.r.start(ctx, "imdsd-"+v.name, c.bin, "run", "--config", cfg, "--log-format", "json"); err != nil {
			return err
		}
		if v.token, err = httpDo(ctx, http.MethodPut, v.srv.Base+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, http.StatusOK); err != nil {
			return fmt.Errorf("imdsd %s: get token: %w", v.name, err)
		}
		hdr := map[string]string{"X-aws-ec2-metadata-token": v.token}
		if _, err := httpDo(ctx, http.MethodGet, v.srv.Base+credsPath+roleName, hdr, http.StatusOK); err != nil {
			return fmt.Errorf("imdsd %s: the measured role: %w", v.name, err)
		}
		// The policy is in force exactly when it should be.
		want := http.StatusOK
		if v.policy {
			want = http.StatusForbidden
		}
		if _, err := httpDo(ctx, http.MethodGet, v.srv.Base+credsPath+"other", hdr, want); err != nil {
			return fmt.Errorf("imdsd %s: the role allowing uid %d only: %w", v.name, otherUID, err)
		}
	}
	for run := 0; run < c.set.Runs; run++ {
		order := append([]*accessVariant(nil), variants...)
		if run%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, sc := range accessScenarios {
			for _, v := range order {
				env := []string{"LOAD_METHOD=GET", "LOAD_TOKEN=" + v.token}
				if sc.Close {
					env = append(env, "LOAD_CLOSE=1")
				}
				cpu0, err := cpuTime(v.srv.pid())
				if err != nil {
					return err
				}
				res, err := v.r.runWrk(ctx, luaPath, v.srv.Base+credsPath+roleName, env)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", v.name, sc.Name, err)
				}
				cpu1, err := cpuTime(v.srv.pid())
				if err != nil {
					return err
				}
				perReq := float64(cpu1-cpu0) / float64(time.Microsecond) / float64(res.Requests)
				v.results[sc.Name] = append(v.results[sc.Name], res)
				v.cpuPerReq[sc.Name] = append(v.cpuPerReq[sc.Name], perReq)
				fmt.Fprintf(os.Stderr, "run %d/%d  %-32s %-9s %9.0f req/s  p50 %6dµs  p99 %6dµs  imdsd CPU %5.1fµs/req  errors %d\n",
					run+1, c.set.Runs, sc.Name, v.name, res.RPS(), res.P50US, res.P99US, perReq, res.Errors())
			}
		}
	}
	// The trail kept up, or says how many records it dropped.
	for _, v := range variants {
		if !v.audit {
			continue
		}
		mt, err := adminMetrics(ctx, v.sock)
		if err != nil {
			return fmt.Errorf("imdsd %s: read its metrics: %w", v.name, err)
		}
		v.trail = fmt.Sprintf("%s's audit trail: %s records written, %s dropped (queue full), %s failed", v.name,
			metricValue(mt, `imdsd_audit_records_total{outcome="written"}`), metricValue(mt, `imdsd_audit_records_total{outcome="dropped"}`),
			metricValue(mt, `imdsd_audit_records_total{outcome="failed"}`))
	}
	return nil
}

// cpuTime is the CPU time pid has used, user and system, all threads: the
// sum of its threads' run time in nanoseconds (/proc/PID/task/*/schedstat;
// Go's threads live as long as the process), or, where the kernel keeps no
// schedstat, utime + stime from /proc/PID/stat in USER_HZ ticks of 10 ms.
func cpuTime(pid int) (time.Duration, error) {
	if d, err := schedTime(pid); err == nil {
		return d, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it
	// start with the state (field 3): utime and stime are fields 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick, nil
}

// schedTime sums the first field of /proc/PID/task/*/schedstat: each
// thread's time on a CPU, in nanoseconds.
func schedTime(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited meanwhile
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %w", pid, t.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// adminMetrics reads the /metrics of the imdsd whose admin socket is sock.
func adminMetrics(ctx context.Context, sock string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://imdsd/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metricValue is the value of series in a /metrics text, "?" when absent.
func metricValue(text, series string) string {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return "?"
}

func accessReport(c *commonRun, wrk string, variants []*accessVariant) (text, md string, fails int) {
	var t, m strings.Builder
	ctx := context.Background()
	byName := map[string]*accessVariant{}
	for _, v := range variants {
		byName[v.name] = v
	}
	r := c.runner(wrk)
	fmt.Fprintf(&m, "### Access control load run %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&m, "- command: `%s`\n", r.command())
	fmt.Fprintf(&m, "- machine: nproc %d, %s, %s %s; %s; load average before the report: %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS,
		strings.TrimSpace(output(ctx, "uname", "-r")), runtime.Version(), loadAverage())
	fmt.Fprintf(&m, "- imdsd: %s, `imdsd run --config FILE` (two dev roles); wrk `%s`, %d runs per cell alternating the order of the three, median reported; pinning: %s\n\n",
		firstLine(output(ctx, c.bin, "version")), strings.Join(r.wrkArgs(), " "), c.set.Runs, c.pinning())

	fmt.Fprintln(&m, "| scenario | off req/s | on req/s | on/off (target) | on-audit req/s | on-audit/off | p99 off / on / on-audit | per-run on/off | errors |")
	fmt.Fprintln(&m, "|---|---:|---:|---:|---:|---:|---:|---|---:|")
	var checks []string
	for _, sc := range accessScenarios {
		off, on, au := summarize(byName["off"].results[sc.Name]), summarize(byName["on"].results[sc.Name]), summarize(byName["on-audit"].results[sc.Name])
		ratio, auRatio := on.RPS/off.RPS, au.RPS/off.RPS
		target := targetAccessKeepAlive
		if sc.Close {
			target = targetAccessNewConn
		}
		var perRun []string
		for i := range byName["on"].results[sc.Name] {
			perRun = append(perRun, fmt.Sprintf("%.2f", byName["on"].results[sc.Name][i].RPS()/byName["off"].results[sc.Name][i].RPS()))
		}
		ok := ratio >= target
		verdict := "PASS"
		if !ok {
			verdict = "FAIL"
			fails++
		}
		errs := off.Errors + on.Errors + au.Errors
		fmt.Fprintf(&m, "| %s | %.0f | %.0f | **%.3f** (≥ %.2f: %s) | %.0f | %.3f | %s / %s / %s | %s | %d |\n", sc.Name, off.RPS, on.RPS, ratio, target, verdict,
			au.RPS, auRatio, fmtUS(off.P99), fmtUS(on.P99), fmtUS(au.P99), strings.Join(perRun, " "), errs)
		fmt.Fprintf(&t, "%-32s  off %7.0f  on %7.0f (%.3f)  on-audit %7.0f (%.3f)  p99 %s/%s/%s  per-run on/off %s  errors %d\n",
			sc.Name, off.RPS, on.RPS, ratio, au.RPS, auRatio, fmtUS(off.P99), fmtUS(on.P99), fmtUS(au.P99), strings.Join(perRun, " "), errs)
		checks = append(checks, fmt.Sprintf("%s  %s: on/off %.3f ≥ %.2f", verdict, sc.Name, ratio, target))
		if errs > 0 {
			fails++
			checks = append(checks, fmt.Sprintf("FAIL  %s: %d requests failed", sc.Name, errs))
		}
	}
	// CPU per request: what each answer costs imdsd, less sensitive than
	// throughput to other load on a shared machine; the throughput that
	// one CPU sustains is its inverse.
	fmt.Fprintln(&m, "\n| imdsd CPU per request (median) | off | on | off/on (throughput equivalent) | on-audit | off/on-audit | per-run off/on |")
	fmt.Fprintln(&m, "|---|---:|---:|---:|---:|---:|---|")
	for _, sc := range accessScenarios {
		off, on, au := median(byName["off"].cpuPerReq[sc.Name]), median(byName["on"].cpuPerReq[sc.Name]), median(byName["on-audit"].cpuPerReq[sc.Name])
		var perRun []string
		for i := range byName["on"].cpuPerReq[sc.Name] {
			perRun = append(perRun, fmt.Sprintf("%.2f", byName["off"].cpuPerReq[sc.Name][i]/byName["on"].cpuPerReq[sc.Name][i]))
		}
		fmt.Fprintf(&m, "| %s | %.1f µs | %.1f µs | %.3f | %.1f µs | %.3f | %s |\n", sc.Name, off, on, off/on, au, off/au, strings.Join(perRun, " "))
		fmt.Fprintf(&t, "%-32s  CPU/request off %.1fµs  on %.1fµs (off/on %.3f)  on-audit %.1fµs (%.3f)  per-run off/on %s\n",
			sc.Name, off, on, off/on, au, off/au, strings.Join(perRun, " "))
	}
	if tr := byName["on-audit"].trail; tr != "" {
		fmt.Fprintf(&m, "\n%s.\n", tr)
		fmt.Fprintln(&t, tr)
	}
	fmt.Fprint(&m, "\nTargets:\n\n")
	fmt.Fprintln(&t)
	for _, ch := range checks {
		fmt.Fprintf(&m, "- %s\n", ch)
		fmt.Fprintln(&t, ch)
	}
	return t.String(), m.String(), fails
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// memSample is one imdsd's memory after start-up, in kB.
type memSample struct {
	VmRSS, Rss, Pss, Anonymous, Private int
}

// readMem reads VmRSS and smaps_rollup of pid.
func readMem(pid int) (memSample, error) {
	var s memSample
	var err error
	if s.VmRSS, err = rssKB(pid); err != nil {
		return s, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return s, err
	}
	fields := map[string]int{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err == nil {
			fields[k] = n
		}
	}
	for _, k := range []string{"Rss", "Pss", "Anonymous", "Private_Clean", "Private_Dirty"} {
		if _, ok := fields[k]; !ok {
			return s, fmt.Errorf("/proc/%d/smaps_rollup has no %s", pid, k)
		}
	}
	s.Rss, s.Pss, s.Anonymous = fields["Rss"], fields["Pss"], fields["Anonymous"]
	// Private includes the binary's pages when no other process maps it
	// (and counts them dirty while a freshly copied binary awaits
	// writeback): Anonymous is the figure that depends on imdsd alone.
	s.Private = fields["Private_Clean"] + fields["Private_Dirty"]
	return s, nil
}

func rolesMain() int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "load roles: "+format+"\n", a...)
		return 1
	}
	c, err := newCommonRun("last-roles.md")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(c.tmp)
	settle := 2 * time.Second
	var errs []error
	envDuration(&errs, "LOAD_SETTLE", &settle, 0, time.Minute)
	if err := errors.Join(errs...); err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.set.Timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	counts := []int{1, 10}
	samples := map[int][]memSample{}
	for run := 0; run < c.set.Runs; run++ {
		order := counts
		if run%2 == 1 {
			order = []int{counts[1], counts[0]}
		}
		for _, n := range order {
			s, err := c.rolesSample(ctx, n, settle)
			if err != nil {
				return fail("%d roles: %v", n, err)
			}
			samples[n] = append(samples[n], s)
			fmt.Fprintf(os.Stderr, "run %d/%d  %2d roles: VmRSS %s, Rss %s, Anonymous %s, Private %s\n", run+1, c.set.Runs, n,
				fmtMiB(s.VmRSS), fmtMiB(s.Rss), fmtMiB(s.Anonymous), fmtMiB(s.Private))
		}
	}

	med := func(n int, f func(memSample) int) int {
		var xs []float64
		for _, s := range samples[n] {
			xs = append(xs, float64(f(s)))
		}
		return int(median(xs))
	}
	var t, m strings.Builder
	fmt.Fprintf(&m, "### Idle memory by number of roles %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&m, "- command: `%s`\n", c.runner("").command())
	fmt.Fprintf(&m, "- machine: nproc %d, %s, %s %s; %s; load average at the end: %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS,
		strings.TrimSpace(output(ctx, "uname", "-r")), runtime.Version(), loadAverage())
	fmt.Fprintf(&m, "- imdsd: %s, `imdsd run --config FILE`: N dev roles, `listen: [127.0.0.1:0]`; after the export line, 10 credentials GETs (each role, or the one role ten times), then %v; %d starts of each alternating, median reported; pinning: %s\n\n",
		firstLine(output(ctx, c.bin, "version")), settle, c.set.Runs, c.pinning())
	fmt.Fprintln(&m, "| kB (median) | 1 role | 10 roles | 10 − 1 |")
	fmt.Fprintln(&m, "|---|---:|---:|---:|")
	rows := []struct {
		name string
		f    func(memSample) int
	}{
		{"VmRSS", func(s memSample) int { return s.VmRSS }},
		{"Rss (smaps_rollup)", func(s memSample) int { return s.Rss }},
		{"Pss", func(s memSample) int { return s.Pss }},
		{"Anonymous", func(s memSample) int { return s.Anonymous }},
		{"file-backed (Rss − Anonymous)", func(s memSample) int { return s.Rss - s.Anonymous }},
		{"Private_Clean + Private_Dirty", func(s memSample) int { return s.Private }},
	}
	var checks []string
	fails := 0
	for _, row := range rows {
		one, ten := med(1, row.f), med(10, row.f)
		fmt.Fprintf(&m, "| %s | %d | %d | %+d |\n", row.name, one, ten, ten-one)
		fmt.Fprintf(&t, "%-30s  1 role %6d kB  10 roles %6d kB  %+6d kB\n", row.name, one, ten, ten-one)
		if row.name == "VmRSS" || row.name == "Anonymous" {
			v := "PASS"
			if ten-one > targetRolesExtraKB {
				v = "FAIL"
				fails++
			}
			checks = append(checks, fmt.Sprintf("%s  %s: 10 roles − 1 role = %+d kB ≤ %d kB", v, row.name, ten-one, targetRolesExtraKB))
		}
	}
	var per []string
	for _, n := range counts {
		var xs []string
		for _, s := range samples[n] {
			xs = append(xs, strconv.Itoa(s.VmRSS))
		}
		per = append(per, fmt.Sprintf("%d role(s): %s", n, strings.Join(xs, ", ")))
	}
	fmt.Fprintf(&m, "\nVmRSS of each start (kB): %s.\n\nTargets:\n\n", strings.Join(per, "; "))
	fmt.Fprintln(&t)
	for _, ch := range checks {
		fmt.Fprintf(&m, "- %s\n", ch)
		fmt.Fprintln(&t, ch)
	}
	if err := os.WriteFile(c.set.Out, []byte(m.String()), 0o644); err != nil {
		return fail("write report: %v", err)
	}
	fmt.Print(t.String())
	fmt.Printf("\nmarkdown report written to %s (%s total)\n", c.set.Out, time.Since(c.started).Round(100*time.Millisecond))
	if fails > 0 && c.set.Strict {
		return fail("LOAD_STRICT=1 and %d target(s) missed", fails)
	}
	return 0
}

// rolesSample starts imdsd with n dev roles, makes 10 credentials GETs,
// waits settle, reads its memory and stops it.
func (c *commonRun) rolesSample(ctx context.Context, n int, settle time.Duration) (memSample, error) {
	name := fmt.Sprintf("roles-%d", n)
	s := "listen: [127.0.0.1:0]\ntoken_mode: required\nadmin_socket: " + filepath.Join(c.tmp, name+".sock") + "\nroles:\n"
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("role-%02d", i+1))
		s += "  - name: " + names[i] + "\n    source: dev\n"
	}
	cfg, err := c.writeConfig(name, s)
	if err != nil {
		return memSample{}, err
	}
	r := c.runner("")
	srv, err := r.start(ctx, "imdsd-"+name, c.bin, "run", "--config", cfg, "--log-format", "json")
	if err != nil {
		r.stopAll()
		return memSample{}, err
	}
	sample, err := func() (memSample, error) {
		token, err := httpDo(ctx, http.MethodPut, srv.Base+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, http.StatusOK)
		if err != nil {
			return memSample{}, fmt.Errorf("get token: %w", err)
		}
		for i := range 10 {
			role := names[i%len(names)]
			if _, err := httpDo(ctx, http.MethodGet, srv.Base+"/latest/meta-data/iam/security-credentials/"+role,
				map[string]string{"X-aws-ec2-metadata-token": token}, http.StatusOK); err != nil {
				return memSample{}, fmt.Errorf("role %s: %w", role, err)
			}
		}
		// A fixed settle before measuring (GC and the rotators' first
		// timers): a measurement interval, not a wait for an event.
		timer := time.NewTimer(settle)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return memSample{}, ctx.Err()
		}
		return readMem(srv.pid())
	}()
	if !r.stopAll() && err == nil {
		err = errors.New("imdsd did not exit cleanly on SIGTERM")
	}
	return sample, err
}
