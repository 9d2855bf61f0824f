// Command receiver plays the two sides of the kafka-to-api example: an
// OAuth2 token endpoint (client credentials) and an orders API that accepts
// only the tokens it issued. It prints one line per call.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	clientID := flag.String("client-id", "pipe-example", "the OAuth2 client id to accept")
	clientSecret := flag.String("client-secret", "local-dev-secret", "the OAuth2 client secret to accept")
	ttl := flag.Duration("token-ttl", time.Minute, "lifetime of the tokens issued")
	failCustomer := flag.String("fail-customer", "", "answer 503 (Retry-After: 2) to every order of this customer")
	flag.Parse()

	var mu sync.Mutex
	tokens := map[string]time.Time{} // token -> expiry

	http.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if id != *clientID || secret != *clientSecret || r.FormValue("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			log.Printf("token refused")
			return
		}
		b := make([]byte, 16)
		rand.Read(b)
		tok := hex.EncodeToString(b)
		mu.Lock()
		tokens[tok] = time.Now().Add(*ttl)
		mu.Unlock()
		log.Printf("token issued for scope %q, expires in %v", r.FormValue("scope"), *ttl)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": ttl.Seconds()})
	})

	http.HandleFunc("POST /customers/{customer}/orders", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		exp, ok := tokens[tok]
		mu.Unlock()
		if !ok || time.Now().After(exp) {
			w.WriteHeader(http.StatusUnauthorized)
			log.Printf("call refused: no valid token")
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		customer := r.PathValue("customer")
		if customer == *failCustomer {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
			log.Printf("503 for customer %s, order %s", customer, r.Header.Get("X-Order-Id"))
			return
		}
		fmt.Printf("%s %s?%s order=%s record=%s body=%s\n", r.Method, r.URL.EscapedPath(), r.URL.RawQuery,
			r.Header.Get("X-Order-Id"), r.Header.Get("X-Kafka-Record"), strings.TrimSpace(string(body)))
		w.WriteHeader(http.StatusCreated)
	})

	log.Printf("token endpoint on http://%s/oauth/token, orders API on http://%s/customers/{customer}/orders", *addr, *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
