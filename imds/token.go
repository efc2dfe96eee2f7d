package imds

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"
)

// MaxTokenTTL is the longest session token lifetime a client may ask for
// (EC2 allows one second to six hours: SPEC.md R2.2).
const MaxTokenTTL = 6 * time.Hour

// ErrBadTTL reports a missing or invalid X-aws-ec2-metadata-token-ttl-seconds
// header; IMDS answers it with 400.
var ErrBadTTL = errors.New("token ttl must be whole seconds 1..21600")

// ParseTTL parses the value of the X-aws-ec2-metadata-token-ttl-seconds
// header strictly: ASCII digits only (no sign, space or exponent), 1..21600.
// It is pure and safe for any input.
func ParseTTL(header string) (time.Duration, error) {
	// Six digits would already be over the maximum; rejecting long input
	// first also keeps the accumulator far from overflow.
	if header == "" || len(header) > 5 {
		return 0, fmt.Errorf("%w (got %q)", ErrBadTTL, clip(header))
	}
	n := 0
	for i := 0; i < len(header); i++ {
		c := header[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w (got %q)", ErrBadTTL, clip(header))
		}
		n = n*10 + int(c-'0')
	}
	ttl := time.Duration(n) * time.Second
	if ttl < time.Second || ttl > MaxTokenTTL {
		return 0, fmt.Errorf("%w (got %q)", ErrBadTTL, header)
	}
	return ttl, nil
}

// clip keeps error messages bounded whatever a client sent.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Token layout, before base64url (no padding):
//
//	version (1) | expiry, Unix nanoseconds, big endian (8) | nonce (12) | HMAC-SHA256 of the previous fields (32)
//
// 53 bytes encode to 71 characters, inside SPEC.md's 100-byte bound.
const (
	tokenVersion  = 1
	tokenNonceLen = 12
	tokenBodyLen  = 1 + 8 + tokenNonceLen
	tokenRawLen   = tokenBodyLen + sha256.Size
)

// tokenEnc is base64url without padding; Strict rejects non-zero padding
// bits, so every token has exactly one valid spelling.
var tokenEnc = base64.RawURLEncoding.Strict()

// TokenLen is the length in bytes of every token Issue returns.
var TokenLen = tokenEnc.EncodedLen(tokenRawLen)

// Tokens issues and checks IMDSv2 session tokens. Tokens are stateless: each
// carries its own expiry and a MAC under a key that never leaves the process,
// so memory does not grow with the number of tokens issued (SPEC.md R2.8) and
// a flood of token requests costs CPU only. Tokens are valid on the Tokens
// value (the key) that issued them, until their expiry: strictly, a token is
// invalid once now >= issued + ttl (SPEC.md R3.4).
//
// A Tokens is safe for concurrent use.
type Tokens struct {
	now     func() time.Time
	scratch sync.Pool // of *tokenScratch
}

// tokenScratch holds one HMAC and the buffers a token check needs. Pooling
// them keeps Valid free of allocations: buffers handed to the hash.Hash and
// io.Reader interfaces would otherwise escape to the heap on every call.
type tokenScratch struct {
	mac hash.Hash // HMAC-SHA256 under the key
	raw [tokenRawLen]byte
	enc [80]byte // ≥ TokenLen
	sum [sha256.Size]byte
}

// NewTokens returns a Tokens that signs with key (at least 32 bytes; use
// [NewTokenKey]) and reads the time from now (time.Now when nil).
func NewTokens(key []byte, now func() time.Time) (*Tokens, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("token key: must be at least 32 bytes (got %d)", len(key))
	}
	if now == nil {
		now = time.Now
	}
	k := append([]byte(nil), key...)
	t := &Tokens{now: now}
	t.scratch.New = func() any { return &tokenScratch{mac: hmac.New(sha256.New, k)} }
	return t, nil
}

// NewTokenKey returns a fresh random 32-byte key for [NewTokens].
func NewTokenKey() []byte {
	k := make([]byte, 32)
	// crypto/rand.Read never returns an error on supported platforms (Go 1.24+).
	_, _ = rand.Read(k)
	return k
}

// Issue returns a new token that is valid for ttl from now.
func (t *Tokens) Issue(ttl time.Duration) string {
	s := t.scratch.Get().(*tokenScratch)
	defer t.scratch.Put(s)
	s.raw[0] = tokenVersion
	binary.BigEndian.PutUint64(s.raw[1:9], uint64(t.now().Add(ttl).UnixNano()))
	_, _ = rand.Read(s.raw[9:tokenBodyLen])
	s.sign()
	copy(s.raw[tokenBodyLen:], s.sum[:])
	tokenEnc.Encode(s.enc[:TokenLen], s.raw[:])
	return string(s.enc[:TokenLen])
}

// Valid reports whether token was issued by t and has not expired.
func (t *Tokens) Valid(token string) bool {
	if len(token) != TokenLen {
		return false
	}
	s := t.scratch.Get().(*tokenScratch)
	defer t.scratch.Put(s)
	copy(s.enc[:], token)
	if n, err := tokenEnc.Decode(s.raw[:], s.enc[:TokenLen]); err != nil || n != tokenRawLen {
		return false
	}
	if s.raw[0] != tokenVersion {
		return false
	}
	s.sign()
	if !hmac.Equal(s.sum[:], s.raw[tokenBodyLen:]) {
		return false
	}
	expiry := int64(binary.BigEndian.Uint64(s.raw[1:9]))
	return t.now().UnixNano() < expiry
}

// sign computes the MAC of the token body in s.raw into s.sum.
func (s *tokenScratch) sign() {
	s.mac.Reset()
	s.mac.Write(s.raw[:tokenBodyLen])
	s.mac.Sum(s.sum[:0])
}
