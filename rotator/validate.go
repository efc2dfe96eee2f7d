package rotator

import (
	"errors"
	"fmt"
	"github.com/imdsd/imdsd/internal/shape"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// This file checks STS request parameters before the first call, so that a
// bad configuration fails at start-up with every problem listed instead of
// one ValidationError per attempt. The limits are those of SPEC.md §10
// (the STS model, and the API docs where noted).
//
// Lengths are counted in runes (Unicode code points). STS counts UTF-16 code
// units; the two agree for every character of the Basic Multilingual Plane.
// Only tag keys and values may hold characters beyond it (emoji, rare CJK):
// STS counts those as 2, so a tag this check accepts can, at its very limit,
// still be refused by STS.
//
// What cannot be checked here is left to STS: the role's own maximum session
// duration, the 1 hour cap of role chaining, the packed size of policies and
// tags (PackedPolicyTooLarge), and whether the ARNs name anything.

// fieldError is one invalid STS request parameter. validate* functions
// return them joined with errors.Join; use errors.As to get the first one.
type fieldError struct {
	// Field is the configuration key: role_session_name, duration,
	// policy_arns[2], tags[0].key, …
	Field string
	// Value is what was given, cut to 64 characters and "…". Secrets are
	// never held: for mfa_token_code, web_identity_token, saml_assertion,
	// policy and provided_contexts[i].context_assertion, Value only
	// describes the input ("3 characters"), and for the list fields
	// policy_arns, tags, transitive_tag_keys and provided_contexts it is
	// the number of entries. Those are shown unquoted.
	Value string
	// Rule is the constraint broken, one fixed text per constraint.
	Rule string
}

func (e *fieldError) Error() string {
	switch {
	case e.Value == "" && (e.Rule == ruleRequired || described(e.Field)):
		return e.Field + ": " + e.Rule
	case described(e.Field):
		return fmt.Sprintf("%s: %s (got %s)", e.Field, e.Rule, e.Value)
	}
	return fmt.Sprintf("%s: %s (got %q)", e.Field, e.Rule, e.Value)
}

// described reports whether the Value of field describes the input rather
// than holding it (see fieldError.Value).
func described(field string) bool {
	switch field {
	case "policy_arns", "tags", "transitive_tag_keys", "provided_contexts":
		return true
	}
	switch field[strings.LastIndexByte(field, '.')+1:] {
	case "mfa_token_code", "web_identity_token", "saml_assertion", "policy", "context_assertion":
		return true
	}
	return false
}

// Rule texts. \w is ASCII [A-Za-z0-9_] as in the STS model's patterns.
const (
	ruleRequired          = "required"
	ruleRoleARN           = "an IAM role ARN such as arn:aws:iam::123456789012:role/NAME"
	ruleSAMLProviderARN   = "an IAM SAML provider ARN such as arn:aws:iam::123456789012:saml-provider/NAME"
	ruleSourceIdentityAWS = `must not start with "aws:", which AWS reserves`
	rulePolicyChars       = "only tab, newline, carriage return and U+0020..U+00FF"
	rulePolicyARNCount    = "at most 10 policy ARNs"
	ruleTagCount          = "at most 50 tags"
	ruleTagUnique         = "unique among tags, ignoring case"
	ruleTransitiveCount   = "at most 50 keys"
	ruleTransitiveTagged  = "one of the keys in tags"
	ruleContextCount      = "1..5 contexts"
	ruleMinTokenSize      = "0..4096 bytes"
)

// strRule is a length range and a character class, reported as one rule.
type strRule struct {
	rule     string
	min, max int
	char     func(rune) bool // nil: any character
}

var (
	sessionNameRule    = strRule{`2..64 characters of [\w+=,.@-]`, 2, 64, isNameChar}
	sourceIdentityRule = sessionNameRule
	federationNameRule = strRule{`2..32 characters of [\w+=,.@-]`, 2, 32, isNameChar}
	externalIDRule     = strRule{`2..1224 characters of [\w+=,.@:/-]`, 2, 1224, isExternalIDChar}
	serialNumberRule   = strRule{`9..256 characters of [\w+=/:,.@-]`, 9, 256, isSerialChar}
	tokenCodeRule      = strRule{"exactly 6 digits", 6, 6, isDigit}
	arnRule            = strRule{"20..2048 characters", 20, 2048, nil}
	policyLengthRule   = strRule{"1..2048 characters", 1, maxPolicy, nil}
	tagKeyRule         = strRule{`1..128 characters of [\p{L}\p{Z}\p{N}_.:/=+\-@]`, 1, 128, isTagChar}
	tagValueRule       = strRule{`0..256 characters of [\p{L}\p{Z}\p{N}_.:/=+\-@]`, 0, 256, isTagChar}
	samlAssertionRule  = strRule{"4..100000 characters", 4, 100000, nil}
	webIdentityRule    = strRule{"4..20000 characters", 4, 20000, nil}
	providerIDRule     = strRule{"4..2048 characters", 4, 2048, nil}
	contextRule        = strRule{"4..2048 characters", 4, 2048, nil}
)

// maxPolicy bounds the inline session policy of every API. The docs say the
// plaintext of the inline and the managed session policies together must
// not exceed 2048 characters; the model has that maximum on Policy for all
// APIs but AssumeRole, whose docs still state it. The text of managed
// policies lives in IAM, not in the request, so only the inline document
// can be checked here; STS measures the rest as the packed size.
const maxPolicy = 2048

// Session duration ranges in seconds (SPEC.md §10).
const (
	minDuration     = 900    // 15m, all APIs
	maxRoleDuration = 43200  // 12h: AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity
	maxUserDuration = 129600 // 36h: GetSessionToken, GetFederationToken
)

const (
	maxPolicyARNs        = 10 // docs
	maxTags              = 50
	maxTransitiveTagKeys = 50
	maxProvidedContexts  = 5
	maxMinTokenSize      = 4096 // MinimumSessionTokenSize, docs
)

// validateAssumeRole reports every problem of in that STS would reject.
func validateAssumeRole(in *sts.AssumeRoleInput) error {
	if in == nil {
		in = &sts.AssumeRoleInput{}
	}
	var c checker
	c.arn("role_arn", in.RoleArn, "role", true, 64, ruleRoleARN)
	c.required("role_session_name", in.RoleSessionName, sessionNameRule)
	c.duration(in.DurationSeconds, "AssumeRole", maxRoleDuration)
	c.optional("external_id", in.ExternalId, externalIDRule)
	c.optional("mfa_serial", in.SerialNumber, serialNumberRule)
	c.optional("mfa_token_code", in.TokenCode, tokenCodeRule)
	c.sourceIdentity(in.SourceIdentity)
	c.policies(in.Policy, in.PolicyArns)
	tagged := c.tags(in.Tags)
	c.transitiveTagKeys(in.TransitiveTagKeys, tagged)
	c.providedContexts(in.ProvidedContexts)
	c.minTokenSize(in.MinimumSessionTokenSize)
	return c.err()
}

// validateAssumeRoleWithWebIdentity reports every problem of in that STS
// would reject.
func validateAssumeRoleWithWebIdentity(in *sts.AssumeRoleWithWebIdentityInput) error {
	if in == nil {
		in = &sts.AssumeRoleWithWebIdentityInput{}
	}
	var c checker
	c.arn("role_arn", in.RoleArn, "role", true, 64, ruleRoleARN)
	c.required("role_session_name", in.RoleSessionName, sessionNameRule)
	c.required("web_identity_token", in.WebIdentityToken, webIdentityRule)
	c.optional("provider_id", in.ProviderId, providerIDRule)
	c.duration(in.DurationSeconds, "AssumeRoleWithWebIdentity", maxRoleDuration)
	c.policies(in.Policy, in.PolicyArns)
	c.minTokenSize(in.MinimumSessionTokenSize)
	return c.err()
}

// validateAssumeRoleWithSAML reports every problem of in that STS would
// reject.
func validateAssumeRoleWithSAML(in *sts.AssumeRoleWithSAMLInput) error {
	if in == nil {
		in = &sts.AssumeRoleWithSAMLInput{}
	}
	var c checker
	c.arn("role_arn", in.RoleArn, "role", true, 64, ruleRoleARN)
	c.arn("saml_principal_arn", in.PrincipalArn, "saml-provider", false, 128, ruleSAMLProviderARN)
	c.required("saml_assertion", in.SAMLAssertion, samlAssertionRule)
	c.duration(in.DurationSeconds, "AssumeRoleWithSAML", maxRoleDuration)
	c.policies(in.Policy, in.PolicyArns)
	c.minTokenSize(in.MinimumSessionTokenSize)
	return c.err()
}

// validateGetSessionToken reports every problem of in that STS would reject.
func validateGetSessionToken(in *sts.GetSessionTokenInput) error {
	if in == nil {
		in = &sts.GetSessionTokenInput{}
	}
	var c checker
	c.duration(in.DurationSeconds, "GetSessionToken", maxUserDuration)
	c.optional("mfa_serial", in.SerialNumber, serialNumberRule)
	c.optional("mfa_token_code", in.TokenCode, tokenCodeRule)
	c.minTokenSize(in.MinimumSessionTokenSize)
	return c.err()
}

// validateGetFederationToken reports every problem of in that STS would
// reject. A request without session policies is not one: STS accepts it,
// and resource-based policies naming the federated user grant such a
// session access (see FederationToken.Warnings).
func validateGetFederationToken(in *sts.GetFederationTokenInput) error {
	if in == nil {
		in = &sts.GetFederationTokenInput{}
	}
	var c checker
	c.required("federation_name", in.Name, federationNameRule)
	c.duration(in.DurationSeconds, "GetFederationToken", maxUserDuration)
	c.policies(in.Policy, in.PolicyArns)
	c.tags(in.Tags)
	c.minTokenSize(in.MinimumSessionTokenSize)
	return c.err()
}

// validateRoleSessionName returns a *fieldError for role_session_name when
// s is not 2..64 characters of [\w+=,.@-], else nil.
func validateRoleSessionName(s string) error {
	if sessionNameRule.ok(s) {
		return nil
	}
	return &fieldError{Field: "role_session_name", Value: shorten(s), Rule: sessionNameRule.rule}
}

// DefaultRoleSessionName derives a valid role session name from a user and
// a host name, such as "imdsd-alice@laptop": characters STS refuses become
// "-", and the result is cut to 64 characters. Empty parts are left out.
func DefaultRoleSessionName(user, host string) string {
	s := "imdsd"
	if user != "" {
		s += "-" + user
	}
	if host != "" {
		s += "@" + host
	}
	b := make([]byte, 0, sessionNameRule.max)
	for _, r := range s { // invalid UTF-8 arrives as utf8.RuneError, replaced too
		if len(b) == sessionNameRule.max {
			break
		}
		if isNameChar(r) {
			b = append(b, byte(r)) // name characters are ASCII
		} else {
			b = append(b, '-')
		}
	}
	for len(b) < sessionNameRule.min { // unreachable with the prefix; kept as the contract
		b = append(b, '-')
	}
	return string(b)
}

// checker collects fieldErrors in the order the checks run.
type checker struct{ errs []error }

func (c *checker) add(field, value, rule string) {
	c.errs = append(c.errs, &fieldError{Field: field, Value: value, Rule: rule})
}

func (c *checker) err() error { return errors.Join(c.errs...) }

// bad records s as breaking r, showing it unless field holds a secret.
func (c *checker) bad(field, s, rule string) {
	if described(field) {
		c.add(field, characters(utf8.RuneCountInString(s)), rule)
		return
	}
	c.add(field, shorten(s), rule)
}

// required checks a member STS needs; nil and "" are both missing.
func (c *checker) required(field string, p *string, r strRule) {
	if p == nil || *p == "" {
		c.add(field, "", ruleRequired)
		return
	}
	c.optional(field, p, r)
}

// optional checks a member when it is set; "" is sent, and checked.
func (c *checker) optional(field string, p *string, r strRule) {
	if p != nil && !r.ok(*p) {
		c.bad(field, *p, r.rule)
	}
}

// arn checks a required ARN: its shape first, which also rules out the
// short ones, then the model's 20..2048 characters.
// arn checks an ARN's shape: re matches it with the name as its first
// group, of at most maxName characters.
// arn checks an IAM ARN of the resource type typ (with an optional path
// when withPath) whose name is at most maxName long.
func (c *checker) arn(field string, p *string, typ string, withPath bool, maxName int, shapeRule string) {
	var name string
	ok := false
	if p != nil {
		name, ok = shape.IAMARN(*p, typ, withPath)
	}
	switch {
	case p == nil || *p == "":
		c.add(field, "", ruleRequired)
	case !ok || len(name) > maxName:
		c.bad(field, *p, shapeRule)
	case !arnRule.ok(*p):
		c.bad(field, *p, arnRule.rule)
	}
}

func (c *checker) duration(p *int32, api string, maxSeconds int32) {
	if p == nil || (*p >= minDuration && *p <= maxSeconds) {
		return
	}
	rule := fmt.Sprintf("%s..%s for %s", shortDuration(minDuration), shortDuration(maxSeconds), api)
	c.add("duration", (time.Duration(*p) * time.Second).String(), rule)
}

func (c *checker) sourceIdentity(p *string) {
	switch {
	case p == nil:
	case len(*p) >= 4 && strings.EqualFold((*p)[:4], "aws:"):
		c.bad("source_identity", *p, ruleSourceIdentityAWS)
	case !sourceIdentityRule.ok(*p):
		c.bad("source_identity", *p, sourceIdentityRule.rule)
	}
}

// policies checks the inline session policy and the managed policy ARNs.
func (c *checker) policies(policy *string, arns []types.PolicyDescriptorType) {
	if policy != nil {
		s := *policy
		n := utf8.RuneCountInString(s)
		if !policyLengthRule.ok(s) {
			c.add("policy", characters(n), policyLengthRule.rule)
		}
		// Name the first bad character: a typographic quote pasted into a
		// JSON policy is the usual cause, and a code point leaks nothing.
		i := 0
		for _, r := range s {
			i++
			if !isPolicyChar(r) {
				c.add("policy", fmt.Sprintf("%s, U+%04X at character %d", characters(n), r, i), rulePolicyChars)
				break
			}
		}
	}
	if len(arns) > maxPolicyARNs {
		c.add("policy_arns", strconv.Itoa(len(arns)), rulePolicyARNCount)
	}
	for i, a := range arns {
		c.required(fmt.Sprintf("policy_arns[%d]", i), a.Arn, arnRule)
	}
}

// tags checks session tags and returns their keys, folded.
func (c *checker) tags(tags []types.Tag) map[string]bool {
	if len(tags) > maxTags {
		c.add("tags", strconv.Itoa(len(tags)), ruleTagCount)
	}
	keys := make(map[string]bool, len(tags))
	for i, t := range tags {
		field := fmt.Sprintf("tags[%d].key", i)
		switch {
		case t.Key == nil:
			c.add(field, "", ruleRequired)
		case !tagKeyRule.ok(*t.Key):
			c.bad(field, *t.Key, tagKeyRule.rule)
		case keys[fold(*t.Key)]:
			// STS: "you cannot have separate Department and department tag keys".
			c.bad(field, *t.Key, ruleTagUnique)
		}
		if t.Key != nil {
			keys[fold(*t.Key)] = true
		}
		field = fmt.Sprintf("tags[%d].value", i)
		if t.Value == nil {
			c.add(field, "", ruleRequired) // required by the model, may be ""
		} else if !tagValueRule.ok(*t.Value) {
			c.bad(field, *t.Value, tagValueRule.rule)
		}
	}
	return keys
}

// transitiveTagKeys checks keys against the charset and the tags of the
// same request: a transitive key marks one of the session tags passed with
// it (IAM User Guide, "Chaining roles with session tags",
// id_session-tags.html#id_session-tags_role-chaining), and STS refuses a
// key that is not among them. Tag keys ignore case, so the match does too.
func (c *checker) transitiveTagKeys(keys []string, tagged map[string]bool) {
	if len(keys) > maxTransitiveTagKeys {
		c.add("transitive_tag_keys", strconv.Itoa(len(keys)), ruleTransitiveCount)
	}
	for i, k := range keys {
		field := fmt.Sprintf("transitive_tag_keys[%d]", i)
		switch {
		case !tagKeyRule.ok(k):
			c.bad(field, k, tagKeyRule.rule)
		case !tagged[fold(k)]:
			c.bad(field, k, ruleTransitiveTagged)
		}
	}
}

// providedContexts checks trusted context assertions. The model bounds the
// list to 1..5 and an empty non-nil list is still sent ("ProvidedContexts="),
// so it counts. Both members are optional in the model, but a context is
// useless without either, so both are required here.
func (c *checker) providedContexts(pcs []types.ProvidedContext) {
	if pcs != nil && (len(pcs) == 0 || len(pcs) > maxProvidedContexts) {
		c.add("provided_contexts", strconv.Itoa(len(pcs)), ruleContextCount)
	}
	for i, pc := range pcs {
		c.required(fmt.Sprintf("provided_contexts[%d].provider_arn", i), pc.ProviderArn, arnRule)
		c.required(fmt.Sprintf("provided_contexts[%d].context_assertion", i), pc.ContextAssertion, contextRule)
	}
}

func (c *checker) minTokenSize(p *int32) {
	if p != nil && (*p < 0 || *p > maxMinTokenSize) {
		c.add("minimum_session_token_size", strconv.Itoa(int(*p)), ruleMinTokenSize)
	}
}

func (r strRule) ok(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < r.min || n > r.max {
		return false
	}
	if r.char != nil {
		for _, c := range s {
			if !r.char(c) {
				return false
			}
		}
	}
	return true
}

// shorten cuts s to 64 characters for display, marking the cut with "…".
func shorten(s string) string {
	const show = 64
	if utf8.RuneCountInString(s) <= show {
		return s
	}
	i, n := 0, 0
	for i = range s {
		if n == show {
			break
		}
		n++
	}
	return s[:i] + "…"
}

func characters(n int) string {
	if n == 1 {
		return "1 character"
	}
	return strconv.Itoa(n) + " characters"
}

// shortDuration renders seconds as a Go duration without zero units:
// 900 → 15m, 43200 → 12h.
func shortDuration(seconds int32) string {
	s := (time.Duration(seconds) * time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// fold is the case-insensitive form of a tag key.
func fold(s string) string { return strings.ToLower(s) }

// isWord is \w in the STS model's patterns: ASCII only.
func isWord(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// isNameChar is [\w+=,.@-]: RoleSessionName, SourceIdentity, Name.
func isNameChar(r rune) bool { return isWord(r) || strings.ContainsRune("+=,.@-", r) }

// isExternalIDChar is [\w+=,.@:/-].
func isExternalIDChar(r rune) bool { return isWord(r) || strings.ContainsRune("+=,.@:/-", r) }

// isSerialChar is [\w+=/:,.@-].
func isSerialChar(r rune) bool { return isWord(r) || strings.ContainsRune("+=/:,.@-", r) }

// isTagChar is [\p{L}\p{Z}\p{N}_.:/=+\-@].
func isTagChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Z, r) || unicode.IsNumber(r) || strings.ContainsRune("_.:/=+-@", r)
}

// isPolicyChar is tab, line feed, carriage return and U+0020..U+00FF.
func isPolicyChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xff
}
