//go:build race

package e2e

// Under -race the pipe binary is built with the race detector as well.
func init() { raceBuild = true }
