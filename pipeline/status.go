package pipeline

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipe-run/pipe/internal/metrics"
)

// State is where a pipe is in its life.
type State string

// The states of a pipe. A pipe starts, runs once its source is connected
// (for Kafka: the group joined), and fails when it cannot go on (a rejected
// password, an untrusted certificate, a config it cannot build): it keeps
// retrying then, and runs again once the cause is gone.
const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateStopping State = "stopping"
	StateStopped  State = "stopped"
	StateFailed   State = "failed"
)

// Status is the live state of one pipe: its lifecycle state, its source's
// group and the partitions assigned to it, with their offsets, lag, stalls
// and retries. The source and the runner report into it; the admin server
// reads it with Snapshot. Its methods are safe for concurrent use.
type Status struct {
	pipe         string
	log          *slog.Logger
	m            *metrics.Pipe
	stallTimeout time.Duration
	now          func() time.Time

	mu        sync.RWMutex
	state     State
	reason    string
	since     time.Time
	joined    bool
	lastErr   string
	lastErrAt time.Time
	group     GroupStatus
	parts     map[partKey]*PartitionStatus
	// failLogged is the reason last logged for a failure, so that a
	// failure repeated by each retry is logged once.
	failLogged string
}

type partKey struct {
	topic     string
	partition int32
}

// NewStatus makes the status of a pipe: log is the pipe's logger, m its
// metrics (nil: a registry of its own), stallTimeout the pipe's setting
// (0: no stall detection).
func NewStatus(pipe string, log *slog.Logger, m *metrics.Pipe, stallTimeout time.Duration) *Status {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = metrics.New().Pipe(pipe)
	}
	s := &Status{pipe: pipe, log: log, m: m, stallTimeout: stallTimeout, now: time.Now,
		state: StateStarting, parts: map[partKey]*PartitionStatus{}}
	s.since = s.now()
	m.SetState(string(StateStarting))
	return s
}

// Metrics returns the pipe's metrics.
func (s *Status) Metrics() *metrics.Pipe { return s.m }

// State returns the pipe's state and, when failed, why.
func (s *Status) State() (State, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.reason
}

// setLocked moves the pipe to state. The gauge is set even when the state
// is unchanged: a pipe restarted by a reload shares its series with the
// instance that stopped before it.
func (s *Status) setLocked(state State, reason string) {
	s.m.SetState(string(state))
	if s.state == state && s.reason == reason {
		return
	}
	if s.state != state {
		s.since = s.now()
	}
	s.state, s.reason = state, reason
}

// SetState moves the pipe to a state of its lifecycle (starting, stopping,
// stopped). The runner and the supervisor call it.
func (s *Status) SetState(state State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if state == StateStarting {
		s.joined = false
		s.failLogged = ""
	}
	s.setLocked(state, "")
}

// Running says the source is connected and, for a consumer group, joined
// (possibly with no partition assigned). A pipe that is stopping stays so.
func (s *Status) Running() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.joined = true
	s.recoverLocked()
}

// recoverLocked moves a starting or failed pipe to running once it is
// joined, or a failed one back to starting.
func (s *Status) recoverLocked() {
	switch s.state {
	case StateStarting, StateFailed:
		was := s.state
		next := StateStarting
		if s.joined {
			next = StateRunning
		}
		s.setLocked(next, "")
		if was == StateFailed {
			s.failLogged = ""
			s.log.Info("pipe recovered", "state", string(next))
		}
	}
}

// Connected says a connection to the source succeeded: a pipe failed on
// connections recovers (to running if its group session held, else to
// starting until it joins).
func (s *Status) Connected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == StateFailed {
		s.recoverLocked()
	}
}

// FailedFor returns how long the pipe has been failed while out of its
// group; ok is false when it is not.
func (s *Status) FailedFor() (d time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateFailed || s.joined {
		return 0, false
	}
	return s.now().Sub(s.since), true
}

// Left says the source is out of its group (the session was lost): a
// running pipe is starting again until it has joined anew.
func (s *Status) Left() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.joined = false
	if s.state == StateRunning {
		s.setLocked(StateStarting, "")
	}
}

// Fail puts the pipe in the failed state with a reason fit for operators
// (it must hold no secret); kind sorts it for the metric
// pipe_connection_failures_total ("" counts nothing). The first report of a
// reason is logged at ERROR; repeats, as the pipe retries, are not.
func (s *Status) Fail(kind, reason string) {
	if kind != "" {
		s.m.ConnectionFailed(kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr, s.lastErrAt = reason, s.now()
	if s.state == StateStopping || s.state == StateStopped {
		return
	}
	s.setLocked(StateFailed, reason)
	if s.failLogged != reason {
		s.failLogged = reason
		s.log.Error("pipe failed; retrying", "reason", reason)
	}
}

// Error records the last error of the pipe (a batch that failed, a fetch
// error), shown by /pipes; it does not change the state.
func (s *Status) Error(msg string) {
	s.mu.Lock()
	s.lastErr, s.lastErrAt = msg, s.now()
	s.mu.Unlock()
}

// SetGroup records the source's consumer group, member id and generation.
func (s *Status) SetGroup(id, member string, generation int32) {
	s.mu.Lock()
	s.group = GroupStatus{ID: id, MemberID: member, Generation: generation}
	s.mu.Unlock()
}

// Assign returns the status of a partition newly assigned to the pipe.
func (s *Status) Assign(topic string, partition int32) *PartitionStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := partKey{topic, partition}
	if ps := s.parts[k]; ps != nil {
		return ps
	}
	ps := &PartitionStatus{Topic: topic, Partition: partition, st: s, m: s.m.Partition(topic, partition)}
	ps.committed.Store(-1)
	ps.start.Store(-1)
	ps.hwm.Store(-1)
	ps.progress.Store(s.now().UnixNano())
	s.parts[k] = ps
	return ps
}

// Release forgets a partition that left the pipe, and its metrics.
func (s *Status) Release(ps *PartitionStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := partKey{ps.Topic, ps.Partition}
	if s.parts[k] == ps {
		delete(s.parts, k)
		ps.m.Remove()
	}
}

// ReleaseAll forgets every partition (the pipe stopped).
func (s *Status) ReleaseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ps := range s.parts {
		delete(s.parts, k)
		ps.m.Remove()
	}
}

// partition returns the status of the partition a batch came from, or nil.
func (s *Status) partition(b *Batch) *PartitionStatus {
	if len(b.Records) == 0 {
		return nil
	}
	r := &b.Records[0]
	s.mu.RLock()
	ps := s.parts[partKey{r.Topic, r.Partition}]
	s.mu.RUnlock()
	return ps
}

// PartitionStatus is what a pipe knows of one assigned partition. The
// source reports offsets into it; the runner reports retries.
type PartitionStatus struct {
	Topic     string
	Partition int32

	st *Status
	m  *metrics.Partition

	committed atomic.Int64 // the group's committed offset; -1 unknown
	start     atomic.Int64 // first offset read since assignment; -1 none
	hwm       atomic.Int64 // high watermark; -1 unknown
	progress  atomic.Int64 // unix nanos: committed offset moved, or caught up
	blocked   atomic.Pointer[Blocked]

	// under st.mu
	stalledSince time.Time
}

// Blocked says why a partition waits: its batch failed and is retried.
type Blocked struct {
	// Offset is the first record of the failing part of the batch.
	Offset int64 `json:"offset"`
	// Stage is where it failed: filter, transform, enrichment, target, or
	// onFailure when the on-failure destination fails.
	Stage string `json:"stage"`
	// Reason is the error.
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	Since    time.Time `json:"since"`
}

// Polled counts n records of the partition read from the source, size
// bytes in all, the first at offset first.
func (ps *PartitionStatus) Polled(first int64, n, size int) {
	ps.st.m.Polled.Add(float64(n))
	ps.st.m.PolledBytes.Add(float64(size))
	if ps.start.Load() < 0 {
		ps.start.CompareAndSwap(-1, first)
	}
}

// SetHighWatermark records the partition's high watermark.
func (ps *PartitionStatus) SetHighWatermark(h int64) {
	if h < 0 || ps.hwm.Swap(h) == h {
		return
	}
	ps.m.HighWatermark.Set(float64(h))
	ps.updateLag()
}

// SetCommitted records the group's committed offset of the partition; a
// change is progress.
func (ps *PartitionStatus) SetCommitted(o int64) {
	if o < 0 || ps.committed.Swap(o) == o {
		return
	}
	ps.progress.Store(ps.st.now().UnixNano())
	ps.m.Committed.Set(float64(o))
	ps.updateLag()
}

// Lag is the high watermark minus the committed offset (or, before the
// group committed any, the first offset read); -1 when unknown.
func (ps *PartitionStatus) Lag() int64 {
	h := ps.hwm.Load()
	base := ps.committed.Load()
	if base < 0 {
		base = ps.start.Load()
	}
	if h < 0 || base < 0 {
		return -1
	}
	return max(h-base, 0)
}

func (ps *PartitionStatus) updateLag() {
	if l := ps.Lag(); l >= 0 {
		ps.m.Lag.Set(float64(l))
	}
}

// block says the partition waits on a retry.
func (ps *PartitionStatus) block(b *Blocked) {
	if ps.blocked.Swap(b) == nil {
		ps.m.Blocked.Set(1)
	}
}

func (ps *PartitionStatus) unblock() {
	if ps.blocked.Swap(nil) != nil {
		ps.m.Blocked.Set(0)
	}
}

// watch checks the partitions for stalls until ctx ends.
func (s *Status) watch(ctx context.Context) {
	every := time.Second
	if s.stallTimeout > 0 && s.stallTimeout/4 < every {
		every = max(s.stallTimeout/4, 10*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.check()
		}
	}
}

// check updates lag and detects stalls: a partition with lag whose
// committed offset has not moved for stallTimeout. Each stall is logged
// once when it starts and once when it ends.
func (s *Status) check() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.parts {
		lag := ps.Lag()
		if lag <= 0 {
			// Caught up, or nothing read yet: waiting is not a stall.
			ps.progress.Store(now.UnixNano())
		}
		if lag >= 0 {
			ps.m.Lag.Set(float64(lag))
		}
		if s.stallTimeout <= 0 {
			continue
		}
		last := time.Unix(0, ps.progress.Load())
		stalled := lag > 0 && now.Sub(last) >= s.stallTimeout
		switch {
		case stalled && ps.stalledSince.IsZero():
			ps.stalledSince = last.Add(s.stallTimeout)
			ps.m.Stalled.Set(1)
			attrs := []any{"topic", ps.Topic, "partition", ps.Partition, "lag", lag,
				"noProgressFor", now.Sub(last).Round(time.Millisecond).String()}
			if c := ps.committed.Load(); c >= 0 {
				attrs = append(attrs, "committedOffset", c)
			}
			if b := ps.blocked.Load(); b != nil {
				attrs = append(attrs, "blockedOnRetry", true, "failingOffset", b.Offset, "stage", b.Stage,
					"attempts", b.Attempts, "reason", b.Reason)
			}
			s.log.Warn("partition stalled: it has lag and its committed offset has not moved for stallTimeout", attrs...)
		case !stalled && !ps.stalledSince.IsZero():
			s.log.Info("partition progressing again after a stall", "topic", ps.Topic, "partition", ps.Partition,
				"stalledFor", now.Sub(ps.stalledSince).Round(time.Millisecond).String(), "lag", lag)
			ps.stalledSince = time.Time{}
			ps.m.Stalled.Set(0)
		}
	}
}

// PipeReport is a pipe's status at one moment, as /pipes shows it.
type PipeReport struct {
	Name string `json:"name"`
	// State is starting, running, stopping, stopped or failed.
	State State `json:"state"`
	// Reason says why the pipe failed.
	Reason string `json:"reason,omitempty"`
	// Since is when the pipe entered its state.
	Since     time.Time         `json:"since"`
	Group     *GroupStatus      `json:"group,omitempty"`
	LastError *ErrorStatus      `json:"lastError,omitempty"`
	Stalled   int               `json:"stalledPartitions"`
	Parts     []PartitionReport `json:"partitions"`
}

// GroupStatus is the source's consumer group membership.
type GroupStatus struct {
	ID         string `json:"id"`
	MemberID   string `json:"memberId,omitempty"`
	Generation int32  `json:"generation"`
}

// ErrorStatus is the last error of a pipe and when it happened.
type ErrorStatus struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// PartitionReport is one assigned partition in a PipeReport. Offsets that
// are not known yet are null.
type PartitionReport struct {
	Topic           string     `json:"topic"`
	Partition       int32      `json:"partition"`
	CommittedOffset *int64     `json:"committedOffset"`
	HighWatermark   *int64     `json:"highWatermark"`
	Lag             *int64     `json:"lag"`
	LastProgress    time.Time  `json:"lastProgress"`
	Stalled         bool       `json:"stalled"`
	StalledSince    *time.Time `json:"stalledSince,omitempty"`
	Blocked         *Blocked   `json:"blockedOnRetry,omitempty"`
}

func known(v int64) *int64 {
	if v < 0 {
		return nil
	}
	return &v
}

// Snapshot returns the pipe's status now, partitions sorted.
func (s *Status) Snapshot() PipeReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := PipeReport{Name: s.pipe, State: s.state, Reason: s.reason, Since: s.since, Parts: []PartitionReport{}}
	if s.group.ID != "" {
		g := s.group
		out.Group = &g
	}
	if s.lastErr != "" {
		out.LastError = &ErrorStatus{Message: s.lastErr, At: s.lastErrAt}
	}
	for _, ps := range s.parts {
		j := PartitionReport{Topic: ps.Topic, Partition: ps.Partition,
			CommittedOffset: known(ps.committed.Load()), HighWatermark: known(ps.hwm.Load()), Lag: known(ps.Lag()),
			LastProgress: time.Unix(0, ps.progress.Load()), Stalled: !ps.stalledSince.IsZero(), Blocked: ps.blocked.Load()}
		if j.Stalled {
			t := ps.stalledSince
			j.StalledSince = &t
			out.Stalled++
		}
		out.Parts = append(out.Parts, j)
	}
	slices.SortFunc(out.Parts, func(a, b PartitionReport) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}
