package ststest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
)

// errDropped is what an in-process client sees for a dropped connection.
var errDropped = errors.New("ststest: connection closed by server")

// Transport returns an [http.RoundTripper] that hands each request to the
// server's handler in the calling goroutine, without any network
// connection. Use it as the transport of sts.Options.HTTPClient (with any
// BaseEndpoint, e.g. "http://sts.test") where a socket is unwelcome, such
// as inside a testing/synctest bubble, where Delay faults and the server
// clock then follow the bubble's fake time. It works for a Server made by
// [New] or [NewServer]. A dropped connection surfaces as an error wrapping
// io.ErrUnexpectedEOF; a client that gives up during a Delay gets its
// context's error.
func (s *Server) Transport() http.RoundTripper { return inProcess{s} }

type inProcess struct{ s *Server }

// RoundTrip implements http.RoundTripper.
func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
	}
	// Make the request look like one a server received.
	in := req.Clone(req.Context())
	in.Body = io.NopCloser(bytes.NewReader(body))
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if in.ContentLength > 0 && in.Header.Get("Content-Length") == "" {
		in.Header.Set("Content-Length", fmt.Sprint(in.ContentLength))
	}

	w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder()}
	t.s.ServeHTTP(w, in)
	if w.hijacked {
		return nil, fmt.Errorf("%w: %w", errDropped, io.ErrUnexpectedEOF)
	}
	if err := req.Context().Err(); err != nil && !w.wrote() {
		return nil, err
	}
	resp := w.Result()
	resp.Request = req
	return resp, nil
}

// hijackRecorder is a ResponseRecorder that can be "hijacked", so that a
// Drop fault can be told apart from a response.
type hijackRecorder struct {
	*httptest.ResponseRecorder
	hijacked bool
}

func (w *hijackRecorder) wrote() bool { return w.Code != http.StatusOK || w.Body.Len() > 0 }

// Hijack implements http.Hijacker with one end of a pipe whose other end is
// closed at once.
func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	a, b := net.Pipe()
	_ = b.Close()
	return a, bufio.NewReadWriter(bufio.NewReader(a), bufio.NewWriter(a)), nil
}
