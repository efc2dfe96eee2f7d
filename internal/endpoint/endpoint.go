// Package endpoint holds the well-known addresses the AWS SDKs look for,
// the one place imds (which serves them) and install (which puts them on
// the loopback interface) take them from.
//
// It imports nothing beyond the standard library.
package endpoint

import "net/netip"

// The instance metadata service's addresses, used by the SDKs when no
// endpoint is configured (SPEC.md R1.1).
var (
	IMDSv4 = netip.MustParseAddr("169.254.169.254")
	IMDSv6 = netip.MustParseAddr("fd00:ec2::254")
)

// The container credentials endpoint's addresses (EKS Pod Identity's) that
// the SDKs accept over plain HTTP besides loopback (SPEC.md R9.3).
var (
	ContainerV4 = netip.MustParseAddr("169.254.170.23")
	ContainerV6 = netip.MustParseAddr("fd00:ec2::23")
)
