package ststest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDate      = "20060102T150405Z"
)

// sigV4 is a parsed SigV4 Authorization header.
type sigV4 struct {
	accessKeyID   string
	scope         string // date/region/service/aws4_request
	date          string
	region        string
	service       string
	signedHeaders []string
	signature     string
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…". It reports problems with the messages real AWS front ends
// use for IncompleteSignature.
func parseAuthorization(h string) (sigV4, *apiError) {
	alg, rest, _ := strings.Cut(h, " ")
	if alg != sigAlgorithm {
		return sigV4{}, errf(http.StatusBadRequest, "IncompleteSignature", "Unsupported AWS 'algorithm': '%s'.", alg)
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = v
		}
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if fields[k] == "" {
			missing = append(missing, "Authorization header requires '"+k+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return sigV4{}, errf(http.StatusBadRequest, "IncompleteSignature", "%s Authorization=%s", strings.Join(missing, " "), h)
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[0] == "" || cred[4] != "aws4_request" {
		return sigV4{}, errf(http.StatusBadRequest, "IncompleteSignature", "Authorization header credential is malformed: '%s'.", fields["Credential"])
	}
	return sigV4{
		accessKeyID:   cred[0],
		scope:         strings.Join(cred[1:], "/"),
		date:          cred[1],
		region:        cred[2],
		service:       cred[3],
		signedHeaders: strings.Split(fields["SignedHeaders"], ";"),
		signature:     fields["Signature"],
	}, nil
}

// signingKey returns the access key ID named by a SigV4 Authorization
// header, or "" if there is none.
func signingKey(h string) string {
	sig, err := parseAuthorization(h)
	if err != nil {
		return ""
	}
	return sig.accessKeyID
}

// authenticate checks the SigV4 signature of r against the key it names and
// returns the key's owner.
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) (*principal, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	sig, apiErr := parseAuthorization(h)
	if apiErr != nil {
		return nil, apiErr
	}
	if sig.service != "sts" {
		return nil, errf(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'.")
	}
	if !slices.Contains(sig.signedHeaders, "host") {
		return nil, errf(http.StatusBadRequest, "IncompleteSignature", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	date := r.Header.Get("X-Amz-Date")
	if date == "" {
		if t, err := http.ParseTime(r.Header.Get("Date")); err == nil {
			date = t.UTC().Format(amzDate)
		}
	}
	if date == "" {
		return nil, errf(http.StatusBadRequest, "IncompleteSignature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=%s", h)
	}
	if !strings.HasPrefix(date, sig.date+"T") {
		return nil, errf(http.StatusForbidden, "SignatureDoesNotMatch", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%.8s', from '%s'.", sig.date, date, date)
	}

	p, ok := s.lookupKey(sig.accessKeyID)
	// A temporary key is only valid with its session token, and a long-term
	// key must not carry one.
	if !ok || r.Header.Get("X-Amz-Security-Token") != p.token {
		return nil, errf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
	}
	if !p.expires.IsZero() && !now.Before(p.expires) {
		return nil, errf(http.StatusForbidden, "ExpiredToken", "The security token included in the request is expired")
	}
	want := signature(p.secret, sig, date, canonicalRequest(r, sig.signedHeaders, body))
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return nil, errf(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return p, nil
}

// signature computes the SigV4 signature of a canonical request.
func signature(secret string, sig sigV4, date, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	toSign := sigAlgorithm + "\n" + date + "\n" + sig.scope + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, part := range []string{sig.date, sig.region, sig.service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalRequest builds the SigV4 canonical request of r as the server
// received it.
func canonicalRequest(r *http.Request, signed []string, body []byte) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(awsEscape(path, false) + "\n")
	b.WriteString(canonicalQuery(r.URL.RawQuery) + "\n")
	for _, name := range signed {
		var vals []string
		switch name {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			vals = slices.Clone(r.Header.Values(name))
			if len(vals) == 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		default:
			vals = slices.Clone(r.Header.Values(name))
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n")
	sum := sha256.Sum256(body)
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.String()
}

// canonicalQuery sorts and re-escapes a query string the SigV4 way.
func canonicalQuery(raw string) string {
	q, _ := url.ParseQuery(raw)
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		vs := slices.Clone(q[k])
		slices.Sort(vs)
		for _, v := range vs {
			parts = append(parts, awsEscape(k, true)+"="+awsEscape(v, true))
		}
	}
	return strings.Join(parts, "&")
}

// awsEscape percent-encodes every byte except the RFC 3986 unreserved
// characters (and '/' unless encodeSlash).
func awsEscape(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
