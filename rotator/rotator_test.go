package rotator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/imdsd/imdsd/rotator"
	"github.com/rs/zerolog"
)

// scripted is a Fetcher that fails with err while one is set, else mints
// fresh credentials of lifetime, and counts calls.
type scripted struct {
	mu       sync.Mutex
	err      error
	lifetime time.Duration
	now      func() time.Time
	calls    int
}

func (s *scripted) Fetch(ctx context.Context) (rotator.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return rotator.Credentials{}, s.err
	}
	n := s.now()
	return rotator.Credentials{Credentials: aws.Credentials{
		AccessKeyID: "ASIA" + n.Format("150405"), SecretAccessKey: "secret-" + n.String(),
		SessionToken: "token", CanExpire: true, Expires: n.Add(s.lifetime),
	}}, nil
}

func (s *scripted) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Fail makes every later Fetch fail with err; nil heals the source.
func (s *scripted) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

var accessDenied = &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized", Fault: smithy.FaultClient}

func TestRunKeepsServingThroughFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &scripted{lifetime: time.Hour, now: time.Now}
		var published atomic.Int32
		var logs bytes.Buffer
		r := rotator.New(src, rotator.Options{
			Source:  "test",
			Jitter:  func() float64 { return 0.5 },
			Publish: func(rotator.State) { published.Add(1) },
			Log:     zerolog.New(&logs),
		})
		if _, err := r.Current(t.Context()); !errors.Is(err, rotator.ErrNotReady) {
			t.Fatalf("Current() before Run = %v, want ErrNotReady", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v, want nil on cancel", err)
			}
		}()
		synctest.Wait()
		first, err := r.Current(ctx)
		if err != nil {
			t.Fatalf("Current() after first fetch = %v", err)
		}

		// Every refresh from now on is denied: the first set is served
		// until ExpiryMargin before its expiry, then ErrExpired naming
		// the cause.
		src.Fail(accessDenied)
		stop := first.Expires.Add(-rotator.ExpiryMargin)
		time.Sleep(time.Until(stop) - time.Second)
		got, err := r.Current(ctx)
		if err != nil || got.AccessKeyID != first.AccessKeyID {
			t.Fatalf("Current() 1s before expiry - ExpiryMargin = %v, %v, want the first set", got.AccessKeyID, err)
		}
		time.Sleep(time.Second)
		if _, err := r.Current(ctx); !errors.Is(err, rotator.ErrExpired) || !strings.Contains(err.Error(), "AccessDenied") {
			t.Fatalf("Current() at expiry - ExpiryMargin = %v, want ErrExpired with AccessDenied", err)
		}
		st := r.State()
		if st.Failures < 3 || rotator.ErrorCode(st.Err) != "AccessDenied" {
			t.Errorf("State() = %d failures, code %q", st.Failures, rotator.ErrorCode(st.Err))
		}
		// Permanent failures retry slowly, never more than once a
		// minute, even as the end nears.
		if c := src.Calls(); c > 30 {
			t.Errorf("%d fetches in the first hour, want slow retries", c)
		}

		// Recovery is immediate once the source works again: at most
		// one slow back-off (15 min) away.
		src.Fail(nil)
		time.Sleep(15 * time.Minute)
		if _, err := r.Current(ctx); err != nil {
			t.Fatalf("Current() after recovery = %v", err)
		}
		if strings.Contains(logs.String(), "secret-") {
			t.Error("a secret reached the log")
		}
		if n := strings.Count(logs.String(), "credentials refresh failed"); n == 0 || n > 40 {
			t.Errorf("%d failure log lines, want some but at most one a minute", n)
		}
	})
}

// A wall-clock jump (laptop sleep: monotonic timers stalled, wall clock
// moved on) triggers a refresh within one wall-clock check.
func TestRunRefreshesAfterClockJump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var offset atomic.Int64
		wall := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		src := &scripted{lifetime: time.Hour, now: wall}
		r := rotator.New(src, rotator.Options{Now: wall, Jitter: func() float64 { return 0 }, WallCheck: 30 * time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = r.Run(ctx) }()
		synctest.Wait()
		if src.Calls() != 1 {
			t.Fatalf("%d fetches at start, want 1", src.Calls())
		}
		offset.Store(int64(3 * time.Hour))
		time.Sleep(31 * time.Second)
		if src.Calls() != 2 {
			t.Fatalf("%d fetches 31s after a 3h jump, want 2", src.Calls())
		}
		if _, err := r.Current(ctx); err != nil {
			t.Errorf("Current() after the jump = %v, want fresh credentials", err)
		}
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want rotator.Class
		code string
	}{
		{nil, rotator.ClassOK, ""},
		{&smithy.GenericAPIError{Code: "Throttling"}, rotator.ClassTransient, "Throttling"},
		{&smithy.GenericAPIError{Code: "IDPCommunicationError"}, rotator.ClassTransient, "IDPCommunicationError"},
		// Known to the SDK's retryer (aws/retry), not listed by imdsd.
		{&smithy.GenericAPIError{Code: "ThrottledException"}, rotator.ClassTransient, "ThrottledException"},
		{&smithy.GenericAPIError{Code: "PriorRequestNotComplete"}, rotator.ClassTransient, "PriorRequestNotComplete"},
		{&smithy.GenericAPIError{Code: "RequestTimeoutException"}, rotator.ClassTransient, "RequestTimeoutException"},
		{&smithy.GenericAPIError{Code: "ServiceUnavailable"}, rotator.ClassTransient, "ServiceUnavailable"},
		{&smithy.GenericAPIError{Code: "InternalFailure", Fault: smithy.FaultServer}, rotator.ClassTransient, "InternalFailure"},
		{&smithy.GenericAPIError{Code: "AccessDenied"}, rotator.ClassPermanent, "AccessDenied"},
		{&smithy.GenericAPIError{Code: "InvalidIdentityToken"}, rotator.ClassPermanent, "InvalidIdentityToken"},
		{&smithy.GenericAPIError{Code: "ExpiredToken"}, rotator.ClassPermanent, "ExpiredToken"},
		{&smithy.GenericAPIError{Code: "ValidationError"}, rotator.ClassPermanent, "ValidationError"},
		{context.DeadlineExceeded, rotator.ClassTransient, "ServiceUnavailable"},
		{fmt.Errorf("deserialization failed: read tcp: %w", net.ErrClosed), rotator.ClassTransient, "ServiceUnavailable"},
		{&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 200}}, Err: errors.New("deserialization failed")}, rotator.ClassTransient, "ServiceUnavailable"},
		{&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 403}}, Err: errors.New("forbidden")}, rotator.ClassPermanent, "CredentialSourceError"},
		{errors.New("bad config"), rotator.ClassPermanent, "CredentialSourceError"},
	}
	for _, tc := range tests {
		if got := rotator.Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if tc.err != nil {
			if got := rotator.ErrorCode(tc.err); got != tc.code {
				t.Errorf("ErrorCode(%v) = %q, want %q", tc.err, got, tc.code)
			}
		}
	}
}
