package ststest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// call is one authenticated request to an action.
type call struct {
	params url.Values
	caller *principal // nil for unsigned actions
	now    time.Time
}

type operation struct {
	signed bool // needs a SigV4 signature
	run    func(*Server, call) (any, *apiError)
}

var operations = map[string]operation{
	"AssumeRole":                {signed: true, run: (*Server).assumeRole},
	"AssumeRoleWithWebIdentity": {signed: false, run: (*Server).assumeRoleWithWebIdentity},
	"AssumeRoleWithSAML":        {signed: false, run: (*Server).assumeRoleWithSAML},
	"GetSessionToken":           {signed: true, run: (*Server).getSessionToken},
	"GetFederationToken":        {signed: true, run: (*Server).getFederationToken},
	"GetCallerIdentity":         {signed: true, run: (*Server).getCallerIdentity},
}

const (
	hour = 3600
	// Messages real STS sends for these conditions.
	msgChaining      = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
	msgMaxSession    = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
	msgBadARN        = "Request ARN is invalid"
	msgMFAInvalid    = "MultiFactorAuthentication failed with invalid MFA one time pass code."
	msgMFAUnknown    = "MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA serial number is valid and associated with this user."
	msgBadJWT        = "Couldn't parse web identity token."
	msgBadSAML       = "Invalid SAML Response"
	msgDuplicateTags = "Duplicate tag keys found. Please note that Tag keys are case insensitive."
)

func notAuthorized(caller *principal, action, resource string) *apiError {
	arn := "anonymous"
	if caller != nil {
		arn = caller.arn
	}
	return errf(http.StatusForbidden, "AccessDenied", "User: %s is not authorized to perform: %s on resource: %s", arn, action, resource)
}

// roleARN is a parsed IAM role ARN.
type roleARN struct {
	arn, partition, account, name string
}

func parseRoleARN(arn string) (roleARN, *apiError) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] != "iam" || parts[4] == "" ||
		!strings.HasPrefix(parts[5], "role/") || strings.HasSuffix(parts[5], "/") {
		return roleARN{}, errf(http.StatusBadRequest, "ValidationError", msgBadARN)
	}
	res := parts[5]
	return roleARN{arn: arn, partition: parts[1], account: parts[4], name: res[strings.LastIndex(res, "/")+1:]}, nil
}

// sessionPolicy validates the shared session policy parameters (Policy,
// PolicyArns, Tags) and returns the PackedPolicySize to report, nil if none
// were given.
func sessionPolicy(v *validator) *int {
	policy := v.str("Policy", rulePolicy)
	_, hasPolicy := v.params["Policy"]
	arns := v.policyARNs()
	tags, tagSize := v.tags()
	if !hasPolicy && arns == 0 && tags == 0 {
		return nil
	}
	// The real value is the compressed size as a percentage of an
	// undisclosed limit; this approximation stays within 1..100.
	total := len(policy) + 64*arns + tagSize
	pct := 1 + total*99/(maxPolicy+64*10+50*(128+256))
	return &pct
}

// checkPolicy rejects an inline policy that is not JSON, as IAM does.
func checkPolicy(p url.Values) *apiError {
	if pol, ok := p["Policy"]; ok && !json.Valid([]byte(pol[0])) {
		return errf(http.StatusBadRequest, "MalformedPolicyDocument", "The policy is not in the valid JSON format.")
	}
	return nil
}

// checkMFA validates SerialNumber and TokenCode if given and reports
// whether a valid MFA code was presented.
func (s *Server) checkMFA(p url.Values) (bool, *apiError) {
	serial, hasSerial := p["SerialNumber"]
	code, hasCode := p["TokenCode"]
	if !hasSerial && !hasCode {
		return false, nil
	}
	if !hasSerial {
		return false, errf(http.StatusForbidden, "AccessDenied", msgMFAUnknown)
	}
	valid, ok := s.lookupMFA(serial[0])
	if !ok {
		return false, errf(http.StatusForbidden, "AccessDenied", msgMFAUnknown)
	}
	if !hasCode || !valid(code[0]) {
		return false, errf(http.StatusForbidden, "AccessDenied", msgMFAInvalid)
	}
	return true, nil
}

// roleLimits applies the per-role duration rules and returns the session
// lifetime in seconds.
func (s *Server) roleLimits(role Role, dur int, hasDur, chained bool) (int, *apiError) {
	if !hasDur {
		dur = hour
	}
	if chained && dur > hour {
		return 0, errf(http.StatusBadRequest, "ValidationError", msgChaining)
	}
	limit := int(role.MaxSessionDuration / time.Second)
	if limit == 0 {
		limit = hour
	}
	if dur > limit {
		return 0, errf(http.StatusBadRequest, "ValidationError", msgMaxSession)
	}
	return dur, nil
}

// grant describes a role session to issue.
type grant struct {
	action         string
	role           roleARN
	session        string
	dur            int // seconds
	now            time.Time
	mfa            bool
	packed         *int
	sourceIdentity string
	minToken       int // MinimumSessionTokenSize
}

// issueRole issues role session credentials and builds the shared result
// members.
func (s *Server) issueRole(g grant) assumeRoleFields {
	user := assumedRoleUser{
		Arn:           "arn:" + g.role.partition + ":sts::" + g.role.account + ":assumed-role/" + g.role.name + "/" + g.session,
		AssumedRoleID: "AROA" + stableID(g.role.arn, 17) + ":" + g.session,
	}
	c := s.issue(g.action, &principal{
		kind:    kindRole,
		arn:     user.Arn,
		userID:  user.AssumedRoleID,
		account: g.role.account,
		mfa:     g.mfa,
	}, g.now, time.Duration(g.dur)*time.Second, g.minToken)
	return assumeRoleFields{
		AssumedRoleUser:  user,
		Credentials:      toXML(c),
		PackedPolicySize: g.packed,
		tokenSize:        sizeOf(c),
		SourceIdentity:   g.sourceIdentity,
	}
}

func (s *Server) assumeRole(c call) (any, *apiError) {
	v := &validator{params: c.params}
	arn := v.str("RoleArn", ruleRoleARN)
	session := v.str("RoleSessionName", ruleSessionName)
	dur, hasDur := v.duration(900, 43200)
	minToken := v.minTokenSize()
	v.str("ExternalId", ruleExternalID)
	v.str("SerialNumber", ruleSerialNumber)
	v.str("TokenCode", ruleTokenCode)
	sourceIdentity := v.str("SourceIdentity", ruleSourceIdentity)
	size := sessionPolicy(v)
	v.transitiveTagKeys()
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkPolicy(c.params); err != nil {
		return nil, err
	}
	ra, err := parseRoleARN(arn)
	if err != nil {
		return nil, err
	}
	if c.caller.kind == kindFederated {
		return nil, notAuthorized(c.caller, "sts:AssumeRole", arn)
	}
	role, _ := s.lookupRole(arn)
	if dur, err = s.roleLimits(role, dur, hasDur, c.caller.kind == kindRole); err != nil {
		return nil, err
	}
	if role.ExternalID != "" && c.params.Get("ExternalId") != role.ExternalID {
		return nil, notAuthorized(c.caller, "sts:AssumeRole", arn)
	}
	mfa, err := s.checkMFA(c.params)
	if err != nil {
		return nil, err
	}
	mfa = mfa || c.caller.mfa
	if role.RequireMFA && !mfa {
		return nil, notAuthorized(c.caller, "sts:AssumeRole", arn)
	}
	return assumeRoleResult{assumeRoleFields: s.issueRole(grant{
		action: "AssumeRole", role: ra, session: session, dur: dur, now: c.now,
		mfa: mfa, packed: size, sourceIdentity: sourceIdentity, minToken: minToken,
	})}, nil
}

// jwtClaims are the claims of a web identity token the server uses.
type jwtClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"` // string or array of strings
	Exp *json.Number    `json:"exp"`
}

func (c jwtClaims) audience() string {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return one
	}
	var many []string
	if json.Unmarshal(c.Aud, &many) == nil && len(many) > 0 {
		return many[0]
	}
	return ""
}

// parseJWT decodes the claims of a compact JWS without checking its
// signature.
func parseJWT(token string) (jwtClaims, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwtClaims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return jwtClaims{}, false
	}
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss == "" || c.Sub == "" {
		return jwtClaims{}, false
	}
	return c, true
}

func (s *Server) assumeRoleWithWebIdentity(c call) (any, *apiError) {
	v := &validator{params: c.params}
	arn := v.str("RoleArn", ruleRoleARN)
	session := v.str("RoleSessionName", ruleSessionName)
	token := v.str("WebIdentityToken", ruleWebIdentity)
	providerID := v.str("ProviderId", ruleProviderID)
	dur, hasDur := v.duration(900, 43200)
	minToken := v.minTokenSize()
	size := sessionPolicy(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkPolicy(c.params); err != nil {
		return nil, err
	}
	ra, err := parseRoleARN(arn)
	if err != nil {
		return nil, err
	}
	claims, ok := parseJWT(token)
	if !ok {
		return nil, errf(http.StatusBadRequest, "InvalidIdentityToken", msgBadJWT)
	}
	if claims.Exp != nil {
		exp, err := claims.Exp.Int64()
		if err != nil {
			return nil, errf(http.StatusBadRequest, "InvalidIdentityToken", msgBadJWT)
		}
		if c.now.Unix() >= exp {
			return nil, errf(http.StatusBadRequest, "ExpiredTokenException", "Token expired: current date/time %d must be before the expiration date/time %d", c.now.Unix(), exp)
		}
	}
	role, _ := s.lookupRole(arn)
	if role.WebIdentityAudience != "" && claims.audience() != role.WebIdentityAudience {
		return nil, errf(http.StatusBadRequest, "InvalidIdentityToken", "Incorrect token audience")
	}
	if dur, err = s.roleLimits(role, dur, hasDur, false); err != nil {
		return nil, err
	}
	provider := providerID
	if provider == "" {
		provider = "arn:" + ra.partition + ":iam::" + ra.account + ":oidc-provider/" + strings.TrimPrefix(claims.Iss, "https://")
	}
	return webIdentityResult{
		SubjectFromWebIdentityToken: claims.Sub,
		Audience:                    claims.audience(),
		assumeRoleFields: s.issueRole(grant{
			action: "AssumeRoleWithWebIdentity", role: ra, session: session, dur: dur, now: c.now,
			packed: size, minToken: minToken,
		}),
		Provider: provider,
	}, nil
}

// samlResponse holds the parts of a SAML 2.0 Response the server uses.
// Names match by local name, whatever the namespace prefixes.
type samlResponse struct {
	XMLName   xml.Name
	Assertion struct {
		Issuer string `xml:"Issuer"`
		NameID struct {
			Format string `xml:"Format,attr"`
			Value  string `xml:",chardata"`
		} `xml:"Subject>NameID"`
		Conditions struct {
			NotOnOrAfter string   `xml:"NotOnOrAfter,attr"`
			Audience     []string `xml:"AudienceRestriction>Audience"`
		} `xml:"Conditions"`
		Attributes []struct {
			Name   string   `xml:"Name,attr"`
			Values []string `xml:"AttributeValue"`
		} `xml:"AttributeStatement>Attribute"`
	} `xml:"Assertion"`
}

const samlSessionAttr = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"

func (s *Server) assumeRoleWithSAML(c call) (any, *apiError) {
	v := &validator{params: c.params}
	arn := v.str("RoleArn", ruleRoleARN)
	principalARN := v.str("PrincipalArn", rulePrincipalARN)
	assertion := v.str("SAMLAssertion", ruleSAMLAssertion)
	dur, hasDur := v.duration(900, 43200)
	minToken := v.minTokenSize()
	size := sessionPolicy(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkPolicy(c.params); err != nil {
		return nil, err
	}
	ra, err := parseRoleARN(arn)
	if err != nil {
		return nil, err
	}
	raw, decErr := base64.StdEncoding.DecodeString(assertion)
	var doc samlResponse
	if decErr != nil || xml.Unmarshal(raw, &doc) != nil || doc.XMLName.Local != "Response" ||
		doc.Assertion.Issuer == "" || doc.Assertion.NameID.Value == "" {
		return nil, errf(http.StatusBadRequest, "InvalidIdentityToken", msgBadSAML)
	}
	a := doc.Assertion
	if a.Conditions.NotOnOrAfter != "" {
		t, err := time.Parse(time.RFC3339, a.Conditions.NotOnOrAfter)
		if err != nil {
			return nil, errf(http.StatusBadRequest, "InvalidIdentityToken", msgBadSAML)
		}
		if !c.now.Before(t) {
			return nil, errf(http.StatusBadRequest, "ExpiredTokenException", "Token expired: current date/time %d must be before the expiration date/time %d", c.now.Unix(), t.Unix())
		}
	}
	var session string
	for _, at := range a.Attributes {
		if at.Name == samlSessionAttr && len(at.Values) > 0 {
			session = at.Values[0]
		}
	}
	if session == "" {
		return nil, errf(http.StatusBadRequest, "InvalidIdentityToken", "RoleSessionName is required in AuthnResponse")
	}
	sv := &validator{params: url.Values{"RoleSessionName": {session}}}
	if sv.str("RoleSessionName", ruleSessionName); sv.err() != nil {
		return nil, errf(http.StatusBadRequest, "InvalidIdentityToken", "Invalid RoleSessionName in AuthnResponse")
	}
	role, _ := s.lookupRole(arn)
	if dur, err = s.roleLimits(role, dur, hasDur, false); err != nil {
		return nil, err
	}
	audience := "https://signin.aws.amazon.com/saml"
	if len(a.Conditions.Audience) > 0 {
		audience = a.Conditions.Audience[0]
	}
	subjectType := strings.TrimPrefix(a.NameID.Format, "urn:oasis:names:tc:SAML:2.0:nameid-format:")
	// NameQualifier = Base64(SHA1(Issuer + AccountID + "/" + provider
	// name)), as documented for AssumeRoleWithSAML.
	provider := principalARN[strings.LastIndex(principalARN, "/")+1:]
	sum := sha1.Sum([]byte(a.Issuer + arnAccount(principalARN) + "/" + provider))
	return samlResult{
		assumeRoleFields: s.issueRole(grant{
			action: "AssumeRoleWithSAML", role: ra, session: session, dur: dur, now: c.now,
			packed: size, minToken: minToken,
		}),
		Audience:      audience,
		Issuer:        a.Issuer,
		Subject:       a.NameID.Value,
		SubjectType:   subjectType,
		NameQualifier: base64.StdEncoding.EncodeToString(sum[:]),
	}, nil
}

// rootCap is the silent one-hour cap STS applies to sessions of the root
// user.
func rootCap(caller *principal, dur int) int {
	if strings.HasSuffix(caller.arn, ":root") && dur > hour {
		return hour
	}
	return dur
}

func (s *Server) getSessionToken(c call) (any, *apiError) {
	v := &validator{params: c.params}
	dur, hasDur := v.duration(900, 129600)
	minToken := v.minTokenSize()
	v.str("SerialNumber", ruleSerialNumber)
	v.str("TokenCode", ruleTokenCode)
	if err := v.err(); err != nil {
		return nil, err
	}
	if c.caller.kind != kindUser {
		return nil, errf(http.StatusForbidden, "AccessDenied", "Cannot call GetSessionToken with session credentials")
	}
	mfa, err := s.checkMFA(c.params)
	if err != nil {
		return nil, err
	}
	if !hasDur {
		dur = 12 * hour
	}
	cred := s.issue("GetSessionToken", &principal{
		kind:    kindSession,
		arn:     c.caller.arn,
		userID:  c.caller.userID,
		account: c.caller.account,
		mfa:     mfa,
	}, c.now, time.Duration(rootCap(c.caller, dur))*time.Second, minToken)
	return sessionTokenResult{Credentials: toXML(cred), tokenSize: sizeOf(cred)}, nil
}

func (s *Server) getFederationToken(c call) (any, *apiError) {
	v := &validator{params: c.params}
	name := v.str("Name", ruleFederationName)
	dur, hasDur := v.duration(900, 129600)
	minToken := v.minTokenSize()
	size := sessionPolicy(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkPolicy(c.params); err != nil {
		return nil, err
	}
	if c.caller.kind != kindUser {
		return nil, errf(http.StatusForbidden, "AccessDenied", "Cannot call GetFederationToken with session credentials")
	}
	if !hasDur {
		dur = 12 * hour
	}
	partition := "aws"
	if parts := strings.SplitN(c.caller.arn, ":", 3); len(parts) == 3 && parts[1] != "" {
		partition = parts[1]
	}
	user := federatedUser{
		FederatedUserID: c.caller.account + ":" + name,
		Arn:             "arn:" + partition + ":sts::" + c.caller.account + ":federated-user/" + name,
	}
	cred := s.issue("GetFederationToken", &principal{
		kind:    kindFederated,
		arn:     user.Arn,
		userID:  user.FederatedUserID,
		account: c.caller.account,
	}, c.now, time.Duration(rootCap(c.caller, dur))*time.Second, minToken)
	return federationTokenResult{Credentials: toXML(cred), FederatedUser: user, PackedPolicySize: size, tokenSize: sizeOf(cred)}, nil
}

func (s *Server) getCallerIdentity(c call) (any, *apiError) {
	return callerIdentityResult{Arn: c.caller.arn, UserID: c.caller.userID, Account: c.caller.account}, nil
}
