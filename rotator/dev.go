package rotator

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Dev mints random, well-formed but useless credentials locally: the
// built-in source for trying imdsd out with no AWS account. Nothing it makes
// is accepted by AWS.
type Dev struct {
	lifetime time.Duration
	roleARN  string
	now      func() time.Time
}

// DevOptions configure NewDev; zero values take the defaults in brackets.
type DevOptions struct {
	Lifetime  time.Duration    // [1h]
	AccountID string           // [123456789012]
	RoleName  string           // [imdsd-dev]
	Now       func() time.Time // [time.Now]
}

// NewDev returns a dev source.
func NewDev(o DevOptions) *Dev {
	if o.Lifetime <= 0 {
		o.Lifetime = time.Hour
	}
	if o.AccountID == "" {
		o.AccountID = "123456789012"
	}
	if o.RoleName == "" {
		o.RoleName = "imdsd-dev"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Dev{lifetime: o.Lifetime, roleARN: fmt.Sprintf("arn:aws:iam::%s:role/%s", o.AccountID, o.RoleName), now: o.Now}
}

// Fetch returns a new random set that expires after the configured
// lifetime.
func (d *Dev) Fetch(ctx context.Context) (Credentials, error) {
	if err := ctx.Err(); err != nil {
		return Credentials{}, err
	}
	now := d.now().Round(0).Truncate(time.Second)
	return Credentials{
		Credentials: aws.Credentials{
			AccessKeyID: "ASIA" + randomString(16, base32Upper),
			// Secret keys are 40 base64 characters; the session token
			// is long, like STS's.
			SecretAccessKey: randomString(40, base64Chars),
			SessionToken:    "IQoJb3JpZ2luX2VjE" + randomString(340, base64Chars),
			Source:          "imdsd-dev",
			CanExpire:       true,
			Expires:         now.Add(d.lifetime),
		},
		RoleARN: d.roleARN,
	}, nil
}

const (
	base32Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	base64Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// randomString returns n characters drawn uniformly from alphabet, whose
// length must divide 256.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
