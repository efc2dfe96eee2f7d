//go:build !unix || aix

package daemon

// disableCoreDumps does nothing here. On Windows a Go program that crashes
// prints its goroutines and exits; a memory dump is written only when
// GOTRACEBACK=crash is set for the service and an administrator has
// configured Windows Error Reporting LocalDumps, both outside imdsd.
// (aix: the standard library has no RLIMIT_CORE there.)
func disableCoreDumps() error { return nil }
