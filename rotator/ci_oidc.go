package rotator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const (
	// DefaultOIDCAudience is the audience AWS STS expects in a web
	// identity token when the IAM OIDC provider uses the default client ID.
	DefaultOIDCAudience = "sts.amazonaws.com"

	githubTimeout   = 10 * time.Second
	githubErrorBody = 256 // bytes of a non-200 answer quoted in the error
)

// GitHubActionsInput returns an Input that fetches a new OIDC token from the
// GitHub Actions runtime on every call, the way @actions/core getIDToken
// does: GET $ACTIONS_ID_TOKEN_REQUEST_URL with the audience added to its
// query, "Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN", answer
// {"count":…,"value":"<jwt>"}. Both variables exist only in jobs granted
// "permissions: id-token: write".
//
// audience defaults to [DefaultOIDCAudience], getenv to os.Getenv and client
// to a plain *http.Client. When the client has no Timeout, each request is
// bounded to 10s. The variables are read at every call. The request token
// never appears in an error.
func GitHubActionsInput(audience string, getenv func(string) string, client *http.Client) Input {
	if audience == "" {
		audience = DefaultOIDCAudience
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if client == nil {
		client = &http.Client{Timeout: githubTimeout}
	}
	return &githubInput{audience: audience, getenv: getenv, client: client}
}

type githubInput struct {
	audience string
	getenv   func(string) string
	client   *http.Client
}

const githubPrefix = "GitHub Actions OIDC: "

func (g *githubInput) Get(ctx context.Context) (string, error) {
	for _, v := range []string{"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"} {
		if g.getenv(v) == "" {
			return "", fmt.Errorf(githubPrefix+`%s is not set; give the job "permissions: id-token: write"`, v)
		}
	}
	reqToken := g.getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	u, err := url.Parse(g.getenv("ACTIONS_ID_TOKEN_REQUEST_URL"))
	if err != nil {
		return "", fmt.Errorf(githubPrefix+"parse ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf(githubPrefix+"ACTIONS_ID_TOKEN_REQUEST_URL is not an http(s) URL (got scheme %q)", u.Scheme)
	}
	// The runtime's URL already carries "?api-version=…"; @actions/core
	// appends "&audience=…". url.Values does the same and also copes with a
	// URL without a query.
	q := u.Query()
	q.Set("audience", g.audience)
	u.RawQuery = q.Encode()

	if g.client.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, githubTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf(githubPrefix+"build token request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+reqToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "imdsd")

	resp, err := g.client.Do(req)
	if err != nil {
		// *url.Error names the URL, which holds no secret (the request
		// token travels only in the header).
		return "", fmt.Errorf(githubPrefix+"request token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInputSize+1))
	if err != nil {
		return "", fmt.Errorf(githubPrefix+"read token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// GitHub's error bodies do not echo the bearer token, but a
		// proxy in between might: never let it through (redact before
		// cutting, so that no prefix of it survives either).
		msg := strings.ReplaceAll(string(body), reqToken, "[redacted]")
		if len(msg) > githubErrorBody {
			msg = msg[:githubErrorBody]
		}
		msg = strings.Join(strings.Fields(strings.ToValidUTF8(msg, "\uFFFD")), " ")
		return "", &httpStatusError{status: resp.Status, code: resp.StatusCode, body: msg}
	}
	if len(body) > maxInputSize {
		return "", fmt.Errorf(githubPrefix+"token response is larger than %d bytes", maxInputSize)
	}
	var answer struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		// Syntax errors quote at most one character of the input.
		return "", fmt.Errorf(githubPrefix+"decode token response: %w", err)
	}
	tok := strings.TrimSpace(answer.Value)
	if tok == "" {
		return "", errors.New(githubPrefix + "token response has no value")
	}
	if !looksLikeJWT(tok) {
		return "", errors.New(githubPrefix + "token in the response is not a JWT")
	}
	return tok, nil
}

// httpStatusError is a non-200 answer from the token endpoint. Its
// HTTPStatusCode method lets Classify retry 5xx and 429 soon.
type httpStatusError struct {
	status string
	code   int
	body   string
}

func (e *httpStatusError) Error() string {
	s := githubPrefix + "token request returned " + e.status
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

func (e *httpStatusError) HTTPStatusCode() int { return e.code }

// DefaultGitLabOIDCVariable is the variable GitLabInput reads by default.
const DefaultGitLabOIDCVariable = "GITLAB_OIDC_TOKEN"

// GitLabInput returns an Input that reads the OIDC token GitLab CI puts in
// variable, the name declared under `id_tokens:` in .gitlab-ci.yml (with
// `aud: sts.amazonaws.com`). variable defaults to GITLAB_OIDC_TOKEN and
// getenv to os.Getenv; it is read at every call, never cached.
func GitLabInput(variable string, getenv func(string) string) Input {
	if variable == "" {
		variable = DefaultGitLabOIDCVariable
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	return &gitlabInput{variable: variable, getenv: getenv}
}

type gitlabInput struct {
	variable string
	getenv   func(string) string
}

func (g *gitlabInput) Get(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("GitLab CI OIDC: %w", err)
	}
	tok := strings.TrimSpace(g.getenv(g.variable))
	if tok == "" {
		return "", fmt.Errorf("GitLab CI OIDC: $%s is empty; declare it under id_tokens: in .gitlab-ci.yml", g.variable)
	}
	if !looksLikeJWT(tok) {
		return "", fmt.Errorf("GitLab CI OIDC: $%s is not a JWT", g.variable)
	}
	return tok, nil
}

// looksLikeJWT reports whether s has the shape of a signed compact JWS:
// three non-empty base64url parts separated by dots. It catches the wrong
// variable or file early, with an error that does not echo the value.
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
