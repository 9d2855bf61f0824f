// Package kafka is the `kafka` source: a franz-go consumer group member that
// cuts each assigned partition's records into batches (by size, batching
// window and the 6 MB payload cap), keeps at most one batch in flight per
// partition, and commits offsets only over records whose batch the pipe
// finished. Fetching pauses per partition when its buffer is full, and
// partitions leaving the member are drained and committed before they go.
//
// It reports into the pipe's pipeline.Status: running once the group is
// joined; failed, with internal/kafkaconn's explanation (a rejected
// password, an untrusted certificate ...), when the brokers refuse a
// connection, franz-go retrying meanwhile; and per assigned partition the
// records read, the high watermark (from fetches, and listed every 5s for
// paused partitions) and the group's committed offset, from which the
// pipe's lag and stall detection follow.
package kafka
