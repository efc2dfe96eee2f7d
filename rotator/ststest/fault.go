package ststest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Fault is a failure the server injects instead of (or before) answering
// normally. What it does, in order of precedence:
//   - Delay: wait this long first, then apply the rest of the Fault. The
//     wait uses a timer, not the server clock; it ends early, without a
//     response, if the client goes away, and with a dropped connection if
//     the server is closed;
//   - Drop: close the connection without any response;
//   - Code: answer the STS ErrorResponse document with Code, Message and
//     Status;
//   - Status alone: answer Status with Body verbatim (a load balancer page);
//   - none of these: after Delay, serve the request normally.
type Fault struct {
	// Action limits the fault to one action; "" matches every request.
	Action string
	// From and To bound the fault to calls whose server-clock time t has
	// From <= t < To. A zero From or To is unbounded.
	From, To time.Time
	// Count is how many matching calls the fault affects before it is
	// removed; zero or negative means every matching call until
	// ClearFaults.
	Count int

	// Delay is how long to wait before answering (real time, or the
	// bubble's fake time under testing/synctest).
	Delay time.Duration
	// Drop closes the connection without a response.
	Drop bool
	// Status is the HTTP status. With a Code it defaults to the usual
	// status of that code (see Fail), else 400.
	Status int
	// Code and Message make an STS error. Message defaults to a text like
	// the one real STS sends for Code.
	Code, Message string
	// Body is the raw body for a Status-only fault; it defaults to an HTML
	// page like the ones AWS load balancers send.
	Body string
}

// faultState is an injected Fault and how many calls it still affects
// (negative: unlimited).
type faultState struct {
	f    Fault
	left int
}

// knownErrors are the usual HTTP status and message of common STS error
// codes (SPEC.md R11.4).
var knownErrors = map[string]struct {
	status  int
	message string
}{
	"AccessDenied":            {403, "User is not authorized to perform this action"},
	"ExpiredToken":            {403, "The security token included in the request is expired"},
	"ExpiredTokenException":   {400, "Token expired: current date/time must be before the expiration date/time"},
	"IDPCommunicationError":   {400, "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements"},
	"IDPRejectedClaim":        {403, "The identity provider rejected the claim"},
	"InternalFailure":         {500, "An internal error has occurred"},
	"InvalidClientTokenId":    {403, "The security token included in the request is invalid."},
	"InvalidIdentityToken":    {400, "Couldn't parse web identity token."},
	"MalformedPolicyDocument": {400, "The policy is not in the valid JSON format."},
	"PackedPolicyTooLarge":    {400, "Packed policy consumes 101% of allotted space, please use smaller policy for session."},
	"RegionDisabledException": {403, "STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console."},
	"RequestLimitExceeded":    {400, "Request limit exceeded."},
	"ServiceUnavailable":      {503, "Service is unable to handle request."},
	"SignatureDoesNotMatch":   {403, "The request signature we calculated does not match the signature you provided."},
	"Throttling":              {400, "Rate exceeded"},
	"ThrottlingException":     {400, "Rate exceeded"},
	"ValidationError":         {400, "1 validation error detected"},
}

// Inject adds a fault. Faults are matched in the order they were injected;
// a request uses only the first fault that matches it.
func (s *Server) Inject(f Fault) {
	left := f.Count
	if left <= 0 {
		left = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{f: f, left: left})
}

// Fail makes the next n calls of action ("" for any action) answer the STS
// error code with HTTP status; n < 0 means every call until ClearFaults and
// n == 0 injects nothing. A status of 0 picks the usual one for code:
// 403 for AccessDenied, ExpiredToken, IDPRejectedClaim,
// InvalidClientTokenId, RegionDisabledException and SignatureDoesNotMatch;
// 500 for InternalFailure; 503 for ServiceUnavailable; 400 otherwise.
func (s *Server) Fail(action, code string, status, n int) {
	if n == 0 {
		return
	}
	s.Inject(Fault{Action: action, Code: code, Status: status, Count: n})
}

// Outage makes every call whose server-clock time t has from <= t < to
// answer 503 ServiceUnavailable. For an outage that drops connections,
// use Inject with From, To and Drop.
func (s *Server) Outage(from, to time.Time) {
	s.Inject(Fault{From: from, To: to, Code: "ServiceUnavailable"})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the first fault that matches the call and consumes one
// use of it.
func (s *Server) takeFault(action string, now time.Time) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range s.faults {
		f := st.f
		if f.Action != "" && f.Action != action ||
			!f.From.IsZero() && now.Before(f.From) ||
			!f.To.IsZero() && !now.Before(f.To) {
			continue
		}
		if st.left > 0 {
			st.left--
			if st.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f, true
	}
	return Fault{}, false
}

// applyFault carries out f and returns the reply to send; kind replyNormal
// means the request is to be served normally.
func (s *Server) applyFault(ctx context.Context, reqID string, f Fault) reply {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return reply{kind: replyNone} // the client is gone
		case <-s.closing:
			return reply{kind: replyDrop}
		}
	}
	switch {
	case f.Drop:
		return reply{kind: replyDrop}
	case f.Code != "":
		known, ok := knownErrors[f.Code]
		if !ok {
			known.status, known.message = http.StatusBadRequest, f.Code
		}
		e := &apiError{status: f.Status, code: f.Code, message: f.Message}
		if e.status == 0 {
			e.status = known.status
		}
		if e.message == "" {
			e.message = known.message
		}
		return errorReply(reqID, e)
	case f.Status != 0:
		body := f.Body
		if body == "" {
			text := strconv.Itoa(f.Status) + " " + http.StatusText(f.Status)
			body = fmt.Sprintf("<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n</body>\r\n</html>\r\n", text, text)
		}
		return reply{status: f.Status, contentType: "text/html", body: []byte(body)}
	}
	return reply{kind: replyNormal}
}
