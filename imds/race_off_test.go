//go:build !race

package imds_test

const raceEnabled = false
