package auth

import (
	"context"
	"testing"

	"verifyd"
)

// A disabled account's own right credential must be refused at the cost of
// every other refusal: one store read and one argon2id run. A generated
// secret is checked by digest alone, so without the dummy run its refusal
// would come back tens of milliseconds sooner than a wrong secret's, telling
// whoever holds a leaked secret that it is right and only the account is off.
func TestCheckerRefusesADisabledAccountsRightCredentialWithTheSameWork(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t)
	ctx := context.Background()
	secret := e.addSecret(t, "gone", true)
	e.addPassword(t, "human", "correct horse battery")
	disable(t, e, "human")

	for _, c := range []struct{ name, user, pass string }{
		{"ErrWrongSecret", "gone", secret[:31] + "x"},
		{"ErrDisabledRightSecret", "gone", secret},
		{"ErrWrongPassword", "human", "correct horse batterx"},
		{"ErrDisabledRightPassword", "human", "correct horse battery"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.counts()
			a, err := e.check.Check(ctx, c.user, c.pass)
			if a != nil || verifyd.ErrorCode(err) != verifyd.EUNAUTHORIZED || err.Error() != unauthorized().Error() {
				t.Fatalf("Check = %v, %v; want the one EUNAUTHORIZED refusal", a, err)
			}
			if argons, reads := e.counts(); argons != 1 || reads != 1 {
				t.Fatalf("argon2id runs = %d, store reads = %d; want 1 and 1 like every refusal", argons, reads)
			}
		})
	}
}

// disable disables the account name.
func disable(t *testing.T, e *checkerEnv, name string) {
	t.Helper()
	a, err := e.store.FindAccountByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	a.Disabled = true
	if err := e.store.UpdateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}
