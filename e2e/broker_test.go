package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitions is the partition count of every test topic.
const partitions = 8

// broker is a `pipe dev --broker-only` process and an admin client for it.
type broker struct {
	addr string
	proc *proc
	cl   *kgo.Client
	adm  *kadm.Client
}

// startBroker starts an embedded broker process on a free port and waits
// until it answers metadata requests.
func startBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{}
	for attempt := 1; ; attempt++ {
		b.addr = freeAddr(t)
		b.proc = startProc(t, "broker", nil, nil, pipeBin, "dev", "--broker-only", "--listen", b.addr, "--partitions", fmt.Sprint(partitions))
		deadline := time.Now().Add(30 * time.Second)
		up := false
		for !up && !b.proc.exited() && time.Now().Before(deadline) {
			if c, err := net.DialTimeout("tcp", b.addr, time.Second); err == nil {
				c.Close()
				up = true
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if up {
			break
		}
		if b.proc.exited() && attempt < 3 {
			t.Logf("broker on %s exited at start (%s); trying another port", b.addr, strings.TrimSpace(b.proc.errors()))
			continue
		}
		t.Fatalf("broker on %s did not accept connections", b.addr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	b.cl, b.adm = cl, kadm.NewClient(cl)
	waitFor(t, 30*time.Second, "the broker to answer metadata", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		bs, err := b.adm.ListBrokers(ctx)
		return err == nil && len(bs) == 1, fmt.Sprintf("brokers %v, error %v", bs, err)
	}, b.proc)
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates topic with 8 partitions and waits until every
// partition has a leader.
func (b *broker) createTopic(t *testing.T, topic string) {
	t.Helper()
	resp, err := b.adm.CreateTopic(ctxT(t), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	waitFor(t, 30*time.Second, "topic "+topic+" to be described", func() (bool, string) {
		td, err := b.adm.ListTopics(ctxT(t), topic)
		if err != nil {
			return false, err.Error()
		}
		d := td[topic]
		if d.Err != nil || len(d.Partitions) != partitions {
			return false, fmt.Sprintf("error %v, %d partitions", d.Err, len(d.Partitions))
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false, fmt.Sprintf("partition %d: leader %d, error %v", p.Partition, p.Leader, p.Err)
			}
		}
		return true, ""
	}, b.proc)
}

// endOffsets returns the high watermark of each partition of topic.
func (b *broker) endOffsets(t *testing.T, topic string) map[int32]int64 {
	t.Helper()
	lo, err := b.adm.ListEndOffsets(ctxT(t), topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	m := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
	return m
}

// committed returns the group's committed offset of each partition of topic
// that has one.
func (b *broker) committed(t *testing.T, group, topic string) map[int32]int64 {
	t.Helper()
	m, err := b.tryCommitted(group, topic)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (b *broker) tryCommitted(group, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := b.adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("fetching the committed offsets of group %s: %w", group, err)
	}
	m := map[int32]int64{}
	for p, o := range offs[topic] {
		if o.At >= 0 {
			m[p] = o.At
		}
	}
	return m, nil
}

// member is a group member as DescribeGroups shows it.
type member struct {
	id, clientID string
	// joinGen is the generation the member sent in its last JoinGroup: it
	// changes whenever the member rejoins, that is on every rebalance.
	joinGen    int32
	partitions []int32
}

// groupInfo describes group: its state and members (sorted by client id).
func (b *broker) groupInfo(group, topic string) (state string, ms []member, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gs, err := b.adm.DescribeGroups(ctx, group)
	if err != nil {
		return "", nil, err
	}
	g, ok := gs[group]
	if !ok {
		return "", nil, fmt.Errorf("group %s not described", group)
	}
	if g.Err != nil {
		return "", nil, g.Err
	}
	for _, m := range g.Members {
		mm := member{id: m.MemberID, clientID: m.ClientID, joinGen: -2}
		if meta, ok := m.Join.AsConsumer(); ok {
			mm.joinGen = meta.Generation
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, at := range a.Topics {
				if at.Topic == topic {
					mm.partitions = append(mm.partitions, at.Partitions...)
				}
			}
		}
		slices.Sort(mm.partitions)
		ms = append(ms, mm)
	}
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.clientID, b.clientID) })
	return g.State, ms, nil
}

// settled reports whether group is Stable with n members that together own
// all partitions of topic, each owning some.
func (b *broker) settled(group, topic string, n int) (bool, string, []member) {
	state, ms, err := b.groupInfo(group, topic)
	status := fmt.Sprintf("group %s: state %q, members %+v, error %v", group, state, ms, err)
	if err != nil || state != "Stable" || len(ms) != n {
		return false, status, nil
	}
	var all []int32
	for _, m := range ms {
		if len(m.partitions) == 0 {
			return false, status, nil
		}
		all = append(all, m.partitions...)
	}
	slices.Sort(all)
	if len(slices.Compact(all)) != partitions || len(all) != partitions {
		return false, status, nil
	}
	return true, status, ms
}

// evict removes a member from group, as the coordinator does when the
// member's session times out; used for members of killed processes.
func (b *broker) evict(t *testing.T, group, memberID string) {
	t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = memberID
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctxT(t), b.cl)
	if err != nil {
		t.Fatalf("evicting member %s: %v", memberID, err)
	}
	for _, rm := range resp.Members {
		if rm.ErrorCode != 0 {
			t.Logf("evicting member %s: error code %d (it may have been expired already)", rm.MemberID, rm.ErrorCode)
		}
	}
}
