package rotator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// SessionToken is the session-token source: sts:GetSessionToken, turning
// long-term IAM user keys into temporary ones, optionally with MFA.
type SessionToken struct {
	c        STSClient
	duration time.Duration
	mfa      MFAOptions
	caller   callerARN
}

// NewSessionToken validates the parameters and returns the source. A zero
// duration leaves STS's default (12h).
func NewSessionToken(c STSClient, duration time.Duration, mfa MFAOptions) (*SessionToken, error) {
	in := sts.GetSessionTokenInput{DurationSeconds: SessionOptions{Duration: duration}.durationSeconds(), SerialNumber: optional(mfa.Serial)}
	if err := validateGetSessionToken(&in); err != nil {
		return nil, err
	}
	if mfa.Serial != "" && mfa.Code == nil {
		return nil, fmt.Errorf("mfa_serial %s: %w; set mfa_command", mfa.Serial, errNoCode)
	}
	return &SessionToken{c: c, duration: duration, mfa: mfa, caller: callerARN{c: c}}, nil
}

// Fetch gets a new session; with MFA it needs a fresh code each time,
// so prefer long durations (up to 36h).
func (s *SessionToken) Fetch(ctx context.Context) (Credentials, error) {
	in := sts.GetSessionTokenInput{DurationSeconds: SessionOptions{Duration: s.duration}.durationSeconds()}
	if s.mfa.Serial != "" {
		code, err := getInput(ctx, s.mfa.Code, "MFA code for "+s.mfa.Serial)
		if err != nil {
			return Credentials{}, err
		}
		in.SerialNumber, in.TokenCode = aws.String(s.mfa.Serial), aws.String(code)
		if err := validateGetSessionToken(&in); err != nil {
			return Credentials{}, &errInput{what: "MFA code for " + s.mfa.Serial, err: err}
		}
	}
	out, err := s.c.GetSessionToken(ctx, &in)
	if err != nil {
		return Credentials{}, fmt.Errorf("get session token: %w", err)
	}
	arn := s.caller.get(ctx)
	return fromSTS(out.Credentials, "GetSessionToken", arn)
}

// callerARN asks sts:GetCallerIdentity once who the base credentials are,
// for the account shown in iam/info and the identity document. A failure
// is not fatal (the account falls back to the configured one) and is
// retried on the next fetch.
type callerARN struct {
	c   STSClient
	mu  sync.Mutex
	arn string
}

func (a *callerARN) get(ctx context.Context) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.arn == "" {
		if out, err := a.c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
			a.arn = aws.ToString(out.Arn)
		}
	}
	return a.arn
}
