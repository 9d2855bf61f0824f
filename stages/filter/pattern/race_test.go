//go:build race

package pattern_test

// raceEnabled is true under the race detector, whose sync.Pool drops items
// at random: allocation counts do not hold there.
const raceEnabled = true
