package pattern_test

import (
	"fmt"

	"github.com/pipe-run/pipe/pipeline"
	"github.com/pipe-run/pipe/stages/filter/pattern"
)

func Example() {
	p, err := pattern.Compile([]byte(`{"topic": ["orders"], "value": {"amount": [{"numeric": [">", 100]}]}}`))
	if err != nil {
		panic(err)
	}
	for _, value := range []string{`{"amount": 250}`, `{"amount": 42}`, `not JSON`} {
		r := &pipeline.Record{Topic: "orders", Value: []byte(value)}
		if ok, why := p.Explain(r.View()); ok {
			fmt.Println("match")
		} else {
			fmt.Println("no match:", why)
		}
	}
	// Output:
	// match
	// no match: value.amount: 42 does not match [{"numeric":[">",100]}]
	// no match: value.amount: missing (value is a string, not an object) does not match [{"numeric":[">",100]}]
}

func ExampleCompile_error() {
	_, err := pattern.Compile([]byte(`{"value": {"name": [{"wildcard": "a**"}]}}`))
	fmt.Println(err)
	// Output:
	// event pattern at value.name.0.wildcard: wildcard "a**" has consecutive wildcard characters at position 1 (byte 33)
}
