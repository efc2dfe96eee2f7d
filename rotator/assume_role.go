package rotator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// AssumeRoleOptions configure NewAssumeRole.
type AssumeRoleOptions struct {
	SessionOptions
	ExternalID        string
	Tags              []types.Tag
	TransitiveTagKeys []string
	SourceIdentity    string
	// MFA, when MFA.Serial is set: the role is assumed with an MFA
	// session (GetSessionToken with a code), renewed about once a
	// SessionDuration, not with the base credentials.
	MFA MFAOptions
}

// AssumeRole is the assume-role source: sts:AssumeRole with the base
// credentials of its client, or, with MFA, with an MFA session.
type AssumeRole struct {
	c   STSClient
	in  sts.AssumeRoleInput
	mfa *mfaSession
}

// NewAssumeRole validates every parameter (SPEC.md §10) and returns the
// source; nothing is called yet.
func NewAssumeRole(c STSClient, roleARN string, o AssumeRoleOptions) (*AssumeRole, error) {
	in := sts.AssumeRoleInput{
		RoleArn:           aws.String(roleARN),
		RoleSessionName:   aws.String(o.RoleSessionName),
		DurationSeconds:   o.durationSeconds(),
		ExternalId:        optional(o.ExternalID),
		Policy:            optional(o.Policy),
		PolicyArns:        policyARNs(o.PolicyARNs),
		Tags:              o.Tags,
		TransitiveTagKeys: o.TransitiveTagKeys,
		SourceIdentity:    optional(o.SourceIdentity),
	}
	check := in
	if o.MFA.Serial != "" {
		// The code is obtained per session; validate the serial here.
		check.SerialNumber = aws.String(o.MFA.Serial)
	}
	if err := validateAssumeRole(&check); err != nil {
		return nil, err
	}
	a := &AssumeRole{c: c, in: in}
	if o.MFA.Serial != "" {
		m, err := newMFASession(c, o.MFA)
		if err != nil {
			return nil, err
		}
		a.mfa = m
	}
	return a, nil
}

// Fetch assumes the role once.
func (a *AssumeRole) Fetch(ctx context.Context) (Credentials, error) {
	c := a.c
	if a.mfa != nil {
		sc, err := a.mfa.Client(ctx)
		if err != nil {
			return Credentials{}, err
		}
		c = sc
	}
	in := a.in
	out, err := c.AssumeRole(ctx, &in)
	if err != nil {
		if a.mfa != nil && isExpiredToken(err) {
			a.mfa.Drop()
		}
		return Credentials{}, fmt.Errorf("assume role %s: %w", aws.ToString(a.in.RoleArn), err)
	}
	creds, err := fromSTS(out.Credentials, "AssumeRole", assumedARN(out.AssumedRoleUser))
	if err != nil {
		return Credentials{}, err
	}
	creds.RoleARN = aws.ToString(a.in.RoleArn)
	return creds, nil
}

func assumedARN(u *types.AssumedRoleUser) string {
	if u == nil {
		return ""
	}
	return aws.ToString(u.Arn)
}

// MFAOptions configure an MFA session.
type MFAOptions struct {
	// Serial is the MFA device: arn:aws:iam::ACCOUNT:mfa/NAME or a
	// hardware serial.
	Serial string
	// Code obtains a fresh six-digit code: a command (a TOTP tool) or a
	// code delivered by `imdsd mfa`.
	Code Input
	// SessionDuration of the GetSessionToken session [36h, the maximum].
	SessionDuration time.Duration
	// NewClient builds the client that signs with the session.
	NewClient func(creds aws.CredentialsProvider) STSClient
	// Now is the wall clock [time.Now].
	Now func() time.Time
}

// mfaSession holds one GetSessionToken session made with an MFA code and
// hands out an STS client signing with it, so that a role requiring MFA is
// assumed again and again with one code a session (about once a day or
// two), not one code a rotation.
type mfaSession struct {
	c  STSClient
	o  MFAOptions
	mu sync.Mutex
	// current session and the client signing with it
	creds  aws.Credentials
	client STSClient
}

// mfaSessionMargin: a session with less than this left is replaced before
// use, so it never lapses between a check and the AssumeRole call.
const mfaSessionMargin = 5 * time.Minute

// newMFASession validates o and returns an MFA session holder.
func newMFASession(c STSClient, o MFAOptions) (*mfaSession, error) {
	if o.SessionDuration <= 0 {
		o.SessionDuration = 36 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Code == nil {
		return nil, fmt.Errorf("mfa_serial %s: %w; set mfa_command", o.Serial, errNoCode)
	}
	if o.NewClient == nil {
		return nil, fmt.Errorf("mfa_serial %s: no client for the MFA session", o.Serial)
	}
	check := sts.GetSessionTokenInput{SerialNumber: aws.String(o.Serial), DurationSeconds: durationSeconds(o.SessionDuration)}
	if err := validateGetSessionToken(&check); err != nil {
		return nil, err
	}
	return &mfaSession{c: c, o: o}, nil
}

// Client returns a client signing with a valid MFA session, obtaining one
// (and a code) when none is held or the held one is about to lapse.
func (m *mfaSession) Client(ctx context.Context) (STSClient, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.client != nil && m.creds.Expires.Sub(m.o.Now()) > mfaSessionMargin {
		return m.client, nil
	}
	creds, err := m.session(ctx)
	if err != nil {
		return nil, err
	}
	m.creds = creds.Credentials
	m.client = m.o.NewClient(credentials.StaticCredentialsProvider{Value: creds.Credentials})
	return m.client, nil
}

// session obtains a new MFA session with a fresh code.
func (m *mfaSession) session(ctx context.Context) (Credentials, error) {
	code, err := getInput(ctx, m.o.Code, "MFA code for "+m.o.Serial)
	if err != nil {
		return Credentials{}, err
	}
	in := sts.GetSessionTokenInput{
		SerialNumber:    aws.String(m.o.Serial),
		TokenCode:       aws.String(code),
		DurationSeconds: durationSeconds(m.o.SessionDuration),
	}
	if err := validateGetSessionToken(&in); err != nil {
		return Credentials{}, &errInput{what: "MFA code for " + m.o.Serial, err: err}
	}
	out, err := m.c.GetSessionToken(ctx, &in)
	if err != nil {
		return Credentials{}, fmt.Errorf("get MFA session for %s: %w", m.o.Serial, err)
	}
	return fromSTS(out.Credentials, "GetSessionToken", "")
}

// Drop forgets the held session (STS said it expired or was revoked).
func (m *mfaSession) Drop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.client, m.creds = nil, aws.Credentials{}
}
