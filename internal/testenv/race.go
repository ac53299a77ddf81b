//go:build race

package testenv

// Race is true when the test binary runs under the race detector, where
// code in the test's own process runs several times slower: latency bounds
// meant for the real binary are loosened by RaceSlowdown there.
const Race = true

// RaceSlowdown is the factor by which in-process latency bounds grow under
// the race detector.
const RaceSlowdown = 4
