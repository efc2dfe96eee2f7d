package audit

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is one line of the audit trail: one credentials answer or one
// refusal. It holds no secret, by construction: the access key is held as
// its last 4 characters only (KeySuffix) and a container token as its id
// only (TokenID); no field takes a secret key, a session token or a
// container token.
type Record struct {
	Time time.Time
	// Listener names the listener that took the request, e.g. "imds" or
	// "container", as the daemon names them.
	Listener string
	Role     string
	Decision Decision
	// Reason says why: the access policy's reason (no_allow_list,
	// allowed, not_allowed, unknown_caller, unknown_executable) or the
	// endpoint's (bad_token, not_ready, …); "" when there is none.
	Reason string
	// Status is the HTTP status answered; 0 when not set.
	Status int
	// Peer is the client's address as the connection saw it.
	Peer netip.AddrPort
	// UID is the caller's uid; -1 when unknown or not applicable.
	UID  int
	User string
	// PID and Exe name the caller's process when known (0 and "" when not).
	PID int
	Exe string
	// Token is the id of the container token presented to the
	// container endpoint; zero for IMDS requests.
	Token TokenID
	// Key is the last 4 characters of the access key id served; zero for
	// a refusal.
	Key KeySuffix
}

// Decision is the outcome written in a Record.
type Decision string

// Decisions.
const (
	Allowed Decision = "allowed" // credentials were served
	Refused Decision = "refused" // the request was refused
)

// KeySuffix is the last 4 characters of an access key id: how imdsd shows
// a key (aws-vault's FormatKeyForDisplay). It cannot hold more; the zero
// value is "no key".
type KeySuffix struct {
	b [4]byte
	n uint8
}

// SuffixOf returns the last 4 bytes of accessKeyID (all of it when it is
// shorter).
func SuffixOf(accessKeyID string) KeySuffix {
	var k KeySuffix
	s := accessKeyID
	if len(s) > 4 {
		s = s[len(s)-4:]
	}
	k.n = uint8(copy(k.b[:], s))
	return k
}

// String returns the suffix.
func (k KeySuffix) String() string { return string(k.b[:k.n]) }

// IsZero reports whether k holds nothing.
func (k KeySuffix) IsZero() bool { return k.n == 0 }

// TokenID is the id of a container token (imds.ContainerTokenID: hex
// digits of its SHA-256), never the token: NewTokenID accepts only short
// hex strings, so a token passed by mistake is refused rather than
// written. The zero value is "no token".
type TokenID struct {
	b [maxTokenID]byte
	n uint8
}

// maxTokenID is the longest id accepted: 64 bits of hex.
const maxTokenID = 16

// ErrNotTokenID is returned by NewTokenID for a string that is not a
// token id.
var ErrNotTokenID = errors.New("a container token id is 1..16 lowercase hex digits")

// NewTokenID checks id (1..16 lowercase hex digits) and returns it.
func NewTokenID(id string) (TokenID, error) {
	var t TokenID
	if len(id) == 0 || len(id) > maxTokenID {
		return t, ErrNotTokenID
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return t, ErrNotTokenID
		}
	}
	t.n = uint8(copy(t.b[:], id))
	return t, nil
}

// String returns the id.
func (t TokenID) String() string { return string(t.b[:t.n]) }

// IsZero reports whether t holds nothing.
func (t TokenID) IsZero() bool { return t.n == 0 }

// appendRecord appends r as one JSON object and a newline to b. It is
// written by hand so that encoding a record allocates nothing; the field
// names are those that readRecord decodes.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "listener", r.Listener)
	b = appendField(b, "role", r.Role)
	b = appendField(b, "decision", string(r.Decision))
	if r.Reason != "" {
		b = appendField(b, "reason", r.Reason)
	}
	if r.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	if r.Peer.IsValid() {
		b = append(b, `,"peer":"`...)
		b = r.Peer.AppendTo(b)
		b = append(b, '"')
	}
	if r.UID >= 0 {
		b = append(b, `,"uid":`...)
		b = strconv.AppendInt(b, int64(r.UID), 10)
	}
	if r.User != "" {
		b = appendField(b, "user", r.User)
	}
	if r.PID > 0 {
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(r.PID), 10)
	}
	if r.Exe != "" {
		b = appendField(b, "exe", r.Exe)
	}
	if !r.Token.IsZero() {
		b = append(b, `,"container_token_id":"`...)
		b = append(b, r.Token.b[:r.Token.n]...)
		b = append(b, '"')
	}
	if !r.Key.IsZero() {
		b = appendField(b, "access_key_id_last4", string(r.Key.b[:r.Key.n]))
	}
	return append(b, "}\n"...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and
// U+2028/U+2029 escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// jsonRecord is a Record as decoded from a line.
type jsonRecord struct {
	Time     time.Time `json:"time"`
	Listener string    `json:"listener"`
	Role     string    `json:"role"`
	Decision Decision  `json:"decision"`
	Reason   string    `json:"reason"`
	Status   int       `json:"status"`
	Peer     string    `json:"peer"`
	UID      *int      `json:"uid"`
	User     string    `json:"user"`
	PID      int       `json:"pid"`
	Exe      string    `json:"exe"`
	Token    string    `json:"container_token_id"`
	Key      string    `json:"access_key_id_last4"`
}

// parseRecord decodes one line written by appendRecord.
func parseRecord(line []byte) (Record, error) {
	var j jsonRecord
	if err := json.Unmarshal(line, &j); err != nil {
		return Record{}, err
	}
	r := Record{
		Time: j.Time, Listener: j.Listener, Role: j.Role, Decision: j.Decision, Reason: j.Reason,
		Status: j.Status, UID: -1, User: j.User, PID: j.PID, Exe: j.Exe, Key: SuffixOf(j.Key),
	}
	if j.UID != nil {
		r.UID = *j.UID
	}
	if j.Peer != "" {
		p, err := netip.ParseAddrPort(j.Peer)
		if err != nil {
			return Record{}, err
		}
		r.Peer = p
	}
	if j.Token != "" {
		t, err := NewTokenID(j.Token)
		if err != nil {
			return Record{}, err
		}
		r.Token = t
	}
	return r, nil
}
