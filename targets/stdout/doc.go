// Package stdout is the `stdout` target: it writes each batch's envelope as
// one line of JSON to standard output.
//
// Each line is rendered into a buffer of its own, then written with one
// Write under a lock shared by every stdout target of the process, so
// lines of different pipes never interleave. Deliver honours its context:
// a cancelled context returns at once, before anything is written; a
// Deliver waiting for another's write, or blocked writing to a pipe whose
// reader stopped, returns ctx.Err() when its context is done. A write that
// had started goes on in the background (a write to a pipe cannot be
// interrupted) and the next line waits for it, so a line is never cut by
// another; the batch is retried, so it may be written twice (at least
// once). A failed write fails the whole batch, retryably.
package stdout
