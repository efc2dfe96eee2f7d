package imds

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// Bounds on every connection, so slow or oversized requests cannot pile up.
// IMDS requests are a request line and a few short headers; SDKs give up on
// IMDS after a second or so (SPEC.md R1.4).
const (
	MaxHeaderBytes    = 8 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 90 * time.Second
)

// NewServer returns an http.Server for h with the bounds above. Its errors
// go to log.
func NewServer(h http.Handler, log zerolog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          newStdLogger(log),
	}
}
