package imds

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// RequestStats counts requests by route and status without allocating or
// locking. Share one value across handler rebuilds (Config.Stats) so the
// counts stay monotonic for the life of the process. The zero value is
// ready to use and safe for concurrent use.
type RequestStats struct {
	n [len(routeNames)][len(statusCodes)]atomic.Uint64
}

// Routes, as metrics labels: a fixed set, so a scan of random paths cannot
// grow the label space.
var routeNames = [...]string{"token", "credentials", "credentials-extended", "iam-info", "identity-document", "metadata", "other", "container"}

const (
	routeToken = iota
	routeCredentials
	routeCredentialsExtended
	routeIAMInfo
	routeIdentity
	routeMetadata
	routeOther
	routeContainer // the container endpoint's role paths (ContainerHandler)
)

// statusCodes are every status the handler answers.
var statusCodes = [...]int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusInternalServerError, http.StatusServiceUnavailable}

func routeOf(path string) int {
	const md, iam = "/latest/meta-data/", "/latest/meta-data/iam/"
	switch {
	case isTokenPath(path):
		return routeToken
	case strings.HasPrefix(path, iam+"security-credentials-extended"):
		return routeCredentialsExtended
	case strings.HasPrefix(path, iam+"security-credentials"):
		return routeCredentials
	case strings.HasPrefix(path, iam+"info"):
		return routeIAMInfo
	case strings.HasPrefix(path, "/latest/dynamic/instance-identity/document"):
		return routeIdentity
	case path == "/" || path == "/latest" || strings.HasPrefix(path, "/latest/"):
		return routeMetadata
	}
	return routeOther
}

func (s *RequestStats) observe(path string, status int) {
	s.observeRoute(routeOf(path), status)
}

func (s *RequestStats) observeRoute(route, status int) {
	if s == nil {
		return
	}
	for i, c := range statusCodes {
		if c == status {
			s.n[route][i].Add(1)
			return
		}
	}
}

// Each calls fn for every route and status counted so far.
func (s *RequestStats) Each(fn func(route string, status int, n uint64)) {
	for r := range s.n {
		for c := range s.n[r] {
			if n := s.n[r][c].Load(); n > 0 {
				fn(routeNames[r], statusCodes[c], n)
			}
		}
	}
}
