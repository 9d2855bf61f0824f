// Command receiver is a small HTTP endpoint for the kafka-to-http example: it
// decodes each POSTed Lambda Kafka event and prints one line per record.
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
)

type event struct {
	EventSource      string `json:"eventSource"`
	BootstrapServers string `json:"bootstrapServers"`
	Records          map[string][]struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Offset    int64   `json:"offset"`
		Key       *string `json:"key"`
		Value     *string `json:"value"`
	} `json:"records"`
}

func main() {
	addr := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	http.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		var ev event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for tp, recs := range ev.Records {
			for _, rec := range recs {
				fmt.Printf("%s offset %d key=%s value=%s\n", tp, rec.Offset, decode(rec.Key), decode(rec.Value))
			}
		}
	})
	log.Printf("receiver listening on http://%s/events", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func decode(s *string) string {
	if s == nil {
		return "(null)"
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return "(bad base64)"
	}
	return string(b)
}
