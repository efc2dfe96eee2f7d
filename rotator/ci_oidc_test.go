package rotator_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imdsd/imdsd/rotator"
)

const (
	// ciTestJWT has the shape of a JWT (the sanity check looks no further).
	ciTestJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm8vcjpyZWY6cmVmcy9oZWFkcy9tYWluIn0.c2lnbmF0dXJlLXNpZw"
	// ghRequestToken is the runner's bearer token: a secret.
	ghRequestToken = "REQTOKEN-5ecr3t"
)

func inputEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// ghServer is a fake GitHub Actions ID token endpoint that records the
// requests it saw.
type ghServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newGHServer(t *testing.T, h http.HandlerFunc) *ghServer {
	t.Helper()
	ts := &ghServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.reqs = append(ts.reqs, r.Clone(context.Background()))
		ts.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *ghServer) requests() []*http.Request {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]*http.Request(nil), ts.reqs...)
}

func ghAnswer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestGitHubActionsInputRequest(t *testing.T) {
	tests := []struct {
		name      string
		path      string // appended to the server URL: the runtime's URL
		audience  string
		wantQuery url.Values
	}{
		{
			name:      "default audience added to existing query",
			path:      "/_apis/distributedtask/hubs/Actions/plans/p/jobs/j/idtoken?api-version=2.0",
			wantQuery: url.Values{"api-version": {"2.0"}, "audience": {"sts.amazonaws.com"}},
		},
		{
			name:      "custom audience escaped",
			path:      "/idtoken?api-version=2.0",
			audience:  "api://my app/x?y=1&z=+ü#",
			wantQuery: url.Values{"api-version": {"2.0"}, "audience": {"api://my app/x?y=1&z=+ü#"}},
		},
		{
			name:      "url without query",
			path:      "/idtoken",
			wantQuery: url.Values{"audience": {"sts.amazonaws.com"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newGHServer(t, ghAnswer(200, `{"count":1712,"value":"`+ciTestJWT+`"}`))
			env := inputEnv(map[string]string{
				"ACTIONS_ID_TOKEN_REQUEST_URL":   ts.URL + tc.path,
				"ACTIONS_ID_TOKEN_REQUEST_TOKEN": ghRequestToken,
			})
			got, err := rotator.GitHubActionsInput(tc.audience, env, ts.Client()).Get(t.Context())
			if got != ciTestJWT || err != nil {
				t.Fatalf("Get() = %q, %v, want %q, nil", got, err, ciTestJWT)
			}
			reqs := ts.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodGet {
				t.Errorf("method = %s, want GET", r.Method)
			}
			if want, _, _ := strings.Cut(tc.path, "?"); r.URL.Path != want {
				t.Errorf("path = %q, want %q", r.URL.Path, want)
			}
			if diff := cmp.Diff(tc.wantQuery, r.URL.Query()); diff != "" {
				t.Errorf("query %q mismatch (-want +got):\n%s", r.URL.RawQuery, diff)
			}
			if got, want := r.Header.Get("Authorization"), "Bearer "+ghRequestToken; got != want {
				t.Errorf("Authorization = %q, want %q", got, want)
			}
			if got := r.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q, want application/json", got)
			}
		})
	}
}

func TestGitHubActionsInputErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string // nil: both variables point at the server
		h       http.HandlerFunc
		wantErr string
		status  int // HTTPStatusCode of the error, 0 for none
	}{
		{
			name:    "both variables missing",
			env:     map[string]string{},
			wantErr: `GitHub Actions OIDC: ACTIONS_ID_TOKEN_REQUEST_URL is not set; give the job "permissions: id-token: write"`,
		},
		{
			name:    "request token missing",
			env:     map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "https://example.invalid/idtoken?api-version=2.0"},
			wantErr: `GitHub Actions OIDC: ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set; give the job "permissions: id-token: write"`,
		},
		{
			name:    "url without scheme",
			env:     map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "idtoken", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": ghRequestToken},
			wantErr: `GitHub Actions OIDC: ACTIONS_ID_TOKEN_REQUEST_URL is not an http(s) URL (got scheme "")`,
		},
		{
			name:    "server error",
			h:       ghAnswer(500, `{"message":"internal failure"}`),
			wantErr: `GitHub Actions OIDC: token request returned 500 Internal Server Error: {"message":"internal failure"}`,
			status:  500,
		},
		{
			name:    "long error body truncated",
			h:       ghAnswer(403, strings.Repeat("e", 300)),
			wantErr: `GitHub Actions OIDC: token request returned 403 Forbidden: ` + strings.Repeat("e", 256),
			status:  403,
		},
		{
			name:    "request token echoed by a proxy is redacted",
			h:       ghAnswer(401, "bad credentials: Bearer "+ghRequestToken+"\n"),
			wantErr: `GitHub Actions OIDC: token request returned 401 Unauthorized: bad credentials: Bearer [redacted]`,
			status:  401,
		},
		{
			name:    "bad json",
			h:       ghAnswer(200, `<html>`),
			wantErr: `GitHub Actions OIDC: decode token response: invalid character '<' looking for beginning of value`,
		},
		{
			name:    "no value",
			h:       ghAnswer(200, `{"count":0}`),
			wantErr: `GitHub Actions OIDC: token response has no value`,
		},
		{
			name:    "value not a JWT",
			h:       ghAnswer(200, `{"count":1,"value":"`+inputSecret+`"}`),
			wantErr: `GitHub Actions OIDC: token in the response is not a JWT`,
		},
		{
			name:    "oversized answer",
			h:       ghAnswer(200, `{"value":"`+strings.Repeat("a", 1<<20)+`"}`),
			wantErr: `GitHub Actions OIDC: token response is larger than 1048576 bytes`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			client := http.DefaultClient
			if env == nil {
				ts := newGHServer(t, tc.h)
				client = ts.Client()
				env = map[string]string{
					"ACTIONS_ID_TOKEN_REQUEST_URL":   ts.URL + "/idtoken?api-version=2.0",
					"ACTIONS_ID_TOKEN_REQUEST_TOKEN": ghRequestToken,
				}
			}
			got, err := rotator.GitHubActionsInput("", inputEnv(env), client).Get(t.Context())
			if err == nil || err.Error() != tc.wantErr || got != "" {
				t.Fatalf("Get() = %q, %v, want \"\", %q", got, err, tc.wantErr)
			}
			for _, secret := range []string{ghRequestToken, inputSecret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Get() error %q contains the secret %q", err, secret)
				}
			}
			var st interface{ HTTPStatusCode() int }
			if gotStatus := 0; errors.As(err, &st) {
				gotStatus = st.HTTPStatusCode()
				if gotStatus != tc.status {
					t.Errorf("HTTPStatusCode() = %d, want %d", gotStatus, tc.status)
				}
			} else if tc.status != 0 {
				t.Errorf("Get() error %v has no HTTPStatusCode, want %d", err, tc.status)
			}
		})
	}
}

// TestGitHubActionsInputClassify checks that a 5xx from the runtime is
// retried soon and a 403 slowly.
func TestGitHubActionsInputClassify(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   rotator.Class
	}{
		{503, rotator.ClassTransient},
		{429, rotator.ClassTransient},
		{403, rotator.ClassPermanent},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			ts := newGHServer(t, ghAnswer(tc.status, `{}`))
			env := inputEnv(map[string]string{
				"ACTIONS_ID_TOKEN_REQUEST_URL":   ts.URL + "/idtoken?api-version=2.0",
				"ACTIONS_ID_TOKEN_REQUEST_TOKEN": ghRequestToken,
			})
			_, err := rotator.GitHubActionsInput("", env, ts.Client()).Get(t.Context())
			if got := rotator.Classify(err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
}

func TestGitHubActionsInputContextTimeout(t *testing.T) {
	// The handler blocks until the client gives up: no sleeping.
	ts := newGHServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	env := inputEnv(map[string]string{
		"ACTIONS_ID_TOKEN_REQUEST_URL":   ts.URL + "/idtoken?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": ghRequestToken,
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	got, err := rotator.GitHubActionsInput("", env, ts.Client()).Get(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || got != "" {
		t.Fatalf("Get() = %q, %v, want \"\", context.DeadlineExceeded", got, err)
	}
	if !strings.HasPrefix(err.Error(), "GitHub Actions OIDC: request token: ") || strings.Contains(err.Error(), ghRequestToken) {
		t.Errorf("Get() error = %q, want a request error without the request token", err)
	}
	if got := rotator.Classify(err); got != rotator.ClassTransient {
		t.Errorf("Classify(%v) = %v, want %v", err, got, rotator.ClassTransient)
	}
}

func TestGitHubActionsInputReadsEnvEachCall(t *testing.T) {
	ts := newGHServer(t, ghAnswer(200, `{"value":"`+ciTestJWT+`"}`))
	env := map[string]string{}
	in := rotator.GitHubActionsInput("", inputEnv(env), ts.Client())
	if _, err := in.Get(t.Context()); err == nil {
		t.Fatalf("Get() = _, nil, want an error while the variables are unset")
	}
	env["ACTIONS_ID_TOKEN_REQUEST_URL"] = ts.URL + "/idtoken?api-version=2.0"
	env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = ghRequestToken
	if got, err := in.Get(t.Context()); got != ciTestJWT || err != nil {
		t.Errorf("Get() = %q, %v, want %q, nil", got, err, ciTestJWT)
	}
}

func TestGitLabInput(t *testing.T) {
	tests := []struct {
		name     string
		variable string
		env      map[string]string
		want     string
		wantErr  string
	}{
		{name: "default variable", env: map[string]string{"GITLAB_OIDC_TOKEN": ciTestJWT}, want: ciTestJWT},
		{name: "custom variable", variable: "AWS_ID_TOKEN", env: map[string]string{"AWS_ID_TOKEN": ciTestJWT + "\n"}, want: ciTestJWT},
		{name: "unset", env: map[string]string{},
			wantErr: "GitLab CI OIDC: $GITLAB_OIDC_TOKEN is empty; declare it under id_tokens: in .gitlab-ci.yml"},
		{name: "empty custom", variable: "AWS_ID_TOKEN", env: map[string]string{"AWS_ID_TOKEN": "", "GITLAB_OIDC_TOKEN": ciTestJWT},
			wantErr: "GitLab CI OIDC: $AWS_ID_TOKEN is empty; declare it under id_tokens: in .gitlab-ci.yml"},
		{name: "not a JWT", env: map[string]string{"GITLAB_OIDC_TOKEN": inputSecret},
			wantErr: "GitLab CI OIDC: $GITLAB_OIDC_TOKEN is not a JWT"},
		{name: "two parts", env: map[string]string{"GITLAB_OIDC_TOKEN": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0"},
			wantErr: "GitLab CI OIDC: $GITLAB_OIDC_TOKEN is not a JWT"},
		{name: "empty signature", env: map[string]string{"GITLAB_OIDC_TOKEN": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
			wantErr: "GitLab CI OIDC: $GITLAB_OIDC_TOKEN is not a JWT"},
		{name: "standard base64", env: map[string]string{"GITLAB_OIDC_TOKEN": "eyJhbGciOiJSUzI1NiJ9.eyJz+/==.c2ln"},
			wantErr: "GitLab CI OIDC: $GITLAB_OIDC_TOKEN is not a JWT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rotator.GitLabInput(tc.variable, inputEnv(tc.env)).Get(t.Context())
			if tc.wantErr == "" {
				if got != tc.want || err != nil {
					t.Errorf("Get() = %q, %v, want %q, nil", got, err, tc.want)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr || got != "" {
				t.Fatalf("Get() = %q, %v, want \"\", %q", got, err, tc.wantErr)
			}
		})
	}
}

func TestGitLabInputReadsEachCall(t *testing.T) {
	env := map[string]string{}
	in := rotator.GitLabInput("", inputEnv(env))
	if got, err := in.Get(t.Context()); err == nil {
		t.Fatalf("Get() = %q, nil, want an error while unset", got)
	}
	for _, tok := range []string{ciTestJWT, "aaa.bbb.ccc"} {
		env["GITLAB_OIDC_TOKEN"] = tok
		if got, err := in.Get(t.Context()); got != tok || err != nil {
			t.Errorf("Get() = %q, %v, want %q, nil", got, err, tok)
		}
	}
}
