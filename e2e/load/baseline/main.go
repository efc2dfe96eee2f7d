// Command baseline is the reference server of imdsd's load script: the
// fastest this machine's Go net/http stack answers with a body of the same
// size as imdsd's. It does no routing and no checks: every PUT gets a fixed
// body of -put-size bytes (the size of an imdsd token), every other request a
// fixed body of -get-size bytes (the size of imdsd's credentials document).
//
// It prints one line, "listening on http://ADDR/", once bound, and exits 0 on
// SIGTERM or SIGINT. Standard library only.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve (loopback)")
	getSize := flag.Int("get-size", 1200, "body size in bytes for GET and other non-PUT requests")
	putSize := flag.Int("put-size", 60, "body size in bytes for PUT requests")
	flag.Parse()
	if err := run(*listen, *getSize, *putSize); err != nil {
		fmt.Fprintf(os.Stderr, "baseline: %v\n", err)
		os.Exit(1)
	}
}

func run(listen string, getSize, putSize int) error {
	if getSize < 0 || putSize < 0 {
		return errors.New("sizes must be ≥ 0")
	}
	getBody := bytes.Repeat([]byte("x"), getSize)
	putBody := bytes.Repeat([]byte("t"), putSize)
	getLen, putLen := strconv.Itoa(getSize), strconv.Itoa(putSize)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, n := getBody, getLen
		if r.Method == http.MethodPut {
			body, n = putBody, putLen
		}
		// Explicit headers, as imdsd sends them, so net/http does not sniff.
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Header()["Content-Length"] = []string{n}
		_, _ = w.Write(body)
	})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening on http://%s/\n", ln.Addr())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
