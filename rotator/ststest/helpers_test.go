package ststest_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/imdsd/imdsd/rotator/ststest"
)

const (
	account    = "123456789012"
	baseAKID   = "AKIAIOSFODNN7EXAMPLE"
	baseSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	userARN    = "arn:aws:iam::123456789012:user/alice"
	roleARN    = "arn:aws:iam::123456789012:role/app"
	mfaSerial  = "arn:aws:iam::123456789012:mfa/alice"
	goodCode   = "123456"
)

// t0 is the start of the fake clock in every test.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newServer starts a server that knows the base key of alice and an MFA
// device accepting goodCode, on clk (nil: a new clock at t0).
func newServer(t *testing.T, clk *clock, opts ...ststest.Option) *ststest.Server {
	t.Helper()
	if clk == nil {
		clk = newClock()
	}
	base := []ststest.Option{
		ststest.WithClock(clk.Now),
		ststest.WithBaseCredentials(baseAKID, baseSecret, userARN),
		ststest.WithMFADevice(mfaSerial, func(code string) bool { return code == goodCode }),
	}
	srv := ststest.NewServer(append(base, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a real STS client for srv that makes at most attempts
// attempts per call, without back-off delays.
func newClient(srv *ststest.Server, creds aws.CredentialsProvider, attempts int) *sts.Client {
	return sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  creds,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
}

// baseClient is a client signing with alice's long-term key, one attempt.
func baseClient(srv *ststest.Server) *sts.Client {
	return newClient(srv, credentials.NewStaticCredentialsProvider(baseAKID, baseSecret, ""), 1)
}

// issuedClient is a client signing with credentials the server issued.
func issuedClient(srv *ststest.Server, c ststest.Credentials) *sts.Client {
	return newClient(srv, credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken), 1)
}

// apiError returns the code, message and HTTP status of an STS error
// returned by the SDK, failing the test if err is not one.
func apiError(t *testing.T, err error) (code, message string, status int) {
	t.Helper()
	if err == nil {
		t.Fatal("error = nil, want an STS API error")
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not a smithy.APIError", err)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *awshttp.ResponseError", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage(), re.HTTPStatusCode()
}

// wantAPIError checks err's code and HTTP status.
func wantAPIError(t *testing.T, err error, code string, status int) {
	t.Helper()
	gotCode, msg, gotStatus := apiError(t, err)
	if gotCode != code || gotStatus != status {
		t.Errorf("ErrorCode() = %q, HTTPStatusCode() = %d (message %q), want %q, %d", gotCode, gotStatus, msg, code, status)
	}
}

// makeJWT returns a token ststest accepts, with claims.
func makeJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	return ststest.JWT(claims)
}

// makeSAML returns a base64 SAML Response with the given parts.
func makeSAML(issuer, nameID, format, session string, notOnOrAfter time.Time) string {
	return ststest.SAMLResponse{Issuer: issuer, NameID: nameID, NameIDFormat: format, Session: session, NotOnOrAfter: notOnOrAfter}.Encode()
}
