// Package rotator obtains credentials from a source and renews them on a
// schedule, so that whoever serves them always holds a set with plenty of
// time left and never notices trouble upstream while a valid set exists.
//
// A source is a [Fetcher] (one file per source: dev.go, and the STS sources).
// A [Rotator] calls it, keeps the last good credentials, decides when to
// refresh (see nextRefresh and DESIGN.md "Rotation policy"), retries failures
// with capped, jittered back-off, and compares the wall clock with its plan so
// that a laptop waking from sleep refreshes at once. Every change is handed to
// Options.Publish.
//
// rotator knows nothing about HTTP: it must not import imds, net/http
// servers, install or kardianos/service (deps_test.go enforces this).
package rotator
