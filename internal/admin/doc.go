// Package admin is the admin HTTP server of a pipe process:
//
//	GET /metrics  Prometheus text format (package metrics)
//	GET /healthz  200 "ok" while the process serves at all
//	GET /readyz   200 when every pipe is running (its consumer group
//	              joined) and, with admin.unreadyOnStall, no partition is
//	              stalled; 503 otherwise, with the problems, as JSON
//	GET /pipes    JSON: each pipe's state (and reason when failed), group,
//	              last error and assigned partitions with committed offset,
//	              high watermark, lag, last progress, stall and
//	              blocked-on-retry details
//
// It binds to loopback by default and holds no secret: pipe states and
// errors are the texts the pipes log, which never carry one, and config
// values are not served.
package admin
