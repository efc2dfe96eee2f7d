package rotator

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Class sorts failures by what a retry can do about them (SPEC.md §11).
type Class int

const (
	// ClassOK is no failure.
	ClassOK Class = iota
	// ClassTransient failures (throttling, 5xx, network, the identity
	// provider unreachable) are retried soon.
	ClassTransient
	// ClassPermanent failures (access denied, invalid or expired token,
	// bad input) need a person: retried slowly and logged as errors.
	ClassPermanent
)

func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassTransient:
		return "transient"
	case ClassPermanent:
		return "permanent"
	}
	return "unknown"
}

// transientCode reports whether an error code is worth retrying soon: the
// codes the SDK's own retryer retries (throttling, request timeouts), and
// those imdsd adds.
func transientCode(code string) bool {
	_, throttle := retry.DefaultThrottleErrorCodes[code]
	_, retryable := retry.DefaultRetryableErrorCodes[code]
	return throttle || retryable || extraTransientCodes[code]
}

// extraTransientCodes are retried soon although the SDK's code lists do
// not name them: STS's identity provider being unreachable (SPEC.md R11.4;
// botocore's idp_unreachable_error), and AWS's generic server-side codes,
// which the SDK retries by their 5xx status; named here so that they count
// as transient whatever status came with them.
var extraTransientCodes = map[string]bool{
	"IDPCommunicationError": true,
	"InternalFailure":       true,
	"InternalError":         true,
	"ServiceUnavailable":    true,
}

// Classify returns the class of err, nil being ClassOK.
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTransient
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		if transientCode(api.ErrorCode()) || api.ErrorFault() == smithy.FaultServer {
			return ClassTransient
		}
		var st interface{ HTTPStatusCode() int }
		if errors.As(err, &st) && st.HTTPStatusCode() >= 500 {
			return ClassTransient
		}
		return ClassPermanent
	}
	// Network trouble on the way to STS or a CI runner's OIDC endpoint.
	// Only these concrete types count: the net.Error interface is also
	// met by syscall.Errno, so a missing token file would pass for a
	// network fault.
	var (
		send *smithyhttp.RequestSendError
		urlE *url.Error
		op   *net.OpError
		dns  *net.DNSError
	)
	if errors.As(err, &send) || errors.As(err, &urlE) || errors.As(err, &op) || errors.As(err, &dns) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return ClassTransient
	}
	var st interface{ HTTPStatusCode() int }
	if errors.As(err, &st) {
		// A 2xx here means the answer could not be read whole (a
		// cut connection): as transient as a 5xx.
		if s := st.HTTPStatusCode(); s >= 500 || s == 429 || s < 300 {
			return ClassTransient
		}
		return ClassPermanent
	}
	return ClassPermanent
}

// ErrorCode names err for clients: the upstream error code when there is one
// (AccessDenied, InvalidIdentityToken, …), else a class name.
func ErrorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() != "" {
		return api.ErrorCode()
	}
	if Classify(err) == ClassTransient {
		return "ServiceUnavailable"
	}
	return "CredentialSourceError"
}

// isExpiredToken reports whether STS refused the signing credentials as
// expired (an MFA session that lapsed early or was revoked).
func isExpiredToken(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && (api.ErrorCode() == "ExpiredToken" || api.ErrorCode() == "ExpiredTokenException" || api.ErrorCode() == "InvalidClientTokenId")
}
