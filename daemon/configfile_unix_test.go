//go:build unix

package daemon

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// --config naming a FIFO or a device is refused at once. A FIFO used to
// block imdsd in open(2) until something wrote to it, deaf to SIGTERM.
func TestConfigNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{fifo, "config: cannot read " + fifo + ": it is a named pipe (FIFO); give the path of a YAML file (--config or IMDSD_CONFIG)"},
		{"/dev/null", "config: cannot read /dev/null: it is a device; give the path of a YAML file (--config or IMDSD_CONFIG)"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, _, err := loadConfigArgs(nil, func(k string) string {
					if k == "IMDSD_CONFIG" {
						return tc.path
					}
					return ""
				})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || err.Error() != tc.want {
					t.Errorf("loadConfig() = %v, want %q", err, tc.want)
				}
			case <-time.After(30 * time.Second): // a failure bound, not a measurement
				t.Fatal("loadConfig() still blocked after 30s: it opened the FIFO")
			}
		})
	}
}
