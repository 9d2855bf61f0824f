//go:build race

package pipeline

// raceEnabled is true under the race detector, whose sync.Pool drops items
// at random: allocation counts do not hold there.
const raceEnabled = true
