// Package kafka is the `kafka` source: a franz-go consumer group member that
// cuts each assigned partition's records into batches (by size, batching
// window and the 6 MB payload cap), keeps at most one batch in flight per
// partition, and commits offsets only over records whose batch the pipe
// finished. Fetching pauses per partition when its buffer is full, and
// partitions leaving the member are drained and committed before they go.
package kafka
