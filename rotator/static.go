package rotator

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Static is the static source: fixed keys, for S3-compatible stores or
// local STS endpoints that want them through IMDS. The keys never change;
// they are served with an advertised lifetime of 6 hours (IMDS credentials
// always carry an Expiration), re-announced on every refresh.
type Static struct {
	creds    aws.Credentials
	lifetime time.Duration
	now      func() time.Time
}

// staticLifetime is the Expiration advertised for static keys.
const staticLifetime = 6 * time.Hour

// NewStatic returns the source for creds (a session token is optional).
func NewStatic(creds aws.Credentials, now func() time.Time) (*Static, error) {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, errors.New("static: an access key ID and secret access key are needed; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the service's environment, or use --profile")
	}
	if now == nil {
		now = time.Now
	}
	creds.Source = "static"
	return &Static{creds: creds, lifetime: staticLifetime, now: now}, nil
}

// Fetch returns the keys with a fresh advertised expiry.
func (s *Static) Fetch(ctx context.Context) (Credentials, error) {
	c := s.creds
	c.CanExpire = true
	c.Expires = s.now().Round(0).Truncate(time.Second).Add(s.lifetime)
	return Credentials{Credentials: c}, nil
}
