// Command pipe runs declarative pipes from Kafka to targets. See README.md.
package main

import (
	"fmt"
	"os"

	_ "github.com/pipe-run/pipe/destinations/file"
	_ "github.com/pipe-run/pipe/destinations/http"
	_ "github.com/pipe-run/pipe/destinations/kafka"
	_ "github.com/pipe-run/pipe/destinations/sns"
	_ "github.com/pipe-run/pipe/destinations/sqs"
	_ "github.com/pipe-run/pipe/sources/kafka"
	_ "github.com/pipe-run/pipe/stages/enrich/http"
	_ "github.com/pipe-run/pipe/stages/enrich/lambda"
	_ "github.com/pipe-run/pipe/stages/filter"
	_ "github.com/pipe-run/pipe/stages/transform"
	_ "github.com/pipe-run/pipe/targets/eventbridge"
	_ "github.com/pipe-run/pipe/targets/http"
	_ "github.com/pipe-run/pipe/targets/kafka"
	_ "github.com/pipe-run/pipe/targets/lambda"
	_ "github.com/pipe-run/pipe/targets/sns"
	_ "github.com/pipe-run/pipe/targets/sqs"
	_ "github.com/pipe-run/pipe/targets/stdout"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "pipe:", err)
		os.Exit(exitCode(err))
	}
}
