package rotator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Input obtains a fresh secret input (a web identity token, a SAML
// assertion, an MFA code) each time it is called. The STS sources call it on
// every refresh, because these inputs expire or are single-use, and the
// daemon can never prompt for them. Implementations are safe for concurrent
// use and honour ctx. A returned error never contains the secret.
type Input interface {
	Get(ctx context.Context) (string, error)
}

const (
	// maxInputSize bounds what an input file or command may produce: web
	// identity tokens and SAML assertions are kilobytes, so anything near
	// this is a mistake (the wrong file, a runaway command).
	maxInputSize = 1 << 20
	// stderrTail is how much of a failing command's stderr goes into the
	// error: the end is where the message to the user is ("touch your key").
	stderrTail = 512
	// waitDelay bounds how long Wait keeps reading pipes after the command
	// exited or was killed (a background child may hold them open).
	waitDelay = time.Second
)

// FileInput returns an Input that reads the file at path on every call:
// Kubernetes (projected service account tokens) and CI agents rotate the
// token by rewriting the file, so it is never cached. Surrounding whitespace
// (typically a trailing newline) is trimmed.
//
// Errors: "read input file PATH: no such file or directory" (errors.Is
// fs.ErrNotExist holds), "input file PATH is empty", "input file PATH is
// larger than 1048576 bytes". The content never appears in an error.
func FileInput(path string) Input {
	return fileInput(path)
}

type fileInput string

func (path fileInput) Get(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("read input file %s: %w", string(path), err)
	}
	b, err := readLimited(string(path), maxInputSize)
	if err != nil {
		// The *PathError would repeat the path ("open /x: …"): keep
		// its cause, which still satisfies errors.Is(err, fs.ErrNotExist).
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("read input file %s: %w", string(path), err)
	}
	if len(b) > maxInputSize {
		return "", fmt.Errorf("input file %s is larger than %d bytes", string(path), maxInputSize)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("input file %s is empty", string(path))
	}
	return s, nil
}

// readLimited reads at most limit+1 bytes of the file, so that the caller
// can tell an oversized file without reading all of it.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// CommandOptions configure CommandInput; zero values take the defaults in
// brackets.
type CommandOptions struct {
	Timeout   time.Duration // [30s] per call; the whole process group is killed after it
	Env       []string      // "KEY=value" added to the daemon's own environment
	Dir       string        // working directory [the daemon's]
	MaxOutput int           // bytes of stdout accepted [1 MiB]
}

// CommandInput returns an Input that runs command through the platform shell
// (/bin/sh -c on Unix, cmd /C on Windows) on every call and returns its
// stdout, trimmed of surrounding whitespace. stdin is the null device (the
// daemon can never prompt); stderr is kept for errors, because that is where
// a helper talks to the user ("touch your YubiKey").
//
// The command runs in its own process group on Unix; on timeout, on ctx
// cancellation or when stdout exceeds MaxOutput the whole group is killed,
// so children the shell started die too.
//
// Errors (never containing stdout, nor the command line, which may hold a
// TOTP seed or a password):
//
//	run input command: exit status 3; stderr: touch key
//	run input command: timed out after 30s: context deadline exceeded[; stderr: …]
//	run input command: context canceled
//	run input command: stdout exceeds 1048576 bytes
//	run input command: no output on stdout[; stderr: …]
func CommandInput(command string, o CommandOptions) Input {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = maxInputSize
	}
	o.Env = append([]string(nil), o.Env...)
	return &commandInput{command: command, o: o}
}

// commandEnv is the environment of an input command: the daemon's without
// imdsd's own settings (IMDSD_*, among them secrets such as
// IMDSD_SECRET_ACCESS_KEY and the commands themselves), plus extra. A TOTP
// tool or an identity provider's helper has no use for imdsd's keys, and
// must not be able to read them.
func commandEnv(environ, extra []string) []string {
	out := make([]string, 0, len(environ)+len(extra))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "IMDSD_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

type commandInput struct {
	command string
	o       CommandOptions
}

func (c *commandInput) Get(ctx context.Context) (string, error) {
	if strings.TrimSpace(c.command) == "" {
		return "", errors.New("run input command: command is empty")
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("run input command: %w", err)
	}
	runCtx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()

	cmd := shellCommand(runCtx, c.command)
	cmd.Env = commandEnv(os.Environ(), c.o.Env)
	cmd.Dir = c.o.Dir
	cmd.Stdin = nil // the null device
	stdout := &limitedBuffer{max: c.o.MaxOutput, overflow: cancel}
	stderr := &tailBuffer{max: stderrTail}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = waitDelay

	err := cmd.Run()
	out, overflowed := stdout.result()
	switch {
	case overflowed:
		return "", fmt.Errorf("run input command: stdout exceeds %d bytes", c.o.MaxOutput)
	case err == nil:
	case errors.Is(err, exec.ErrWaitDelay) && runCtx.Err() == nil:
		// The shell exited 0 but something it started in the
		// background kept stdout open: what it printed is the answer.
	case ctx.Err() != nil:
		return "", fmt.Errorf("run input command: %w%s", ctx.Err(), stderr.suffix())
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return "", fmt.Errorf("run input command: timed out after %s: %w%s", c.o.Timeout, context.DeadlineExceeded, stderr.suffix())
	default:
		return "", fmt.Errorf("run input command: %w%s", err, stderr.suffix())
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return "", fmt.Errorf("run input command: no output on stdout%s", stderr.suffix())
	}
	return s, nil
}

// limitedBuffer collects up to max bytes; past that it drops the data,
// remembers the overflow and calls overflow once (to kill the command
// rather than let it run on until the timeout).
type limitedBuffer struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	max      int
	over     bool
	overflow func()
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over {
		return len(p), nil
	}
	if b.buf.Len()+len(p) > b.max {
		b.over = true
		b.buf.Reset() // do not keep a secret we will not use
		b.overflow()
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) result() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Bytes(), b.over
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) >= b.max {
		p = p[len(p)-b.max:]
		b.buf = b.buf[:0]
	}
	if drop := len(b.buf) + len(p) - b.max; drop > 0 {
		b.buf = append(b.buf[:0], b.buf[drop:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// suffix renders the kept stderr for an error message: "" when there is
// none, else "; stderr: …" on one line.
func (b *tailBuffer) suffix() string {
	b.mu.Lock()
	tail := b.buf
	// The cut may have split a character: drop its orphaned bytes.
	for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	s := strings.ToValidUTF8(string(tail), "\uFFFD")
	b.mu.Unlock()
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}
