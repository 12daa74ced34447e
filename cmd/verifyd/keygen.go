package main

import (
	"fmt"

	"verifyd/otp"
)

func keygen(args []string, e *env) error {
	fs := e.newFlags("keygen", "keygen")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("keygen takes no arguments")
	}
	key, err := otp.GenerateKey(e.random)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, key)
	return nil
}
