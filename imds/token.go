package imds

import (
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"math/rand/v2"
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
// 53 bytes encode to 71 characters, inside SPEC.md's 100-byte bound (the
// format is SPEC.md's decision: expiry + nonce + HMAC-SHA256).
const (
	tokenVersion  = 1
	tokenNonceLen = 12
	tokenBodyLen  = 1 + 8 + tokenNonceLen
	tokenRawLen   = tokenBodyLen + sha256.Size
)

// tokenEnc is base64url without padding; Strict rejects non-zero padding
// bits, so every token has exactly one valid spelling.
var tokenEnc = base64.RawURLEncoding.Strict()

// TokenLen is the length in bytes of every token Issue returns:
// base64url of tokenRawLen bytes, without padding (token_test checks it
// against the encoder).
const TokenLen = (tokenRawLen*8 + 5) / 6

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
	seen    seenTokens
}

// seenTokens remembers the tokens Valid accepted last, so that a client's
// next requests with the same token (an SDK reuses one for its whole
// lifetime, up to six hours) are checked by comparison instead of by HMAC.
// It is a fixed table: each token has one slot, chosen by a keyed hash,
// and a newer token there replaces the older, so any number of distinct
// tokens costs no memory beyond the table. Only tokens whose MAC was
// verified enter it, with their expiry, so it never accepts a token the
// MAC would refuse.
type seenTokens struct {
	seed  maphash.Seed
	slots [seenSlots]seenSlot
}

// seenSlots is the table's size: far more than the SDK processes of one
// host hold tokens at once; 64 × 96 bytes.
const seenSlots = 64

type seenSlot struct {
	mu     sync.Mutex
	expiry int64 // Unix nanoseconds; 0: empty
	tok    [TokenLen]byte
}

func (c *seenTokens) slot(token string) *seenSlot {
	return &c.slots[maphash.String(c.seed, token)%seenSlots]
}

// lookup returns the expiry of token when it is in the table.
func (c *seenTokens) lookup(token string) (expiry int64, ok bool) {
	var tok [TokenLen]byte
	copy(tok[:], token)
	sl := c.slot(token)
	sl.mu.Lock()
	expiry = sl.expiry
	// Every byte is compared whatever differs first, eight at a time:
	// how long the comparison takes must not tell a local caller how much
	// of a valid token it has guessed.
	var diff uint64
	for i := 0; i+8 <= TokenLen; i += 8 {
		diff |= binary.LittleEndian.Uint64(sl.tok[i:]) ^ binary.LittleEndian.Uint64(tok[i:])
	}
	for i := TokenLen &^ 7; i < TokenLen; i++ {
		diff |= uint64(sl.tok[i] ^ tok[i])
	}
	sl.mu.Unlock()
	return expiry, expiry != 0 && diff == 0
}

func (c *seenTokens) add(token string, expiry int64) {
	sl := c.slot(token)
	sl.mu.Lock()
	copy(sl.tok[:], token)
	sl.expiry = expiry
	sl.mu.Unlock()
}

// tokenScratch holds one HMAC, a nonce source and the buffers a token
// needs. Pooling them keeps Issue and Valid free of allocations: buffers
// handed to the hash.Hash and io.Reader interfaces would otherwise escape
// to the heap on every call. Nonces need to be distinct, not secret (the
// MAC is what a forger lacks): a ChaCha8 stream seeded from crypto/rand
// gives them for 7 ns where a getrandom call each took 67.
type tokenScratch struct {
	mac   hash.Hash     // HMAC-SHA256 under the key
	nonce *rand.ChaCha8 // seeded from crypto/rand
	raw   [tokenRawLen]byte
	enc   [TokenLen]byte
	sum   [sha256.Size]byte
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
	t.seen.seed = maphash.MakeSeed()
	t.scratch.New = func() any {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		return &tokenScratch{mac: hmac.New(sha256.New, k), nonce: rand.NewChaCha8(seed)}
	}
	return t, nil
}

// NewTokenKey returns a fresh random 32-byte key for [NewTokens].
func NewTokenKey() []byte {
	k := make([]byte, 32)
	// crypto/rand.Read never returns an error on supported platforms (Go 1.24+).
	_, _ = crand.Read(k)
	return k
}

// Issue returns a new token that is valid for ttl from now.
func (t *Tokens) Issue(ttl time.Duration) string {
	s := t.issue(ttl)
	defer t.scratch.Put(s)
	return string(s.enc[:TokenLen])
}

// issue writes a new token into s.enc[:TokenLen] of a pooled scratch, for
// the handler to send without a copy; the caller puts s back.
func (t *Tokens) issue(ttl time.Duration) *tokenScratch {
	s := t.scratch.Get().(*tokenScratch)
	s.raw[0] = tokenVersion
	binary.BigEndian.PutUint64(s.raw[1:9], uint64(t.now().Add(ttl).UnixNano()))
	_, _ = s.nonce.Read(s.raw[9:tokenBodyLen])
	s.sign()
	copy(s.raw[tokenBodyLen:], s.sum[:])
	tokenEnc.Encode(s.enc[:TokenLen], s.raw[:])
	return s
}

// Valid reports whether token was issued by t and has not expired.
func (t *Tokens) Valid(token string) bool {
	if len(token) != TokenLen {
		return false
	}
	if expiry, ok := t.seen.lookup(token); ok {
		return t.now().UnixNano() < expiry
	}
	expiry, ok := t.verify(token)
	if !ok {
		return false
	}
	t.seen.add(token, expiry)
	return t.now().UnixNano() < expiry
}

// verify checks token's encoding, version and MAC, and returns the expiry
// it carries.
func (t *Tokens) verify(token string) (expiry int64, ok bool) {
	s := t.scratch.Get().(*tokenScratch)
	defer t.scratch.Put(s)
	copy(s.enc[:], token)
	if n, err := tokenEnc.Decode(s.raw[:], s.enc[:TokenLen]); err != nil || n != tokenRawLen {
		return 0, false
	}
	if s.raw[0] != tokenVersion {
		return 0, false
	}
	s.sign()
	if !hmac.Equal(s.sum[:], s.raw[tokenBodyLen:]) {
		return 0, false
	}
	expiry = int64(binary.BigEndian.Uint64(s.raw[1:9]))
	return expiry, expiry != 0
}

// sign computes the MAC of the token body in s.raw into s.sum.
func (s *tokenScratch) sign() {
	s.mac.Reset()
	s.mac.Write(s.raw[:tokenBodyLen])
	s.mac.Sum(s.sum[:0])
}
