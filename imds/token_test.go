package imds_test

import (
	"errors"
	"testing"
	"time"

	"github.com/imdsd/imdsd/imds"
)

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{"300", 5 * time.Minute, true},
		{"21600", 6 * time.Hour, true},
		{"00300", 5 * time.Minute, true},
		{"0", 0, false},
		{"21601", 0, false},
		{"99999", 0, false},
		{"100000", 0, false},
		{"", 0, false},
		{" 300", 0, false},
		{"300 ", 0, false},
		{"+300", 0, false},
		{"-1", 0, false},
		{"3e2", 0, false},
		{"0x12c", 0, false},
		{"３００", 0, false},
	}
	for _, tc := range tests {
		got, err := imds.ParseTTL(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("ParseTTL(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, imds.ErrBadTTL) {
			t.Errorf("ParseTTL(%q) = %v, %v, want ErrBadTTL", tc.in, got, err)
		}
	}
}

func TestTokens(t *testing.T) {
	clock := &fakeClock{t: t0}
	key := []byte("0123456789abcdef0123456789abcdef")
	tk, err := imds.NewTokens(key, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tk.Issue(time.Minute), tk.Issue(time.Minute)
	if a == b {
		t.Error("two tokens are equal; want a fresh nonce in each")
	}
	if len(a) != imds.TokenLen {
		t.Errorf("len(token) = %d, want %d", len(a), imds.TokenLen)
	}
	if !tk.Valid(a) {
		t.Error("Valid(fresh token) = false")
	}
	// Any single-character change invalidates the token.
	for i := range a {
		mut := []byte(a)
		mut[i] ^= 1
		if tk.Valid(string(mut)) {
			t.Errorf("Valid(token with byte %d flipped) = true", i)
		}
	}
	if tk.Valid(a[:len(a)-1]) || tk.Valid(a+"A") || tk.Valid("") {
		t.Error("Valid(truncated or extended token) = true")
	}
	same, _ := imds.NewTokens(key, clock.Now)
	if !same.Valid(a) {
		t.Error("a Tokens with the same key (a config reload) rejects a valid token")
	}
	other, _ := imds.NewTokens(imds.NewTokenKey(), clock.Now)
	if other.Valid(a) {
		t.Error("Valid(token of another key) = true")
	}
	clock.Add(time.Minute - time.Nanosecond)
	if !tk.Valid(a) {
		t.Error("Valid() just before expiry = false")
	}
	clock.Add(time.Nanosecond)
	if tk.Valid(a) {
		t.Error("Valid() at expiry = true, want false (now >= issued + ttl)")
	}
	if _, err := imds.NewTokens([]byte("short"), nil); err == nil {
		t.Error("NewTokens(short key) = nil error")
	}
}

// TestTokensSeenTable: the table of tokens seen is bounded and never
// decides alone. After a flood of distinct tokens the first is still valid
// (checked by MAC again), every check allocates nothing, a token seen
// expires on time, and near-copies of seen tokens are refused.
func TestTokensSeenTable(t *testing.T) {
	clock := &fakeClock{t: t0}
	tk, err := imds.NewTokens(imds.NewTokenKey(), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	first := tk.Issue(time.Hour)
	// Checked by MAC, then from the table.
	for range 2 {
		if !tk.Valid(first) {
			t.Fatal("Valid(fresh token) = false")
		}
	}
	flood := make([]string, 10_000)
	for i := range flood {
		flood[i] = tk.Issue(time.Minute)
	}
	i := 0
	allocs := testing.AllocsPerRun(len(flood)-1, func() {
		if !tk.Valid(flood[i]) {
			t.Errorf("Valid(flood token %d) = false", i)
		}
		i++
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("Valid allocates %v per distinct token, want 0 (memory must not grow with tokens)", allocs)
	}
	if !tk.Valid(first) {
		t.Error("Valid(first token after a flood) = false")
	}
	for _, tok := range flood[:100] {
		mut := []byte(tok)
		mut[len(mut)/2] ^= 2
		if tk.Valid(string(mut)) {
			t.Fatal("Valid(seen token with one byte changed) = true")
		}
	}
	clock.Add(time.Minute)
	if tk.Valid(flood[5]) || tk.Valid(flood[len(flood)-1]) {
		t.Error("Valid(seen token at its expiry) = true")
	}
	if !tk.Valid(first) {
		t.Error("Valid(unexpired seen token) = false")
	}
}
