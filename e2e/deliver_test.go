package e2e

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDeliverAll runs one pipe over 20,000 records that kcat wrote and
// checks that each arrives once, in order, with every envelope field as the
// broker has it, and that everything is committed on SIGTERM.
func TestDeliverAll(t *testing.T) {
	needKcat(t)
	b := startBroker(t)
	const topic, group = "orders", "e2e-deliver-all"
	b.createTopic(t, topic)
	want := produceWithKcat(t, b, topic)
	truth := readAll(t, b, topic)
	checkProduced(t, want, truth)
	if len(truth) != partitions*kcatRecordsPerPartition {
		t.Fatalf("read back %d records, want %d", len(truth), partitions*kcatRecordsPerPartition)
	}

	s := newSink(t)
	// Two bootstrap servers, so the envelope shows how they are joined.
	port := b.addr[strings.LastIndexByte(b.addr, ':')+1:]
	brokers := []string{b.addr, "localhost:" + port}
	cfg := pipeConfig{brokers: brokers, topic: topic, group: group, url: s.url()}.write(t)
	p := startPipe(t, cfg, "run-1")
	s.waitAll(t, 90*time.Second, truth, p, b.proc)
	p.stop(t)
	s.checkProblems(t)

	ds := s.deliveries()
	if runs := slices.Collect(maps.Keys(byRun(ds))); len(runs) != 1 || runs[0] != "run-1" {
		t.Fatalf("deliveries came from runs %q, want only run-1", runs)
	}
	checkOnce(t, ds)
	checkOrder(t, ds)
	checkFields(t, ds, truth, topic, strings.Join(brokers, ","))
	if n := s.maxBatch(); n != 100 {
		t.Errorf("the biggest batch held %d records, want batchSize 100", n)
	}
	checkAllCommitted(t, b, group, topic)
}

// TestSurvivesSIGKILL kills the pipe twice while it delivers and checks
// that nothing is lost: a killed process committed only what the endpoint
// had acknowledged, and each restart resumes at the committed offset, at or
// before the first record that was not acknowledged.
func TestSurvivesSIGKILL(t *testing.T) {
	b := startBroker(t)
	const topic, group = "orders", "e2e-sigkill"
	b.createTopic(t, topic)
	produceWithFranz(t, b, topic, "k", 20000)
	truth := readAll(t, b, topic)
	total := len(truth)
	ends := b.endOffsets(t, topic)

	s := newSink(t)
	// A slowish endpoint, so that the kills land mid-stream.
	s.delay.Store(int64(40 * time.Millisecond))
	cfg := pipeConfig{brokers: []string{b.addr}, topic: topic, group: group, url: s.url(), commitInterval: "200ms"}.write(t)

	// committedAtKill[i] is the group's offsets after run i+1 was killed.
	var committedAtKill []map[int32]int64
	prevSum := int64(0)
	for i := range 2 {
		run := fmt.Sprintf("run-%d", i+1)
		p := startPipe(t, cfg, run)
		target := total * (i + 1) / 3
		var memberID string
		waitFor(t, 120*time.Second, fmt.Sprintf("%s to deliver %d records and commit", run, target), func() (bool, string) {
			n := s.distinct()
			if n < target {
				return false, fmt.Sprintf("%d of %d delivered", n, total)
			}
			c, err := b.tryCommitted(group, topic)
			if err != nil || sumOffsets(c) <= prevSum {
				return false, fmt.Sprintf("%d delivered; committed %v (error %v), want more than %d", n, c, err, prevSum)
			}
			_, ms, err := b.groupInfo(group, topic)
			for _, m := range ms {
				if m.clientID == run {
					memberID = m.id
				}
			}
			return memberID != "", fmt.Sprintf("group members %+v, error %v", ms, err)
		}, p, b.proc)
		if i == 0 {
			// The first kill lands while every partition's batch waits for
			// its answer, after the pipe committed what was acknowledged
			// before: a commit of unacknowledged records shows then.
			s.pause()
			waitFor(t, 30*time.Second, "the acknowledged records to be committed", func() (bool, string) {
				acked := s.acked()
				c, err := b.tryCommitted(group, topic)
				if err != nil {
					return false, err.Error()
				}
				for p, o := range acked {
					if c[p] < o+1 {
						return false, fmt.Sprintf("committed %v, acknowledged up to %v", c, acked)
					}
				}
				return true, ""
			}, p, b.proc)
		}
		p.kill(t)
		s.resume()
		if n := s.distinct(); n >= total {
			t.Fatalf("%s delivered all %d records before it was killed; the test needs a slower sink", run, total)
		}
		c := b.committed(t, group, topic)
		committedAtKill = append(committedAtKill, c)
		prevSum = sumOffsets(c)
		t.Logf("killed %s after %d of %d records were delivered; committed %v", run, s.distinct(), total, c)
		if i == 0 {
			// The coordinator would drop the dead member when its session
			// times out (45s); drop it now. The second kill waits for that.
			b.evict(t, group, memberID)
		}
	}
	p := startPipe(t, cfg, "run-3")
	s.waitAll(t, 120*time.Second, truth, p, b.proc)
	p.stop(t)
	s.checkProblems(t)

	ds := s.deliveries()
	checkOrder(t, ds)
	checkFields(t, ds, truth, topic, b.addr)
	runs := byRun(ds)
	if len(runs) != 3 {
		t.Fatalf("deliveries came from %d runs, want 3", len(runs))
	}
	// last[p] is the highest offset of p that the sink acknowledged to the
	// runs so far.
	last := map[int32]int64{}
	for k := 1; k <= 3; k++ {
		run := fmt.Sprintf("run-%d", k)
		first := map[int32]int64{}
		for _, d := range runs[run] {
			if _, ok := first[d.rec.Partition]; !ok {
				first[d.rec.Partition] = d.rec.Offset
			}
		}
		for p := int32(0); p < partitions; p++ {
			prevLast, acked := last[p]
			if !acked {
				prevLast = -1
			}
			from := int64(0) // where this run must start: the committed offset
			if k > 1 {
				from = committedAtKill[k-2][p]
			}
			if from > prevLast+1 {
				t.Fatalf("partition %d: offset %d was committed before %s started, but only offsets up to %d were acknowledged",
					p, from, run, prevLast)
			}
			f, ok := first[p]
			switch {
			case ok && (f < from || f > prevLast+1):
				t.Fatalf("partition %d: %s started at offset %d; want it between the committed offset %d and the first unacknowledged offset %d",
					p, run, f, from, prevLast+1)
			case !ok && k == 3 && from < ends[p]:
				t.Fatalf("partition %d: %s delivered nothing from offset %d up to %d", p, run, from, ends[p])
			}
		}
		for _, d := range runs[run] {
			if d.acked {
				last[d.rec.Partition] = max(last[d.rec.Partition], d.rec.Offset)
			}
		}
		t.Logf("%s: %d records, first offsets %v", run, len(runs[run]), first)
	}
	checkAllCommitted(t, b, group, topic)
}

// TestTwoProcessesShareGroup runs two pipe processes in one consumer group:
// they split the partitions, each record arrives exactly once, and when
// one stops the other takes over its partitions.
func TestTwoProcessesShareGroup(t *testing.T) {
	b := startBroker(t)
	const topic, group = "orders", "e2e-shared"
	b.createTopic(t, topic)
	s := newSink(t)
	cfg := pipeConfig{brokers: []string{b.addr}, topic: topic, group: group, url: s.url()}.write(t)
	pa := startPipe(t, cfg, "run-a")
	pb := startPipe(t, cfg, "run-b")
	var before []member
	waitFor(t, 60*time.Second, "both processes to own partitions", func() (bool, string) {
		ok, status, ms := b.settled(group, topic, 2)
		before = ms
		return ok, status
	}, pa, pb, b.proc)

	for _, m := range before {
		// -1 is a first join (no generation yet): a rebalance would still
		// show, as the rejoin carries the generation it leaves.
		if m.joinGen < -1 {
			t.Fatalf("member %s: no generation in its join metadata, so a rebalance would go unseen", m.id)
		}
	}
	produceWithFranz(t, b, topic, "first", 20000)
	truth := readAll(t, b, topic)
	s.waitAll(t, 60*time.Second, truth, pa, pb, b.proc)
	ok, status, after := b.settled(group, topic, 2)
	if !ok || !reflect.DeepEqual(before, after) {
		t.Fatalf("the group changed while records were delivered: before %+v, after: %s", before, status)
	}
	s.checkProblems(t)
	ds := s.deliveries()
	checkOnce(t, ds)
	checkOrder(t, ds)
	checkFields(t, ds, truth, topic, b.addr)
	runs := byRun(ds)
	for _, m := range before {
		var got []int32
		for _, d := range runs[m.clientID] {
			got = append(got, d.rec.Partition)
		}
		slices.Sort(got)
		if got = slices.Compact(got); !slices.Equal(got, m.partitions) {
			t.Fatalf("%s delivered partitions %v, but was assigned %v", m.clientID, got, m.partitions)
		}
		t.Logf("%s (member %s, joined from generation %d) owned partitions %v and delivered %d records", m.clientID, m.id, m.joinGen, m.partitions, len(runs[m.clientID]))
	}
	if len(runs) != 2 {
		t.Fatalf("deliveries came from runs %v, want run-a and run-b", slices.Collect(maps.Keys(runs)))
	}

	// run-b stops: run-a takes over all partitions, from what run-b committed.
	pb.stop(t)
	waitFor(t, 60*time.Second, "run-a to own every partition", func() (bool, string) {
		ok, status, ms := b.settled(group, topic, 1)
		return ok && ms[0].clientID == "run-a", status
	}, pa, b.proc)
	produceWithFranz(t, b, topic, "second", 2000)
	truth = readAll(t, b, topic)
	s.waitAll(t, 60*time.Second, truth, pa, b.proc)
	pa.stop(t)
	s.checkProblems(t)
	all := s.deliveries()
	later := all[len(ds):]
	if len(later) != 2000 {
		t.Errorf("after run-b stopped, %d records were delivered, want the 2000 new ones exactly once", len(later))
	}
	for _, d := range later {
		if d.run != "run-a" {
			t.Fatalf("record %d@%d was delivered by %s after it stopped", d.rec.Partition, d.rec.Offset, d.run)
		}
	}
	checkOnce(t, all)
	checkOrder(t, all)
	checkFields(t, later, truth, topic, b.addr)
	checkAllCommitted(t, b, group, topic)
}

// checkOnce fails if a record was delivered more than once.
func checkOnce(t *testing.T, ds []delivery) {
	t.Helper()
	seen := map[po]string{}
	for _, d := range ds {
		k := po{d.rec.Partition, d.rec.Offset}
		if prev, ok := seen[k]; ok {
			t.Fatalf("record %v was delivered twice (by %s, then by %s)", k, prev, d.run)
		}
		seen[k] = d.run
	}
}

// checkAllCommitted checks that the group committed every partition of
// topic up to its high watermark.
func checkAllCommitted(t *testing.T, b *broker, group, topic string) {
	t.Helper()
	ends := b.endOffsets(t, topic)
	committed := b.committed(t, group, topic)
	for p := int32(0); p < partitions; p++ {
		if committed[p] != ends[p] {
			t.Errorf("partition %d: group %s committed %d, high watermark %d", p, group, committed[p], ends[p])
		}
	}
}

func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, o := range m {
		n += o
	}
	return n
}
