// Package audit is imdsd's audit trail: one JSON line per credentials
// answer and per refusal, written to a file by one goroutine behind a
// bounded queue, so that a slow disk never delays an answer.
//
// audit imports no AWS code and no other package of imdsd (deps_test.go at
// the repository root enforces this): daemon fills its Records.
package audit
