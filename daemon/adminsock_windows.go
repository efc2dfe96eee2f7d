package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// On Windows the admin API listens on loopback and demands a random token,
// which it writes to a file next to the config (in %ProgramData%\imdsd,
// writable by administrators only). The path names the token file.

func defaultAdminSocket(func(string) string) string {
	return filepath.Join(filepath.Dir(defaultConfigPath()), "admin.token")
}

type tokenListener struct {
	net.Listener
	token string
	path  string
	once  sync.Once
}

// Close closes the listener and removes the token file.
func (l *tokenListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
}

func listenAdmin(path string) (net.Listener, error) {
	if b, err := os.ReadFile(path); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if conn, err := net.DialTimeout("tcp", f[0], time.Second); err == nil {
				conn.Close()
				return nil, fmt.Errorf("another imdsd is serving its admin API there; stop it, or %s", adminFlagHint)
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.WriteFile(path, []byte(ln.Addr().String()+"\n"+token+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return &tokenListener{Listener: ln, token: token, path: path}, nil
}

func dialAdmin(path string) (func(context.Context) (net.Conn, error), string, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return nil, "", withCode(exitPermission, fmt.Errorf("reach imdsd at %s: permission denied; run as an administrator", path))
	case err != nil:
		return nil, "", withCode(exitUnreachable, fmt.Errorf("no admin token at %s: is imdsd running? (%w)", path, err))
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return nil, "", withCode(exitUnreachable, fmt.Errorf("read admin token file %s: malformed", path))
	}
	adminToken = f[1]
	var d net.Dialer
	return func(ctx context.Context) (net.Conn, error) {
		conn, err := d.DialContext(ctx, "tcp", f[0])
		if err != nil {
			return nil, withCode(exitUnreachable, fmt.Errorf("reach imdsd at %s: %w; is imdsd running?", path, err))
		}
		return conn, nil
	}, "http://imdsd", nil
}

// adminToken is sent by this process's admin client.
var adminToken string

func init() { adminAuth = checkAdminToken }

func checkAdminToken(ln net.Listener, next http.Handler) http.Handler {
	tl, ok := ln.(*tokenListener)
	if !ok {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+tl.token {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
