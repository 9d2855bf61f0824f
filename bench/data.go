package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// keyOf is a record's key: 16 bytes.
func keyOf(i int) []byte { return fmt.Appendf(nil, "key-%012d", i) }

// valueOf is a record's value: a JSON object of exactly size bytes (at least
// 16), shaped like an order, so decoding it costs what decoding a real event
// of that size costs: numbers, strings, a nested object, an array of up to 12
// objects, and a free-text field that takes up the rest. Values too small
// for that are {"n":"<text>"}.
func valueOf(i, size int) []byte {
	v := make([]byte, 0, max(size, 256))
	v = append(v, `{"orderId":`...)
	v = strconv.AppendInt(v, int64(i), 10)
	v = append(v, `,"status":"PAID","total":`...)
	v = strconv.AppendFloat(v, float64(i%10000)/100+3.5, 'f', 2, 64)
	v = append(v, `,"customer":{"id":"c-`...)
	v = strconv.AppendInt(v, int64(i%7919), 10)
	v = append(v, `","name":"Customer `...)
	v = strconv.AppendInt(v, int64(i%7919), 10)
	v = append(v, `","vip":`...)
	v = strconv.AppendBool(v, i%5 == 0)
	v = append(v, `},"items":[`...)
	const tail = len(`],"note":""}`)
	if len(v)+tail > size {
		v = append(v[:0], `{"n":"`...)
		return appendText(v, i, size-2)
	}
	// Items while there is room for one more and the closing part.
	const item = len(`,{"sku":"SKU-000000","qty":0,"price":000.00}`)
	for k := 0; len(v)+item+tail <= size && k < 12; k++ {
		if k > 0 {
			v = append(v, ',')
		}
		v = append(v, `{"sku":"SKU-`...)
		v = fmt.Appendf(v, "%06d", (i*13+k)%1000000)
		v = append(v, `","qty":`...)
		v = strconv.AppendInt(v, int64(k%9+1), 10)
		v = append(v, `,"price":`...)
		v = strconv.AppendFloat(v, float64((i+k)%99999)/100, 'f', 2, 64)
		v = append(v, '}')
	}
	v = append(v, `],"note":"`...)
	return appendText(v, i, size-2)
}

// appendText appends words of letters to v up to n bytes, then `"}`.
func appendText(v []byte, i, n int) []byte {
	for j := 0; len(v) < n; j++ {
		c := byte('a' + (i+j*7)%26)
		if j%6 == 5 {
			c = ' '
		}
		v = append(v, c)
	}
	return append(v, `"}`...)
}

// produce writes n records to topic, spread evenly over its partitions (or
// all to partition 0 when skew), and waits until all were acknowledged.
func produce(addr, topic string, partitions int32, n, valueSize int, skew bool) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
	)
	header := []kgo.RecordHeader{{Key: "source", Value: []byte("bench")}}
	for i := range n {
		p := int32(i) % partitions
		if skew {
			p = 0
		}
		r := &kgo.Record{
			Partition: p,
			Key:       keyOf(i),
			Value:     valueOf(i, valueSize),
			Headers:   header,
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return firstErr
}
