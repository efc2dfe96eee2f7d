package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsd/imdsd/rotator"
)

// SIGTERM (ctx cancelled) drains: every request the server accepted gets
// its whole answer, serve returns nil (exit 0), and afterwards nothing
// listens.
func TestShutdownDrains(t *testing.T) {
	dir := tempDir(t, "imdsd-drain-")
	c := defaultConfig()
	c.Listen = []string{"127.0.0.1:0"} // the port the kernel picks
	c.AdminSocket = filepath.Join(dir, "admin.sock")
	c = c.withDefaults(noEnv)
	d, err := newDaemon(c, rotator.NewDev(rotator.DevOptions{}), newLogger(io.Discard, "json", "info"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	endpoint := make(chan string, 1)
	stdout := writerFunc(func(p []byte) (int, error) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(string(p)), "export AWS_EC2_METADATA_SERVICE_ENDPOINT="); ok {
			endpoint <- strings.TrimSuffix(v, "/")
		}
		return len(p), nil
	})
	go func() { done <- d.serve(ctx, stdout, nil, nil) }()
	var base string
	select {
	case base = <-endpoint:
	case err := <-done:
		t.Fatalf("serve() = %v before the first fetch", err)
	}
	token := putToken(t, base)

	// Once a response starts, it must arrive whole; a request that gets no
	// response at all (refused, or sent on a keep-alive connection the
	// server was closing, which any HTTP server may do) was never taken.
	var ok, untaken atomic.Int64
	var stopping atomic.Bool
	answered := make(chan struct{}) // a receive waits for one more complete answer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				req, _ := http.NewRequest("GET", base+"/latest/meta-data/iam/security-credentials/imdsd-dev", nil)
				req.Header.Set("X-aws-ec2-metadata-token", token)
				resp, err := client.Do(req)
				if err != nil {
					if !stopping.Load() {
						t.Errorf("before the shutdown: %v", err)
					}
					untaken.Add(1)
					return
				}
				var doc map[string]string
				err = json.NewDecoder(resp.Body).Decode(&doc)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || doc["Code"] != "Success" {
					t.Errorf("answer cut or wrong during the shutdown: status %d, %v", resp.StatusCode, err)
					return
				}
				ok.Add(1)
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		})
	}
	// Shut down once requests are flowing on every connection.
	for range 40 {
		within(t, answered, "an answer before the shutdown")
	}
	stopping.Store(true)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve() = %v, want nil", err)
	}
	wg.Wait()
	t.Logf("%d complete answers, %d requests not taken after the shutdown began", ok.Load(), untaken.Load())
	if ok.Load() == 0 {
		t.Error("no request completed: the test proves nothing")
	}
}
