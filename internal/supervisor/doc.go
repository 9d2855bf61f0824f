// Package supervisor runs the pipes of a config file for `pipe run`: each
// pipe in a goroutine of its own, with a pipeline.Status that outlives its
// restarts. A pipe that cannot be built (a missing certificate file) or
// whose run ends on its own is failed with the reason and started again
// with backoff (1s doubling to 1m); the other pipes run on.
//
// Reload applies a new config: it compares each pipe's
// pipeline.PipeConfig.Fingerprint (its YAML subtree in a canonical form,
// references expanded) with the running one. Changed pipes stop cleanly
// (drain, commit, leave the group) and start with the new settings, new
// pipes start, removed ones stop and their metrics go, and unchanged ones
// are not touched: their consumer group sees no rebalance. A pipe's
// logLevel and includeExecutionData apply in place. New and changed pipes
// are built before anything stops; if one cannot be built the reload is
// rejected as a whole.
package supervisor
