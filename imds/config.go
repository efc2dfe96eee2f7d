package imds

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/imdsd/imdsd/internal/shape"
	"net/netip"
	"strings"
	"time"
)

// Mode says whether GETs need an IMDSv2 session token (EC2's HttpTokens).
type Mode int

const (
	// TokenRequired serves metadata only to requests carrying a valid
	// session token (IMDSv2 only). It is the default.
	TokenRequired Mode = iota
	// TokenOptional also serves requests without a token (IMDSv1). A
	// request that carries an invalid token is still refused.
	TokenOptional
)

// String returns the name used on the command line and in the config file.
func (m Mode) String() string {
	switch m {
	case TokenRequired:
		return "required"
	case TokenOptional:
		return "optional"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "required" or "optional".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "required":
		return TokenRequired, nil
	case "optional":
		return TokenOptional, nil
	}
	return 0, fmt.Errorf("token mode: must be required or optional (got %q)", s)
}

// Config is the instance the handler impersonates and the rules it enforces.
// Zero-valued metadata fields get defaults from [Config.WithDefaults]; RoleName
// and Region are required.
type Config struct {
	// RoleName is the default role: the one role listed under
	// iam/security-credentials/ (an instance profile holds exactly one
	// role, and SDKs take the first line) and described by iam/info.
	RoleName string
	// Roles are the other roles served by name under
	// iam/security-credentials/NAME (and -extended/NAME), for SDKs told
	// which instance profile to use (AWS_EC2_INSTANCE_PROFILE_NAME). They
	// are not listed. Publish them with PublishRole.
	Roles []string
	// Region is the AWS region reported in the identity document and
	// placement/region, e.g. "us-east-1".
	Region string
	// AvailabilityZone defaults to Region plus "a"; it must be Region plus
	// exactly one letter, since botocore drops the last character to find
	// the region (SPEC.md R6.1).
	AvailabilityZone string
	// AvailabilityZoneID defaults to a zone ID in AWS's form ("use1-az1").
	AvailabilityZoneID string
	// AccountID is used until published credentials name one (see
	// [Snapshot.AccountID]); default 000000000000.
	AccountID string
	// InstanceID defaults to an i- ID derived from HostSeed, so it is stable
	// per host across restarts.
	InstanceID string
	// HostSeed seeds the derived defaults (instance and image IDs, MAC);
	// the daemon passes the machine ID or host name.
	HostSeed     string
	InstanceType string // default "t3.micro"
	ImageID      string // default derived "ami-…"
	LocalIPv4    string // default "127.0.0.1"
	Hostname     string // default "ip-127-0-0-1.<region>.compute.internal"
	MAC          string // default derived locally administered address
	// LaunchTime is the identity document's pendingTime; default: when
	// WithDefaults ran.
	LaunchTime time.Time

	// TokenMode is TokenRequired unless IMDSv1 is explicitly allowed.
	TokenMode Mode
	// Tokens issues and checks session tokens. Keep the same value across
	// handler rebuilds (config reloads) so issued tokens stay valid. Nil
	// means a new random key.
	Tokens *Tokens
	// Stats counts requests by route and status; share one across handler
	// rebuilds. Nil counts nothing.
	Stats *RequestStats
	// AllowedClients are networks, besides this host's own addresses, whose
	// clients may use the endpoint (containers, VMs).
	AllowedClients []netip.Prefix
	// ListenAddrs are the host:port addresses being served; their hosts are
	// accepted in the Host header.
	ListenAddrs []string
	// AllowedHosts are further hosts accepted in the Host header: names
	// clients of other networks reach the endpoint by (a compose service
	// name), or addresses a translation hides (see hosts.go). Each must
	// pass ParseAllowedHost.
	AllowedHosts []string
	// LocalAddrs lists this host's own addresses, whose clients count as
	// same-host. Nil means the interface addresses of the host
	// (net.InterfaceAddrs), refreshed when an unknown client appears.
	LocalAddrs func() ([]netip.Addr, error)
	// Now is the wall clock (time.Now when nil).
	Now func() time.Time
	// Access decides who may have which role (nil: every local caller
	// may have every role) and Observer records every credentials answer
	// and refusal (nil: none); see access.go.
	Access   Access
	Observer Observer
}

// WithDefaults returns c with every unset metadata field filled in.
func (c Config) WithDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	seed := sha256.Sum256([]byte("imdsd host " + c.HostSeed))
	hexSeed := hex.EncodeToString(seed[:])
	if c.AvailabilityZone == "" && c.Region != "" {
		c.AvailabilityZone = c.Region + "a"
	}
	if c.AvailabilityZoneID == "" && c.Region != "" {
		c.AvailabilityZoneID = ZoneIDPrefix(c.Region) + "-az1"
	}
	if c.AccountID == "" {
		c.AccountID = "000000000000"
	}
	if c.InstanceID == "" {
		c.InstanceID = "i-" + hexSeed[:17]
	}
	if c.InstanceType == "" {
		c.InstanceType = "t3.micro"
	}
	if c.ImageID == "" {
		c.ImageID = "ami-" + hexSeed[17:34]
	}
	if c.LocalIPv4 == "" {
		c.LocalIPv4 = "127.0.0.1"
	}
	if c.Hostname == "" && c.Region != "" {
		c.Hostname = "ip-" + strings.ReplaceAll(c.LocalIPv4, ".", "-") + "." + c.Region + ".compute.internal"
	}
	if c.MAC == "" {
		// 02: a locally administered unicast address, never a real vendor's.
		c.MAC = "02:" + hexSeed[34:36] + ":" + hexSeed[36:38] + ":" + hexSeed[38:40] + ":" + hexSeed[40:42] + ":" + hexSeed[42:44]
	}
	if c.LaunchTime.IsZero() {
		c.LaunchTime = c.Now()
	}
	return c
}

// ZoneIDPrefix abbreviates a region the way AWS zone IDs do:
// us-east-1 → use1, ap-southeast-2 → apse2, eu-central-1 → euc1.
func ZoneIDPrefix(region string) string {
	parts := strings.Split(region, "-")
	if len(parts) < 2 {
		return region
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1 : len(parts)-1] {
		switch p {
		case "southeast":
			b.WriteString("se")
		case "northeast":
			b.WriteString("ne")
		case "southwest":
			b.WriteString("sw")
		case "northwest":
			b.WriteString("nw")
		default:
			if p != "" {
				b.WriteByte(p[0])
			}
		}
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}

// Validate reports every problem of c at once, each naming the field, the
// rule and the value. It expects c to have passed through WithDefaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, rule, got string) {
		errs = append(errs, fmt.Errorf("%s: %s (got %q)", field, rule, got))
	}
	if !shape.RoleName(c.RoleName) || len(c.RoleName) > 64 {
		bad("role_name", "1..64 characters of [A-Za-z0-9+=,.@_-]", c.RoleName)
	}
	seen := map[string]bool{c.RoleName: true}
	for _, r := range c.Roles {
		switch {
		case !shape.RoleName(r) || len(r) > 64:
			bad("roles", "names of 1..64 characters of [A-Za-z0-9+=,.@_-]", r)
		case seen[r]:
			bad("roles", "each name once", r)
		}
		seen[r] = true
	}
	// Zones derive from the region: with a bad region, report only it.
	if !shape.Region(c.Region) {
		bad("region", "an AWS region such as us-east-1", c.Region)
	} else if len(c.AvailabilityZone) != len(c.Region)+1 || !strings.HasPrefix(c.AvailabilityZone, c.Region) ||
		c.AvailabilityZone[len(c.AvailabilityZone)-1] < 'a' || c.AvailabilityZone[len(c.AvailabilityZone)-1] > 'z' {
		bad("availability_zone", "the region plus one lower-case letter, e.g. "+c.Region+"a", c.AvailabilityZone)
	}
	if shape.Region(c.Region) && !shape.AvailabilityZoneID(c.AvailabilityZoneID) {
		bad("availability_zone_id", "a zone ID such as use1-az1", c.AvailabilityZoneID)
	}
	if !shape.AccountID(c.AccountID) {
		bad("account_id", "12 digits", c.AccountID)
	}
	if !shape.InstanceID(c.InstanceID) {
		bad("instance_id", "i- and 17 lower-case hex digits", c.InstanceID)
	}
	if !shape.Plain(c.InstanceType) || len(c.InstanceType) > 255 {
		bad("instance_type", "an instance type such as t3.micro", c.InstanceType)
	}
	if !shape.ImageID(c.ImageID) {
		bad("ami_id", "ami- and 8..17 lower-case hex digits", c.ImageID)
	}
	if a, err := netip.ParseAddr(c.LocalIPv4); err != nil || !a.Is4() {
		bad("local_ipv4", "an IPv4 address", c.LocalIPv4)
	}
	if !shape.Plain(c.Hostname) || len(c.Hostname) > 255 {
		bad("hostname", "a host name of [A-Za-z0-9.-]", c.Hostname)
	}
	if !shape.MAC(c.MAC) {
		bad("mac", "six lower-case hex pairs separated by colons", c.MAC)
	}
	if c.TokenMode != TokenRequired && c.TokenMode != TokenOptional {
		bad("token_mode", "required or optional", c.TokenMode.String())
	}
	for _, p := range c.AllowedClients {
		if !p.IsValid() {
			bad("allow_client", "a network in CIDR form such as 172.17.0.0/16", p.String())
		}
	}
	for _, l := range c.ListenAddrs {
		if _, err := ParseListen(l); err != nil {
			errs = append(errs, err)
		}
	}
	for _, h := range c.AllowedHosts {
		if _, err := ParseAllowedHost(h); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ParseListen parses a listen address: an IP literal or "localhost" with a
// port, such as 127.0.0.1:8169, [::1]:8169 or 169.254.169.254:80. Port 0
// picks a free port.
func ParseListen(s string) (host string, err error) {
	h, port, err := splitHostPort(s)
	if err != nil || port == "" {
		return "", fmt.Errorf("listen: must be host:port with an IP address or localhost, e.g. 127.0.0.1:8169 or [::1]:8169 (got %q)", clip(s))
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("listen: port must be a number 0..65535 (got %q)", clip(s))
		}
	}
	if len(port) > 5 || atoi(port) > 65535 {
		return "", fmt.Errorf("listen: port must be a number 0..65535 (got %q)", clip(s))
	}
	if strings.EqualFold(h, "localhost") {
		return "localhost", nil
	}
	a, err := netip.ParseAddr(h)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("listen: host must be an IP address or localhost, e.g. 127.0.0.1:8169 or [::1]:8169 (got %q)", clip(s))
	}
	// 0.0.0.0 and [::] bind every address, yet only this host's own
	// clients and the --allow-client networks are served, and the Host
	// check refuses requests naming 0.0.0.0 or [::]: whoever asks for
	// them means to serve containers or VMs, which takes their network.
	if a.Unmap().IsUnspecified() {
		return "", fmt.Errorf("listen: must be one address of this host, not every address; to serve containers or VMs, listen on the address they reach, "+
			"such as 172.17.0.1:8169 on Docker's bridge, and allow their network with --allow-client 172.17.0.0/16 (allow_clients in the config file) (got %q)", clip(s))
	}
	return a.String(), nil
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// splitHostPort splits "host:port", "[v6]:port" and, for Host headers,
// a bare "host" or "[v6]" (port ""). It does not allocate.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", errBadHost
		}
		host, rest := s[1:end], s[end+1:]
		switch {
		case rest == "":
			return host, "", nil
		case rest[0] == ':':
			return host, rest[1:], nil
		}
		return "", "", errBadHost
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return s, "", nil
	}
	if strings.IndexByte(s[i+1:], ':') >= 0 {
		// An IPv6 literal without brackets is not a valid host:port.
		return "", "", errBadHost
	}
	return s[:i], s[i+1:], nil
}

var errBadHost = errors.New("malformed host")
