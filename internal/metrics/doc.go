// Package metrics declares the Prometheus metrics of a pipe process: one
// Registry per process (not Prometheus's global one), with per-pipe,
// per-stage and per-partition handles curried once when a pipe or partition
// starts, so that counting on the hot path is an atomic add with no label
// lookup or allocation.
//
// Naming: every metric starts with pipe_; labels are pipe and, where they
// help, stage, topic and partition. Counters of a pipe carry on across a
// restart of the pipe (same name, same series); the series of a removed
// pipe or of a partition no longer assigned are deleted, so that a gauge
// never reports a partition that left.
package metrics
