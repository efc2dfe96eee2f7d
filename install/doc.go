// Package install makes the host changes a service install needs, each
// reversible and idempotent: the IMDS address alias on the loopback
// interface of each OS, and the service itself through kardianos/service.
//
// It is empty until the service issue lands; imdsd run works without it on
// any loopback address and port.
package install
