//go:build race

package workpool_test

// raceEnabled scales the stress and soak tests down under the race
// detector, which makes each job about ten times slower.
const raceEnabled = true
