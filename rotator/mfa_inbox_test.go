package rotator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imdsd/imdsd/rotator"
)

func TestMFAInbox(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	m := rotator.NewMFAInbox(func() time.Time { return now })
	ctx := context.Background()
	if _, err := m.Get(ctx); !errors.Is(err, rotator.ErrNoMFACode) {
		t.Fatalf("Get() on an empty inbox = %v, want ErrNoMFACode", err)
	}
	for _, bad := range []string{"12345", "1234567", "12a456", ""} {
		if err := m.Deliver(bad); err == nil {
			t.Errorf("Deliver(%q) = nil, want an error", bad)
		}
	}
	if err := m.Deliver("123456"); err != nil {
		t.Fatal(err)
	}
	if code, err := m.Get(ctx); code != "123456" || err != nil {
		t.Fatalf("Get() = %q, %v, want the delivered code", code, err)
	}
	if _, err := m.Get(ctx); !errors.Is(err, rotator.ErrNoMFACode) {
		t.Errorf("second Get() = %v, want ErrNoMFACode: a code is used once", err)
	}
	_ = m.Deliver("654321")
	now = now.Add(2*time.Minute + time.Second)
	if _, err := m.Get(ctx); !errors.Is(err, rotator.ErrNoMFACode) {
		t.Errorf("Get() of a stale code = %v, want ErrNoMFACode", err)
	}
	if rotator.Classify(&wrapped{rotator.ErrNoMFACode}) != rotator.ClassPermanent {
		t.Errorf("a missing code must be retried slowly")
	}
}

type wrapped struct{ error }

func (w *wrapped) Unwrap() error { return w.error }
