package ststest

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// rule is the constraint of one string parameter (STS-MODEL via SPEC.md §10).
type rule struct {
	field    string // member name in messages, e.g. "roleSessionName"
	min, max int    // length in characters; max 0 = unbounded
	pattern  string // model pattern text, "" = none
	re       *regexp.Regexp
	required bool
}

func newRule(field string, min, max int, pattern string, required bool) rule {
	r := rule{field: field, min: min, max: max, pattern: pattern, required: required}
	if pattern != "" {
		r.re = regexp.MustCompile(`^(?:` + pattern + `)$`)
	}
	return r
}

const (
	namePattern   = `[\w+=,.@-]*`
	tagPattern    = `[\p{L}\p{Z}\p{N}_.:/=+\-@]`
	policyPattern = `[\x{0009}\x{000A}\x{000D}\x{0020}-\x{00FF}]+`
	// maxPolicy is the documented plaintext limit of a session policy.
	maxPolicy = 2048
)

var (
	ruleRoleARN        = newRule("roleArn", 20, 2048, "", true)
	rulePrincipalARN   = newRule("principalArn", 20, 2048, "", true)
	ruleSessionName    = newRule("roleSessionName", 2, 64, namePattern, true)
	ruleExternalID     = newRule("externalId", 2, 1224, `[\w+=,.@:\/-]*`, false)
	ruleSerialNumber   = newRule("serialNumber", 9, 256, `[\w+=/:,.@-]*`, false)
	ruleTokenCode      = newRule("tokenCode", 6, 6, `[\d]*`, false)
	ruleSourceIdentity = newRule("sourceIdentity", 2, 64, namePattern, false)
	rulePolicy         = newRule("policy", 1, maxPolicy, policyPattern, false)
	ruleFederationName = newRule("name", 2, 32, namePattern, true)
	ruleWebIdentity    = newRule("webIdentityToken", 4, 20000, "", true)
	ruleProviderID     = newRule("providerId", 4, 2048, "", false)
	ruleSAMLAssertion  = newRule("sAMLAssertion", 4, 100000, "", true)
	rulePolicyARN      = newRule("arn", 20, 2048, "", false)
	ruleTagKey         = newRule("key", 1, 128, tagPattern+`+`, true)
	ruleTagValue       = newRule("value", 0, 256, tagPattern+`*`, true)
	ruleTransitiveKey  = newRule("member", 1, 128, tagPattern+`+`, false)
)

// validator collects validation errors in the format of real STS:
// "2 validation errors detected: Value 'a' at 'roleSessionName' failed to
// satisfy constraint: Member must have length greater than or equal to 2;
// Value …".
type validator struct {
	params  url.Values
	errs    []string
	dupTags bool // reported on its own, after the constraint errors
}

func (v *validator) fail(value, field, constraint string) {
	v.errs = append(v.errs, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: Member must %s", value, field, constraint))
}

// str checks parameter name against r and returns its value.
func (v *validator) str(name string, r rule) string {
	vals, ok := v.params[name]
	if !ok {
		if r.required {
			v.fail("null", r.field, "not be null")
		}
		return ""
	}
	v.check(vals[0], r, r.field)
	return vals[0]
}

func (v *validator) check(s string, r rule, field string) {
	n := utf8.RuneCountInString(s)
	q := "'" + s + "'"
	switch {
	case n < r.min:
		v.fail(q, field, fmt.Sprintf("have length greater than or equal to %d", r.min))
	case r.max > 0 && n > r.max:
		v.fail(q, field, fmt.Sprintf("have length less than or equal to %d", r.max))
	case r.re != nil && !r.re.MatchString(s):
		v.fail(q, field, "satisfy regular expression pattern: "+r.pattern)
	}
}

// duration checks DurationSeconds against min..max and returns it and
// whether it was present.
func (v *validator) duration(min, max int) (int, bool) {
	vals, ok := v.params["DurationSeconds"]
	if !ok {
		return 0, false
	}
	d, err := strconv.Atoi(vals[0])
	q := "'" + vals[0] + "'"
	switch {
	case err != nil:
		v.fail(q, "durationSeconds", "be an integer")
	case d < min:
		v.fail(q, "durationSeconds", fmt.Sprintf("have value greater than or equal to %d", min))
	case d > max:
		v.fail(q, "durationSeconds", fmt.Sprintf("have value less than or equal to %d", max))
	}
	return d, true
}

// minTokenSize checks MinimumSessionTokenSize (0..4096) and returns it.
func (v *validator) minTokenSize() int {
	vals, ok := v.params["MinimumSessionTokenSize"]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(vals[0])
	q := "'" + vals[0] + "'"
	switch {
	case err != nil:
		v.fail(q, "minimumSessionTokenSize", "be an integer")
	case n < 0:
		v.fail(q, "minimumSessionTokenSize", "have value greater than or equal to 0")
	case n > maxSessionToken:
		v.fail(q, "minimumSessionTokenSize", fmt.Sprintf("have value less than or equal to %d", maxSessionToken))
	}
	return n
}

// members returns the values of list parameter prefix, encoded as
// prefix.member.N[.sub] with N from 1, each as a map from sub ("" for
// scalar lists) to value. An empty list ("Prefix=") yields none.
func (v *validator) members(prefix string, subs ...string) []map[string]string {
	if len(subs) == 0 {
		subs = []string{""}
	}
	var out []map[string]string
	for i := 1; ; i++ {
		m := map[string]string{}
		for _, sub := range subs {
			key := prefix + ".member." + strconv.Itoa(i)
			if sub != "" {
				key += "." + sub
			}
			if vals, ok := v.params[key]; ok {
				m[sub] = vals[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

func listValue(items []string) string {
	return "'[" + strings.Join(items, ", ") + "]'"
}

// policyARNs checks PolicyArns (at most 10, each 20..2048 characters) and
// returns how many there are.
func (v *validator) policyARNs() int {
	ms := v.members("PolicyArns", "arn")
	if len(ms) > 10 {
		v.fail(fmt.Sprintf("'%d items'", len(ms)), "policyArns", "have length less than or equal to 10")
	}
	for i, m := range ms {
		v.check(m["arn"], rulePolicyARN, fmt.Sprintf("policyArns.%d.member.arn", i+1))
	}
	return len(ms)
}

// tags checks Tags (at most 50, keys unique regardless of case) and returns
// how many there are and the total length of their keys and values.
func (v *validator) tags() (n, size int) {
	ms := v.members("Tags", "Key", "Value")
	if len(ms) > 50 {
		v.fail(fmt.Sprintf("'%d items'", len(ms)), "tags", "have length less than or equal to 50")
	}
	seen := map[string]bool{}
	dup := false
	for i, m := range ms {
		for _, sub := range []string{"Key", "Value"} {
			r := ruleTagKey
			if sub == "Value" {
				r = ruleTagValue
			}
			field := fmt.Sprintf("tags.%d.member.%s", i+1, r.field)
			if s, ok := m[sub]; ok {
				v.check(s, r, field)
			} else {
				v.fail("null", field, "not be null")
			}
		}
		k := strings.ToLower(m["Key"])
		dup = dup || seen[k]
		seen[k] = true
		size += len(m["Key"]) + len(m["Value"])
	}
	v.dupTags = dup
	return len(ms), size
}

// transitiveTagKeys checks TransitiveTagKeys (at most 50).
func (v *validator) transitiveTagKeys() {
	ms := v.members("TransitiveTagKeys")
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = m[""]
		v.check(m[""], ruleTransitiveKey, fmt.Sprintf("transitiveTagKeys.%d.member", i+1))
	}
	if len(ms) > 50 {
		v.fail(listValue(keys), "transitiveTagKeys", "have length less than or equal to 50")
	}
}

// err returns the collected errors as one ValidationError, or nil.
func (v *validator) err() *apiError {
	if len(v.errs) == 0 {
		if v.dupTags {
			return errf(http.StatusBadRequest, "ValidationError", msgDuplicateTags)
		}
		return nil
	}
	plural := ""
	if len(v.errs) > 1 {
		plural = "s"
	}
	return errf(http.StatusBadRequest, "ValidationError", "%d validation error%s detected: %s", len(v.errs), plural, strings.Join(v.errs, "; "))
}
