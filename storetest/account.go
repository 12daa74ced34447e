package storetest

import (
	"testing"
	"time"

	"verifyd"
)

func testAccounts(t *testing.T, newStore NewStore) {
	t.Run("CreateSetsIDAndFindReturnsEveryField", func(t *testing.T) {
		f := newFixture(t, newStore)
		want := &verifyd.Account{
			Name:         "shop",
			PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
			Disabled:     true,
			Settings: verifyd.Settings{
				DefaultFrom:  "Shop",
				ReservedFrom: []string{"Bank", "Police"},
				CodeLength:   8,
				Limits:       map[string]string{"number": "3/1m", "account": "off"},
				Countries:    []string{"GB", "FR"},
			},
			Created: base(),
		}
		if err := f.s.CreateAccount(f.ctx, want); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		if want.ID == 0 {
			t.Fatal("CreateAccount left the ID zero")
		}
		got, err := f.s.FindAccountByName(f.ctx, "shop")
		if err != nil {
			t.Fatalf("FindAccountByName: %v", err)
		}
		wantEqual(t, "account", normAccount(*got), normAccount(*want))
	})

	t.Run("IDsAreDistinct", func(t *testing.T) {
		f := newFixture(t, newStore)
		a, b := f.account("a"), f.account("b")
		if a.ID == b.ID {
			t.Fatalf("two accounts got the same ID %d", a.ID)
		}
	})

	t.Run("ErrConflictOnDuplicateName", func(t *testing.T) {
		f := newFixture(t, newStore)
		first := f.account("shop")
		err := f.s.CreateAccount(f.ctx, &verifyd.Account{Name: "shop", PasswordHash: "other", Created: base()})
		wantCode(t, err, verifyd.ECONFLICT)
		got, err := f.s.FindAccountByName(f.ctx, "shop")
		if err != nil {
			t.Fatalf("FindAccountByName: %v", err)
		}
		wantEqual(t, "the first account", normAccount(*got), normAccount(*first))
	})

	t.Run("FindErrNotFoundForUnknownName", func(t *testing.T) {
		f := newFixture(t, newStore)
		f.account("shop")
		_, err := f.s.FindAccountByName(f.ctx, "Shop")
		wantCode(t, err, verifyd.ENOTFOUND)
	})

	t.Run("ListIsEmptyWithoutAccounts", func(t *testing.T) {
		f := newFixture(t, newStore)
		got, err := f.s.ListAccounts(f.ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("ListAccounts = %v, %v; want none", got, err)
		}
	})

	t.Run("ListIsOrderedByName", func(t *testing.T) {
		f := newFixture(t, newStore)
		for _, name := range []string{"zeta", "alpha", "mid"} {
			f.account(name)
		}
		got, err := f.s.ListAccounts(f.ctx)
		if err != nil {
			t.Fatalf("ListAccounts: %v", err)
		}
		var names []string
		for _, a := range got {
			names = append(names, a.Name)
		}
		wantEqual(t, "names", names, []string{"alpha", "mid", "zeta"})
	})

	t.Run("UpdateWritesCredentialDisabledAndSettings", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		other := f.account("other")
		a.SecretDigest = nil
		a.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3"
		a.Disabled = true
		a.Settings = verifyd.Settings{LimitsOff: true, RetentionDays: 7}
		if err := f.s.UpdateAccount(f.ctx, a); err != nil {
			t.Fatalf("UpdateAccount: %v", err)
		}
		got, err := f.s.FindAccountByName(f.ctx, "shop")
		if err != nil {
			t.Fatalf("FindAccountByName: %v", err)
		}
		wantEqual(t, "updated account", normAccount(*got), normAccount(*a))
		gotOther, err := f.s.FindAccountByName(f.ctx, "other")
		if err != nil {
			t.Fatalf("FindAccountByName(other): %v", err)
		}
		wantEqual(t, "the other account", normAccount(*gotOther), normAccount(*other))
	})

	t.Run("UpdateErrNotFoundForUnknownID", func(t *testing.T) {
		f := newFixture(t, newStore)
		a := f.account("shop")
		err := f.s.UpdateAccount(f.ctx, &verifyd.Account{ID: a.ID + 1000, Name: "ghost", Created: base().Add(time.Hour)})
		wantCode(t, err, verifyd.ENOTFOUND)
	})
}

func testPing(t *testing.T, newStore NewStore) {
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, newStore)
		if err := f.s.Ping(f.ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}
