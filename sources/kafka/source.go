package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pipe-run/pipe/internal/kafkaconn"
	"github.com/pipe-run/pipe/pipeline"
)

// source is a consumer group member that cuts each assigned partition's
// records into batches and hands them to the pipe, one batch in flight per
// partition, committing only what the pipe finished.
type source struct {
	cfg       *Config
	group     string
	log       *slog.Logger
	drain     time.Duration
	bootstrap string
	opts      []kgo.Opt

	// sem bounds the batches in flight across partitions.
	sem chan struct{}

	mu      sync.Mutex
	parts   map[tp]*partition
	handler pipeline.Handler
	// hardCtx is cancelled when draining takes longer than the drain timeout;
	// every in-flight batch's context derives from it.
	hardCtx    context.Context
	hardCancel context.CancelFunc
	stopping   chan struct{}

	errLog errorLog
	// status is the pipe's status: state, group and partitions.
	status *pipeline.Status
	// connFailed is set while the last connection failed: a successful
	// one then ends the failure.
	connFailed atomic.Bool
}

type tp struct {
	topic     string
	partition int32
}

var _ pipeline.Source = (*source)(nil)

func newSource(c *Config, group string, env pipeline.Env) *source {
	s := &source{
		cfg:       c,
		group:     group,
		log:       env.Logger.With("source", "kafka", "group", group),
		drain:     env.DrainTimeout,
		bootstrap: strings.Join(c.brokers, ","),
		sem:       make(chan struct{}, c.MaximumConcurrency),
		parts:     map[tp]*partition{},
		status:    env.Status,
	}
	if s.status == nil {
		s.status = pipeline.NewStatus(env.Pipe, env.Logger, nil, 0)
	}
	reset := kgo.NewOffset().AtStart()
	switch c.StartingPosition {
	case "LATEST":
		reset = kgo.NewOffset().AtEnd()
	case "AT_TIMESTAMP":
		reset = kgo.NewOffset().AfterMilli(c.StartingPositionTimestamp.UnixMilli())
	}
	s.opts = []kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID(c.ClientID),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(c.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(c.CommitInterval),
		kgo.SessionTimeout(c.SessionTimeout),
		// A fetch waits at most this long for data. The default (5s) would
		// hold back a partition resumed after backpressure while a fetch
		// for the others waits.
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		kgo.WithLogger(kgoLogger{s.log}),
		kgo.WithHooks(hooks{s}),
	}
	return s
}

// hooks turn franz-go's connection and group events into the pipe's state:
// a rejected password or an untrusted certificate fails the pipe with the
// reason explained (kafkaconn.Explain); franz-go keeps retrying with
// backoff, and the pipe runs again once a connection succeeds.
type hooks struct{ s *source }

var (
	_ kgo.HookBrokerConnect    = hooks{}
	_ kgo.HookGroupManageError = hooks{}
)

func (h hooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		if h.s.connFailed.Swap(false) {
			h.s.status.Connected()
		}
		return
	}
	h.s.connError(err)
}

func (h hooks) OnGroupManageError(err error) {
	h.s.status.Left()
	if !h.s.connError(err) {
		h.s.status.Error("consumer group: " + err.Error())
	}
}

// connError fails the pipe when err is a connection or security failure;
// it returns false for other errors.
func (s *source) connError(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	f, ok := s.cfg.Conn().Explain(err)
	if !ok {
		return false
	}
	// A successful connection disproves a failure to connect, not a
	// refusal of the group or topic (authorization): that one ends when
	// the group is joined.
	s.connFailed.Store(f.Kind != kafkaconn.KindAuthorization)
	s.status.Fail(string(f.Kind), f.Reason)
	return true
}

// Run consumes until ctx is cancelled, then drains and commits.
func (s *source) Run(ctx context.Context, h pipeline.Handler) error {
	s.hardCtx, s.hardCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer s.hardCancel()
	s.stopping = make(chan struct{})
	s.handler = h
	cl, err := kgo.NewClient(s.opts...)
	if err != nil {
		return err
	}
	s.log.Info("consuming", "brokers", s.bootstrap, "topics", strings.Join(s.cfg.Topics, ","))
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.watchOffsets(watchCtx, cl)
	}()

	for {
		fetches := cl.PollRecords(ctx, 0)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			cl.AllowRebalance()
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) || s.connError(err) {
				return
			}
			s.status.Error("fetch: " + err.Error())
			s.errLog.warn(s.log, "fetch failed; the client retries", "topic", topic, "partition", partition, "error", err)
		})
		now := time.Now()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			s.dispatch(p.Topic, p.Partition, p.Records, p.HighWatermark, now)
		})
		cl.AllowRebalance()
	}
	stopWatch()
	<-watched
	return s.shutdown(cl)
}

// endOffsetsEvery is how often the high watermarks of all assigned
// partitions are listed. Fetch responses carry them too, but not for a
// paused partition.
const endOffsetsEvery = 5 * time.Second

// watchOffsets keeps the partitions' committed offsets, high watermarks
// and the group's generation current in the pipe's status, until ctx ends.
func (s *source) watchOffsets(ctx context.Context, cl *kgo.Client) {
	every := min(s.cfg.CommitInterval, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	adm := kadm.NewClient(cl)
	var listed time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.refreshCommitted(cl)
		if time.Since(listed) < endOffsetsEvery {
			continue
		}
		listed = time.Now()
		lctx, cancel := context.WithTimeout(ctx, endOffsetsEvery)
		ends, err := adm.ListEndOffsets(lctx, s.cfg.Topics...)
		cancel()
		if err != nil {
			continue // a connection problem is reported by the hooks
		}
		s.mu.Lock()
		ends.Each(func(o kadm.ListedOffset) {
			if p := s.parts[tp{o.Topic, o.Partition}]; p != nil && o.Err == nil {
				p.status.SetHighWatermark(o.Offset)
			}
		})
		s.mu.Unlock()
	}
}

// refreshCommitted copies the group's committed offsets and generation
// into the status.
func (s *source) refreshCommitted(cl *kgo.Client) {
	member, gen := cl.GroupMetadata()
	if gen >= 0 {
		s.status.SetGroup(s.group, member, gen)
	}
	committed := cl.CommittedOffsets()
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, p := range s.parts {
		if o, ok := committed[key.topic][key.partition]; ok {
			p.status.SetCommitted(o.Offset)
		}
	}
}

// shutdown drains in-flight batches within the drain timeout, commits what
// finished and leaves the group.
func (s *source) shutdown(cl *kgo.Client) error {
	s.log.Info("stopping: draining in-flight batches", "timeout", s.drain.String())
	close(s.stopping)
	s.mu.Lock()
	parts := make([]*partition, 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	s.mu.Unlock()
	if !waitAll(parts, s.drain) {
		s.log.Warn("drain timeout passed; cancelling in-flight batches, which will be delivered again")
		s.hardCancel()
		waitAll(parts, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cl.CommitMarkedOffsets(ctx)
	if err != nil {
		s.log.Error("final commit failed; the uncommitted records will be delivered again", "error", err)
	}
	s.refreshCommitted(cl)
	cl.Close() // leaves the group
	return nil
}

// waitAll waits for the partitions' workers to exit, at most d (0: no limit).
func waitAll(parts []*partition, d time.Duration) bool {
	var deadline <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for _, p := range parts {
		select {
		case <-p.done:
		case <-deadline:
			return false
		}
	}
	return true
}

func (s *source) dispatch(topic string, partition int32, recs []*kgo.Record, hwm int64, now time.Time) {
	s.mu.Lock()
	p := s.parts[tp{topic, partition}]
	s.mu.Unlock()
	if p == nil {
		// Not ours (any more): the new owner reads these from the committed offset.
		return
	}
	p.status.SetHighWatermark(hwm)
	if len(recs) > 0 {
		p.push(recs, now)
	}
}

func (s *source) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	s.mu.Lock()
	for topic, ps := range assigned {
		for _, n := range ps {
			key := tp{topic, n}
			if s.parts[key] != nil {
				continue
			}
			p := newPartition(s, cl, topic, n)
			s.parts[key] = p
			go p.work()
		}
	}
	s.mu.Unlock()
	// Called after every join, with nothing new assigned too: the group is
	// joined.
	s.status.Running()
	s.refreshCommitted(cl)
	if len(assigned) > 0 {
		s.log.Info("partitions assigned", "partitions", describe(assigned))
	}
}

func (s *source) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	s.release(cl, revoked, false)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		s.log.Error("commit on revocation failed; the uncommitted records will be delivered again", "error", err)
	}
}

func (s *source) lost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	s.status.Left()
	s.release(cl, lost, true)
}

// release stops the workers of partitions leaving this member. Revoked
// partitions finish their in-flight batch first (within the drain timeout);
// lost ones are cancelled at once, since their offsets cannot be committed.
func (s *source) release(cl *kgo.Client, ps map[string][]int32, lost bool) {
	var parts []*partition
	s.mu.Lock()
	for topic, ns := range ps {
		for _, n := range ns {
			key := tp{topic, n}
			if p := s.parts[key]; p != nil {
				parts = append(parts, p)
				delete(s.parts, key)
			}
		}
	}
	s.mu.Unlock()
	if len(parts) == 0 {
		return
	}
	for _, p := range parts {
		p.stop(lost)
	}
	// One deadline for all of them: the rebalance waits for this callback.
	if !waitAll(parts, s.drain) {
		for _, p := range parts {
			select {
			case <-p.done:
				continue
			default:
			}
			s.log.Warn("partition revoked while its batch was still running; cancelling it, the new owner delivers it again",
				"topic", p.topic, "partition", p.partition)
			p.cancel()
		}
		for _, p := range parts {
			<-p.done
		}
	}
	cl.ResumeFetchPartitions(ps) // pauses outlive assignments in kgo
	for _, p := range parts {
		s.status.Release(p.status)
	}
	if lost {
		s.log.Warn("partitions lost", "partitions", describe(ps))
	} else {
		s.log.Info("partitions revoked", "partitions", describe(ps))
	}
}

func describe(m map[string][]int32) string {
	var b strings.Builder
	for topic, ps := range m {
		for _, p := range ps {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(topic)
			b.WriteByte('-')
			b.WriteString(itoa(int64(p)))
		}
	}
	return b.String()
}

// markDone records that everything before next is finished, for the next
// commit.
func (s *source) markDone(p *partition, next int64, epoch int32) {
	p.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
		p.topic: {p.partition: {Epoch: epoch, Offset: next}},
	})
}
