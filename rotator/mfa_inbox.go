package rotator

import (
	"context"
	"errors"
	"sync"
	"time"
)

// MFAInbox holds an MFA code delivered from outside the service (`imdsd mfa
// CODE`, through the admin API) until a source asks for one. It is the MFA
// Input when no code command is configured: a service cannot prompt. A code
// is used once; codes delivered more than two minutes before (mfaCodeMaxAge)
// are dropped, since TOTP codes are valid for about a minute. Safe for concurrent use.
type MFAInbox struct {
	now  func() time.Time
	mu   sync.Mutex
	code string
	at   time.Time
}

// mfaCodeMaxAge is how long a delivered code waits to be used.
const mfaCodeMaxAge = 2 * time.Minute

// ErrNoMFACode is returned by MFAInbox.Get when no fresh code is waiting.
var ErrNoMFACode = errors.New("no MFA code delivered; run 'imdsd mfa CODE' with a current code")

// NewMFAInbox returns an empty inbox; now is the clock [time.Now].
func NewMFAInbox(now func() time.Time) *MFAInbox {
	if now == nil {
		now = time.Now
	}
	return &MFAInbox{now: now}
}

// Deliver stores code for the next Get, replacing any waiting one.
func (m *MFAInbox) Deliver(code string) error {
	if len(code) != 6 || !allDigits(code) {
		return errors.New("mfa code: exactly 6 digits")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.code, m.at = code, m.now()
	return nil
}

// Get hands out the waiting code once, or ErrNoMFACode.
func (m *MFAInbox) Get(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	code, fresh := m.code, m.now().Sub(m.at) <= mfaCodeMaxAge
	m.code = ""
	if code == "" || !fresh {
		return "", ErrNoMFACode
	}
	return code, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
