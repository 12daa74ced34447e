package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"verifyd"
	"verifyd/client"
)

// Sending a code and checking what the user typed.
func ExampleClient() {
	c := &client.Client{BaseURL: "http://127.0.0.1:8080", User: "myapp", Password: "SECRET"}
	ctx := context.Background()

	v, err := c.Send(ctx, client.SendRequest{To: "447979080215", From: "MyBrand"})
	if e, ok := client.AsError(err); ok && e.Has(verifyd.FailThrottled) {
		log.Printf("too many codes for this number; try again in %v", e.RetryAfter)
		return
	} else if err != nil {
		log.Fatal(err)
	}

	// ... later, with the code the user typed:
	res, err := c.Validate(ctx, v.RequestID, "123456")
	if err != nil {
		log.Fatal(err)
	}
	switch res.Status {
	case client.CodeVerified:
		fmt.Println("the number is verified")
	case client.CodeNotVerified:
		fmt.Println("wrong code, try again")
	default: // CodeLocked, CodeExpired, Finished
		fmt.Println("send a new code")
	}
}

// A retried send with the same Idempotency-Key returns the first answer
// instead of texting a second code.
func ExampleClient_Send_idempotent() {
	c := &client.Client{BaseURL: "http://127.0.0.1:8080", User: "myapp", Password: "SECRET"}
	until := time.Now().Add(5 * time.Minute)
	v, err := c.Send(context.Background(), client.SendRequest{
		To:             "07979080215",
		CountryIsoCode: "GBR",
		Body:           "Your MyBrand code is {{code}}; it expires in {{validMinutes}} minutes.",
		ValidUntil:     &until,
		IdempotencyKey: "signup-42",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.RequestID)
}
