package pipeline

import (
	"strings"
	"testing"
)

// benchDoc is a 1 KiB JSON order.
var benchDoc = []byte(`{"orderId":"ord-2024-000123456","createdAt":"2024-05-17T10:21:33.512Z","status":"PAID",` +
	`"channel":"web","currency":"EUR","amount":249.9,"tax":39.9,"shipping":4.99,"discount":null,` +
	`"customer":{"id":"cus-8812734","email":"jane.doe@example.com","name":"Jane Doe","country":"DE",` +
	`"tier":"gold","marketing":true,"since":"2019-03-02"},` +
	`"shippingAddress":{"line1":"Hauptstraße 12","line2":"","city":"Berlin","zip":"10115","country":"DE"},` +
	`"items":[{"sku":"SKU-1001","name":"Wireless mouse","qty":2,"price":29.95,"tags":["electronics","accessories"]},` +
	`{"sku":"SKU-2002","name":"Mechanical keyboard","qty":1,"price":119.0,"tags":["electronics"]},` +
	`{"sku":"SKU-3003","name":"USB-C cable \"2m\"","qty":3,"price":9.99,"tags":["cables","accessories"]},` +
	`{"sku":"SKU-4004","name":"Laptop stand","qty":1,"price":41.05,"tags":[]}],` +
	`"payment":{"method":"card","brand":"visa","last4":"4242","authorized":true,"attempts":1},` +
	`"source":{"ip":"203.0.113.42","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","session":"s-77d1e0f2"},` +
	`"flags":["first-order","newsletter"],"notes":"Leave at the door, please.","version":3}`)

// BenchmarkDecodeAliased decodes a value as the record view does.
func BenchmarkDecodeAliased(b *testing.B) {
	b.SetBytes(int64(len(benchDoc)))
	b.ReportAllocs()
	for b.Loop() {
		var v Value
		if !decodeJSON(benchDoc, &v, true, nil) {
			b.Fatal("not JSON")
		}
	}
}

// BenchmarkParseJSON decodes with copied strings.
func BenchmarkParseJSON(b *testing.B) {
	b.SetBytes(int64(len(benchDoc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSON(benchDoc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeText is a value that is not JSON.
func BenchmarkDecodeText(b *testing.B) {
	text := []byte(strings.Repeat("plain text, ", 85))
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		var v Value
		decodeAliased(text, &v, nil)
	}
}
