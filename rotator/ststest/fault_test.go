package ststest_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/imdsd/imdsd/rotator/ststest"
)

func assumeRole(ctx context.Context, c *sts.Client) error {
	_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1")})
	return err
}

func TestFail(t *testing.T) {
	tests := []struct {
		code   string
		status int // 0: the default for code
		want   int
	}{
		{"AccessDenied", 0, 403},
		{"ExpiredTokenException", 0, 400},
		{"IDPCommunicationError", 0, 400},
		{"InvalidIdentityToken", 0, 400},
		{"Throttling", 0, 400},
		{"RegionDisabledException", 0, 403},
		{"InternalFailure", 0, 500},
		{"ServiceUnavailable", 0, 503},
		{"MalformedPolicyDocument", 0, 400},
		{"SomethingNew", 0, 400},
		{"Throttling", 429, 429},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			ctx := context.Background()
			srv := newServer(t, nil)
			client := baseClient(srv)
			srv.Fail("AssumeRole", tc.code, tc.status, 1)
			err := assumeRole(ctx, client)
			code, msg, status := apiError(t, err)
			if code != tc.code || status != tc.want || msg == "" {
				t.Errorf("ErrorCode() = %q, HTTPStatusCode() = %d, ErrorMessage() = %q; want %q, %d, non-empty", code, status, msg, tc.code, tc.want)
			}
			if err := assumeRole(ctx, client); err != nil {
				t.Errorf("second AssumeRole() error = %v, want nil (n = 1)", err)
			}
			if got, want := srv.Stats("AssumeRole"), (ststest.Stats{Calls: 2, Failures: 1}); got != want {
				t.Errorf("Stats() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestFailModeledErrorTypes(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	client := baseClient(srv)

	srv.Fail("", "ExpiredTokenException", 0, 1)
	var expired *types.ExpiredTokenException
	if err := assumeRole(ctx, client); !errors.As(err, &expired) {
		t.Errorf("AssumeRole() error = %v, want *types.ExpiredTokenException", err)
	}
	srv.Inject(ststest.Fault{Code: "RegionDisabledException", Message: "custom message", Count: 1})
	var disabled *types.RegionDisabledException
	if err := assumeRole(ctx, client); !errors.As(err, &disabled) || disabled.ErrorMessage() != "custom message" {
		t.Errorf("AssumeRole() error = %v, want *types.RegionDisabledException with message %q", err, "custom message")
	}
}

func TestFailScope(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	client := baseClient(srv)

	srv.Fail("GetSessionToken", "Throttling", 0, -1)
	if err := assumeRole(ctx, client); err != nil {
		t.Errorf("AssumeRole() error = %v, want nil (fault is for GetSessionToken)", err)
	}
	for range 3 {
		_, err := client.GetSessionToken(ctx, &sts.GetSessionTokenInput{})
		wantAPIError(t, err, "Throttling", 400)
	}
	srv.Fail("", "AccessDenied", 0, 0) // n == 0 injects nothing
	srv.ClearFaults()
	if _, err := client.GetSessionToken(ctx, &sts.GetSessionTokenInput{}); err != nil {
		t.Errorf("GetSessionToken() after ClearFaults error = %v", err)
	}
	if got, want := srv.Stats(""), (ststest.Stats{Calls: 5, Failures: 3}); got != want {
		t.Errorf("Stats(\"\") = %+v, want %+v", got, want)
	}
}

func TestRawHTTPError(t *testing.T) {
	tests := []struct {
		name  string
		fault ststest.Fault
	}{
		{"load balancer HTML", ststest.Fault{Status: 502, Count: 1}},
		{"plain text", ststest.Fault{Status: 504, Body: "upstream timed out", Count: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, nil)
			srv.Inject(tc.fault)
			err := assumeRole(context.Background(), baseClient(srv))
			var re *awshttp.ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("AssumeRole() error = %v, want an *awshttp.ResponseError", err)
			}
			if got := re.HTTPStatusCode(); got != tc.fault.Status {
				t.Errorf("HTTPStatusCode() = %d, want %d", got, tc.fault.Status)
			}
			if got := srv.Requests()[0].Status; got != tc.fault.Status {
				t.Errorf("Requests()[0].Status = %d, want %d", got, tc.fault.Status)
			}
		})
	}
}

// TestRetries shows that the SDK's own retryer retries what it should and
// the server counts every attempt.
func TestRetries(t *testing.T) {
	tests := []struct {
		name    string
		fault   ststest.Fault
		call    func(*ststest.Server) error
		wantErr bool
		want    ststest.Stats
	}{
		{"503 then success", ststest.Fault{Code: "ServiceUnavailable", Count: 2}, signedCall, false, ststest.Stats{Calls: 3, Failures: 2}},
		{"throttling then success", ststest.Fault{Code: "Throttling", Count: 1}, signedCall, false, ststest.Stats{Calls: 2, Failures: 1}},
		{"raw 502 then success", ststest.Fault{Status: 502, Count: 1}, signedCall, false, ststest.Stats{Calls: 2, Failures: 1}},
		{"dropped connection then success", ststest.Fault{Drop: true, Count: 1}, signedCall, false, ststest.Stats{Calls: 2, Failures: 1}},
		{"503 exhausts attempts", ststest.Fault{Code: "ServiceUnavailable"}, signedCall, true, ststest.Stats{Calls: 3, Failures: 3}},
		{"AccessDenied not retried", ststest.Fault{Code: "AccessDenied"}, signedCall, true, ststest.Stats{Calls: 1, Failures: 1}},
		{"IDPCommunicationError retried by sts", ststest.Fault{Code: "IDPCommunicationError", Count: 1}, webIdentityCall, false, ststest.Stats{Calls: 2, Failures: 1}},
		{"InvalidIdentityToken not retried", ststest.Fault{Code: "InvalidIdentityToken"}, webIdentityCall, true, ststest.Stats{Calls: 1, Failures: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, nil)
			srv.Inject(tc.fault)
			err := tc.call(srv)
			if (err != nil) != tc.wantErr {
				t.Errorf("call error = %v, want error: %v", err, tc.wantErr)
			}
			if got := srv.Stats(""); got != tc.want {
				t.Errorf("Stats() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func signedCall(srv *ststest.Server) error {
	c := newClient(srv, credentials.NewStaticCredentialsProvider(baseAKID, baseSecret, ""), 3)
	return assumeRole(context.Background(), c)
}

func webIdentityCall(srv *ststest.Server) error {
	c := newClient(srv, aws.AnonymousCredentials{}, 3)
	_, err := c.AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"),
		WebIdentityToken: aws.String("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2kiLCJzdWIiOiJ1In0.c2ln"),
	})
	return err
}

// wantTransportError checks that err is a failure to get any HTTP response,
// not an API error.
func wantTransportError(t *testing.T, err error) {
	t.Helper()
	var send *smithyhttp.RequestSendError
	var ae smithy.APIError
	if !errors.As(err, &send) || errors.As(err, &ae) {
		t.Errorf("error = %v, want a *smithyhttp.RequestSendError and no smithy.APIError", err)
	}
}

func TestDroppedConnection(t *testing.T) {
	srv := newServer(t, nil)
	srv.Inject(ststest.Fault{Action: "AssumeRole", Drop: true})
	err := assumeRole(context.Background(), baseClient(srv))
	wantTransportError(t, err)
	if got := srv.Requests()[0].Status; got != 0 {
		t.Errorf("Requests()[0].Status = %d, want 0 (no response)", got)
	}
}

func TestLatency(t *testing.T) {
	t.Run("delay then answer", func(t *testing.T) {
		srv := newServer(t, nil)
		srv.Inject(ststest.Fault{Delay: 50 * time.Millisecond, Count: 1})
		start := time.Now()
		if err := assumeRole(context.Background(), baseClient(srv)); err != nil {
			t.Fatalf("AssumeRole() error = %v", err)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("AssumeRole() took %v, want ≥ 50ms", d)
		}
	})
	t.Run("client gives up", func(t *testing.T) {
		srv := newServer(t, nil)
		srv.Inject(ststest.Fault{Delay: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := assumeRole(ctx, baseClient(srv)); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("AssumeRole() error = %v, want context.DeadlineExceeded", err)
		}
		srv.Close() // waits for the handler, which must notice the client left
		reqs := srv.Requests()
		if len(reqs) != 1 || reqs[0].Status != 0 {
			t.Errorf("Requests() = %+v, want one request without a response", reqs)
		}
		if got := srv.Issued(); len(got) != 0 {
			t.Errorf("Issued() = %v, want none", got)
		}
	})
	t.Run("close ends pending delays", func(t *testing.T) {
		srv := newServer(t, nil)
		srv.Inject(ststest.Fault{Delay: time.Hour})
		errc := make(chan error, 1)
		go func() { errc <- assumeRole(context.Background(), baseClient(srv)) }()
		for srv.Stats("").Calls == 0 { // counted on arrival, before the delay
			select {
			case err := <-errc:
				t.Fatalf("AssumeRole() returned before the server saw it: %v", err)
			default:
				runtime.Gosched()
			}
		}
		srv.Close()
		if err := <-errc; err == nil {
			t.Error("AssumeRole() error = nil after Close, want an error")
		}
	})
}

func TestOutage(t *testing.T) {
	tests := []struct {
		name   string
		inject func(srv *ststest.Server, from, to time.Time)
		check  func(t *testing.T, err error)
	}{
		{
			name:   "503",
			inject: (*ststest.Server).Outage,
			check:  func(t *testing.T, err error) { wantAPIError(t, err, "ServiceUnavailable", 503) },
		},
		{
			name: "dropped connections",
			inject: func(srv *ststest.Server, from, to time.Time) {
				srv.Inject(ststest.Fault{From: from, To: to, Drop: true})
			},
			check: wantTransportError,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			srv := newServer(t, clk)
			client := baseClient(srv)
			tc.inject(srv, t0.Add(time.Hour), t0.Add(3*time.Hour))

			if err := assumeRole(ctx, client); err != nil {
				t.Fatalf("before the outage: AssumeRole() error = %v", err)
			}
			clk.Advance(time.Hour)
			tc.check(t, assumeRole(ctx, client))
			clk.Advance(2*time.Hour - time.Second)
			tc.check(t, assumeRole(ctx, client))
			clk.Advance(time.Second)
			if err := assumeRole(ctx, client); err != nil {
				t.Errorf("after the outage: AssumeRole() error = %v", err)
			}
			if got, want := srv.Stats("AssumeRole"), (ststest.Stats{Calls: 4, Failures: 2}); got != want {
				t.Errorf("Stats() = %+v, want %+v", got, want)
			}
		})
	}
}

// TestConcurrentUse changes faults while clients call, for the race
// detector.
func TestConcurrentUse(t *testing.T) {
	srv := newServer(t, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			client := newClient(srv, credentials.NewStaticCredentialsProvider(baseAKID, baseSecret, ""), 1)
			for range 10 {
				_ = assumeRole(context.Background(), client)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			srv.Fail("", "Throttling", 0, 2)
			_ = srv.Requests()
			_ = srv.Issued()
			_ = srv.Stats("AssumeRole")
			srv.ClearFaults()
		}
	})
	wg.Wait()
	st := srv.Stats("AssumeRole")
	if st.Calls != 80 || len(srv.Requests()) != 80 {
		t.Errorf("Stats().Calls = %d, len(Requests()) = %d, want 80", st.Calls, len(srv.Requests()))
	}
	if got := len(srv.Issued()); got != st.Calls-st.Failures {
		t.Errorf("len(Issued()) = %d, want Calls-Failures = %d", got, st.Calls-st.Failures)
	}
}
