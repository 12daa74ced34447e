package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

// The baseline is the yardstick of DESIGN.md's targets: a bare net/http
// server that does only what every create must do at the HTTP edge (read
// the body, decode the same JSON) and answers a fixed 202 VerifyCode. It
// runs as its own process, like verifyd, so that both pay for the same
// kernel round trips and neither shares a heap or a scheduler with the load
// generator.

// baselineAnswer is a VerifyCode as verifyd writes it, fixed.
var baselineAnswer = []byte(`{"requestId":"0bd57dc3-580c-4c1d-8aee-2ff79bd8633c","phoneNumber":"447979080215",` +
	`"status":"CodeNotVerified","numberStatus":"On","created":"2026-11-26T11:10:14.552Z"}`)

// createBody is the create request's JSON, as verifyd reads it.
type createBody struct {
	To             string `json:"to"`
	From           string `json:"from"`
	CountryIsoCode string `json:"countryIsoCode"`
	Body           string `json:"body"`
	ValidUntil     string `json:"validUntil"`
}

func baselineHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webapi/verify", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		var in createBody
		if err := json.Unmarshal(body, &in); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		w.Write(baselineAnswer)
	})
	return mux
}

// runBaseline is the baseline role: serve on addr and print the address
// bound, until killed.
func runBaseline(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "baseline listening %s\n", ln.Addr())
	// The same server settings as verifyd's serve, so that the two differ
	// only in their handlers.
	srv := &http.Server{
		Handler:           baselineHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	log.Fatal(srv.Serve(ln))
}

// baselineReady finds the baseline's address in its stdout.
func baselineReady(stdout, _ []byte) (string, bool) {
	var addr string
	if _, err := fmt.Sscanf(string(stdout), "baseline listening %s", &addr); err != nil {
		return "", false
	}
	return addr, true
}
