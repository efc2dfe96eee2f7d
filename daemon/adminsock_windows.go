package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
}

func listenAdmin(path string) (net.Listener, error) {
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
	return &tokenListener{Listener: ln, token: token}, nil
}

func cleanupAdmin(path string) { _ = os.Remove(path) }

func dialAdmin(path string) (func(context.Context) (net.Conn, error), string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("no admin token at %s: is imdsd running? (%w)", path, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return nil, "", fmt.Errorf("admin token file %s is malformed", path)
	}
	adminToken = f[1]
	var d net.Dialer
	return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", f[0]) }, "http://imdsd", nil
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
