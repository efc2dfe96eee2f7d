package rotator_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsd/imdsd/rotator"
)

// inputSecret stands for a token or MFA code; no error may contain it.
const inputSecret = "SECRET-d3adb33f"

func TestFileInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr string // exact error text; "" means success
	}{
		{name: "trailing newline trimmed", path: write("nl", inputSecret+"\n"), want: inputSecret},
		{name: "surrounding whitespace trimmed", path: write("ws", " \t"+inputSecret+"\r\n\n"), want: inputSecret},
		{name: "missing", path: filepath.Join(dir, "missing"), wantErr: "read input file " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{name: "empty", path: write("empty", ""), wantErr: "input file " + filepath.Join(dir, "empty") + " is empty"},
		{name: "only whitespace", path: write("blank", " \n\n"), wantErr: "input file " + filepath.Join(dir, "blank") + " is empty"},
		{name: "too large", path: write("large", strings.Repeat(inputSecret, 1<<20/len(inputSecret)+1)), wantErr: "input file " + filepath.Join(dir, "large") + " is larger than 1048576 bytes"},
		{name: "directory", path: dir, wantErr: "read input file " + dir + ": is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tc.wantErr != "" {
				t.Skip("OS error texts differ on Windows")
			}
			got, err := rotator.FileInput(tc.path).Get(t.Context())
			if tc.wantErr == "" {
				if got != tc.want || err != nil {
					t.Errorf("Get() = %q, %v, want %q, nil", got, err, tc.want)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr || got != "" {
				t.Fatalf("Get() = %q, %v, want \"\", %q", got, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), inputSecret) {
				t.Errorf("Get() error %q contains the file's content", err)
			}
		})
	}
}

func TestFileInputMissingIsNotExist(t *testing.T) {
	_, err := rotator.FileInput(filepath.Join(t.TempDir(), "nope")).Get(t.Context())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get() error = %v, want errors.Is fs.ErrNotExist", err)
	}
}

func TestFileInputRereads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	in := rotator.FileInput(p)
	for _, want := range []string{"token-one", "token-two", "token-three"} {
		// Write a new file and rename it over the old one, as the
		// kubelet and CI agents do.
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(want+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		if got, err := in.Get(t.Context()); got != want || err != nil {
			t.Errorf("Get() = %q, %v, want %q, nil", got, err, want)
		}
	}
}

func TestFileInputCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(inputSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := rotator.FileInput(p).Get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Get() = %q, %v, want context.Canceled", got, err)
	}
}

func skipWithoutSh(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the command tests use /bin/sh")
	}
}

func TestCommandInput(t *testing.T) {
	skipWithoutSh(t)
	dir := t.TempDir()
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		command string
		o       rotator.CommandOptions
		want    string
		wantErr string // exact error text; "" means success
	}{
		{name: "stdout trimmed", command: `printf '\n  %s \n\n' ` + inputSecret, want: inputSecret},
		{name: "stderr ignored on success", command: `echo 123456; echo 'touch key' >&2`, want: "123456"},
		{name: "extra env and own env", command: `printf '%s %s' "$IMDSD_TEST_VAR" "${PATH:+has-path}"`,
			o: rotator.CommandOptions{Env: []string{"IMDSD_TEST_VAR=from-env"}}, want: "from-env has-path"},
		{name: "dir", command: `pwd -P`, o: rotator.CommandOptions{Dir: dir}, want: realDir},
		{name: "stdin is empty", command: `cat; echo done`, want: "done"},
		{name: "exit status and stderr", command: `printf ` + inputSecret + `; echo 'touch key' >&2; exit 3`,
			wantErr: "run input command: exit status 3; stderr: touch key"},
		{name: "exit status without stderr", command: `echo ` + inputSecret + `; exit 1`,
			wantErr: "run input command: exit status 1"},
		{name: "stderr tail only", command: `printf 'x%.0s' $(seq 1 2000) >&2; printf ' the end' >&2; exit 2`,
			wantErr: "run input command: exit status 2; stderr: " + strings.Repeat("x", 512-len(" the end")) + " the end"},
		{name: "multi-line stderr on one line", command: `printf 'line one\nline two\n' >&2; exit 4`,
			wantErr: "run input command: exit status 4; stderr: line one line two"},
		{name: "empty output", command: `true`, wantErr: "run input command: no output on stdout"},
		{name: "blank output with stderr", command: `echo '   '; echo 'no code configured' >&2`,
			wantErr: "run input command: no output on stdout; stderr: no code configured"},
		{name: "output at the limit", command: `printf 0123456789abcdef`, o: rotator.CommandOptions{MaxOutput: 16}, want: "0123456789abcdef"},
		{name: "output over the limit", command: `printf 0123456789abcdef` + inputSecret, o: rotator.CommandOptions{MaxOutput: 16},
			wantErr: "run input command: stdout exceeds 16 bytes"},
		{name: "empty command", command: " ", wantErr: "run input command: command is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := rotator.CommandInput(tc.command, tc.o).Get(t.Context())
			if tc.wantErr == "" {
				if got != tc.want || err != nil {
					t.Errorf("Get() = %q, %v, want %q, nil", got, err, tc.want)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr || got != "" {
				t.Fatalf("Get() = %q, %v, want \"\", %q", got, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), inputSecret) {
				t.Errorf("Get() error %q contains stdout", err)
			}
		})
	}
}

func TestCommandInputBackgroundChildHoldsStdout(t *testing.T) {
	skipWithoutSh(t)
	// The shell exits 0 but leaves a child holding stdout open: Get
	// returns what was printed after a short grace period instead of
	// waiting for the child (or the timeout).
	start := time.Now()
	got, err := rotator.CommandInput(`echo 123456; sleep 3 &`, rotator.CommandOptions{Timeout: time.Minute}).Get(t.Context())
	if got != "123456" || err != nil {
		t.Errorf("Get() = %q, %v, want %q, nil", got, err, "123456")
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("Get() took %v, want about 1s", d)
	}
}

func TestCommandInputEndlessOutput(t *testing.T) {
	skipWithoutSh(t)
	// Overflowing MaxOutput kills the command at once instead of letting
	// it run until the timeout.
	start := time.Now()
	got, err := rotator.CommandInput("yes "+inputSecret, rotator.CommandOptions{MaxOutput: 1024, Timeout: time.Minute}).Get(t.Context())
	const want = "run input command: stdout exceeds 1024 bytes"
	if err == nil || err.Error() != want {
		t.Fatalf("Get() = %q, %v, want \"\", %q", got, err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Get() took %v, want the command killed on overflow", d)
	}
}

// TestCommandInputTimeoutKillsGroup checks that a timeout kills what the
// shell started too, not only the shell: a `sleep` run directly and a
// grandchild in the background of a nested shell.
func TestCommandInputTimeoutKillsGroup(t *testing.T) {
	skipWithoutSh(t)
	pids := t.TempDir()
	cmd := `echo $$ > "$PIDS/outer.tmp" && mv "$PIDS/outer.tmp" "$PIDS/outer"
sh -c 'sleep 30 & echo $! > "$PIDS/child.tmp" && mv "$PIDS/child.tmp" "$PIDS/child"; wait' &
echo 'touch your key' >&2
sleep 30`
	in := rotator.CommandInput(cmd, rotator.CommandOptions{Timeout: 200 * time.Millisecond, Env: []string{"PIDS=" + pids}})

	start := time.Now()
	got, err := in.Get(t.Context())
	elapsed := time.Since(start)
	const want = "run input command: timed out after 200ms: context deadline exceeded; stderr: touch your key"
	if err == nil || err.Error() != want {
		t.Fatalf("Get() = %q, %v, want \"\", %q", got, err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get() error = %v, want errors.Is context.DeadlineExceeded", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Get() returned after %v, want within 2s of the 200ms timeout", elapsed)
	}
	for _, name := range []string{"outer", "child"} {
		pid := readPIDFile(t, filepath.Join(pids, name))
		waitProcessGone(t, name, pid)
	}
}

func TestCommandInputContextCanceled(t *testing.T) {
	skipWithoutSh(t)
	pids := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The command signals that it runs by creating a file; the test
	// cancels as soon as it sees it.
	cmd := `echo $$ > "$PIDS/outer.tmp" && mv "$PIDS/outer.tmp" "$PIDS/outer"; sleep 30`
	in := rotator.CommandInput(cmd, rotator.CommandOptions{Timeout: time.Minute, Env: []string{"PIDS=" + pids}})
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(pids, "outer")); err == nil {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	got, err := in.Get(ctx)
	const want = "run input command: context canceled"
	if err == nil || err.Error() != want || !errors.Is(err, context.Canceled) {
		t.Fatalf("Get() = %q, %v, want \"\", %q", got, err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Get() returned after %v, want soon after cancel", d)
	}
	waitProcessGone(t, "outer", readPIDFile(t, filepath.Join(pids, "outer")))
}

func TestCommandInputContextDeadline(t *testing.T) {
	skipWithoutSh(t)
	// The caller's deadline is not the command's own timeout: the error
	// must not claim "timed out after 1m0s".
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	got, err := rotator.CommandInput("sleep 30", rotator.CommandOptions{Timeout: time.Minute}).Get(ctx)
	const want = "run input command: context deadline exceeded"
	if err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get() = %q, %v, want \"\", %q", got, err, want)
	}
}

func TestCommandInputAlreadyCanceled(t *testing.T) {
	skipWithoutSh(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	marker := filepath.Join(t.TempDir(), "ran")
	got, err := rotator.CommandInput("touch "+marker+"; echo x", rotator.CommandOptions{}).Get(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Get() = %q, %v, want context.Canceled", got, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command ran although ctx was already canceled")
	}
}

func TestCommandInputConcurrent(t *testing.T) {
	skipWithoutSh(t)
	in := rotator.CommandInput(`printf '%s' "$IMDSD_TEST_VAR"`, rotator.CommandOptions{Env: []string{"IMDSD_TEST_VAR=654321"}})
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			got, err := in.Get(t.Context())
			if err == nil && got != "654321" {
				err = errors.New("got " + strconv.Quote(got))
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("Get() = %v, want %q, nil", err, "654321")
		}
	}
}

func readPIDFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the command did not record its pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitProcessGone waits until pid no longer runs. A killed process whose parent
// died too lingers as a zombie until init reaps it, which kill(pid, 0) still
// reports as existing, so on Linux a zombie counts as gone.
func waitProcessGone(t *testing.T, name string, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if processGone(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s process %d still runs after the command was stopped", name, pid)
			// Do not leave it behind.
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func processGone(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	if err := p.Signal(syscall.Signal(0)); err != nil {
		// os.ErrProcessDone, or ESRCH from kill(2).
		return errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH)
	}
	if runtime.GOOS == "linux" {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return errors.Is(err, fs.ErrNotExist)
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
			return stat[i+2] == 'Z'
		}
	}
	return false
}
