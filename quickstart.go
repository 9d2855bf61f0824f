// Package pipe holds the quick-start config that `pipe dev` runs when given
// no file. The engine is in package pipeline; the CLI in cmd/pipe.
package pipe

import _ "embed"

// QuickStart is the repository's pipes.yaml: a pipe that `pipe dev` runs on
// its embedded broker.
//
//go:embed pipes.yaml
var QuickStart []byte
