package ststest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/imdsd/imdsd/rotator/ststest"
)

// inProcessClient is a real STS client whose HTTP requests go to srv
// through Transport, without sockets.
func inProcessClient(srv *ststest.Server, attempts int) *sts.Client {
	return sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://sts.test"),
		Credentials:  credentials.NewStaticCredentialsProvider(baseAKID, baseSecret, ""),
		HTTPClient:   &http.Client{Transport: srv.Transport()},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.RateLimiter = ratelimit.None
		}),
	})
}

// TestTransportInSynctest runs the fake inside a synctest bubble: the
// default clock is the bubble's fake time, so hour-long delays and outages
// pass instantly, and the SDK's real back-off sleeps do too.
func TestTransportInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		srv := ststest.New(ststest.WithBaseCredentials(baseAKID, baseSecret, userARN))
		defer srv.Close()
		client := inProcessClient(srv, 3)
		start := time.Now()

		srv.Inject(ststest.Fault{Delay: 2 * time.Hour, Count: 1})
		out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1")})
		if err != nil {
			t.Fatalf("AssumeRole() error = %v", err)
		}
		if got := time.Since(start); got != 2*time.Hour {
			t.Errorf("AssumeRole() took %v of fake time, want 2h", got)
		}
		if got, want := aws.ToTime(out.Credentials.Expiration), start.Add(3*time.Hour).UTC(); !got.Equal(want) {
			t.Errorf("Expiration = %v, want %v", got, want)
		}

		// An outage in fake time: the SDK retries 503 with its real
		// jittered back-off (seconds), all inside the window.
		now := time.Now()
		srv.Outage(now, now.Add(time.Hour))
		err = assumeRole(ctx, client)
		wantAPIError(t, err, "ServiceUnavailable", 503)
		if got := srv.Stats("AssumeRole"); got.Calls != 4 || got.Failures != 3 {
			t.Errorf("Stats() = %+v, want 4 calls, 3 failures", got)
		}
		time.Sleep(time.Hour) // fake time: the outage is over
		if err := assumeRole(ctx, client); err != nil {
			t.Errorf("AssumeRole() after the outage error = %v", err)
		}
	})
}

func TestTransportFaults(t *testing.T) {
	t.Run("drop", func(t *testing.T) {
		srv := ststest.New(ststest.WithBaseCredentials(baseAKID, baseSecret, userARN))
		srv.Inject(ststest.Fault{Drop: true})
		err := assumeRole(context.Background(), inProcessClient(srv, 1))
		wantTransportError(t, err)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("AssumeRole() error = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("client timeout during delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := ststest.New(ststest.WithBaseCredentials(baseAKID, baseSecret, userARN))
			srv.Inject(ststest.Fault{Delay: time.Hour})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := assumeRole(ctx, inProcessClient(srv, 1)); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("AssumeRole() error = %v, want context.DeadlineExceeded", err)
			}
			if got := srv.Requests()[0].Status; got != 0 {
				t.Errorf("Requests()[0].Status = %d, want 0", got)
			}
		})
	})
}
