package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"runtime"
	"sync"
	"time"

	"verifyd"
)

// DefaultTTL is how long a positive check is remembered. It is also how long
// a disabled account or a changed secret may still be accepted by a running
// server, so it stays short.
const DefaultTTL = 30 * time.Second

// defaultMaxCached bounds the memory of the cache: one entry per distinct working
// (user, password) pair seen within the TTL.
const defaultMaxCached = 10000

// unauthorized is the one refusal: the same for an unknown user, a wrong
// credential and a disabled account, so that none reveals which it was.
func unauthorized() error {
	return verifyd.Errorf(verifyd.EUNAUTHORIZED, "No authorization header supplied or invalid username or password")
}

// Checker checks the username and secret (or password) of an API request.
// It is safe for concurrent use.
type Checker struct {
	store verifyd.AccountStore
	now   func() time.Time
	ttl   time.Duration

	// sem bounds concurrent argon2id runs: each takes 19 MiB and a core for
	// tens of milliseconds, so a flood of bad credentials must queue rather
	// than exhaust memory and starve every other request.
	sem   chan struct{}
	dummy *argonParams
	// cacheKey keys the cache with an HMAC rather than a bare hash, so a
	// memory dump does not hold an unsalted hash of any chosen password.
	cacheKey []byte

	// onArgon2 is called before each argon2id run; tests count runs with it.
	onArgon2 func()

	mu        sync.Mutex
	cache     map[[sha256.Size]byte]cached
	maxCached int
}

// cached is one remembered positive check.
type cached struct {
	account verifyd.Account
	expires time.Time
}

// NewChecker returns a Checker that reads accounts from store and
// remembers a positive check for ttl (DefaultTTL when ttl is zero) by the
// clock now.
func NewChecker(store verifyd.AccountStore, now func() time.Time, ttl time.Duration) *Checker {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand since Go 1.24); the key is not secret from tests, only from dumps
	return &Checker{
		store:     store,
		now:       now,
		ttl:       ttl,
		sem:       make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		dummy:     dummyParams(),
		cacheKey:  key,
		cache:     make(map[[sha256.Size]byte]cached),
		maxCached: defaultMaxCached,
	}
}

// Check returns the enabled account whose name is user and whose secret or
// password is pass. Every refusal is the same EUNAUTHORIZED error and costs
// the same kind of work (one digest compare and one argon2id run), whatever
// its reason.
func (c *Checker) Check(ctx context.Context, user, pass string) (*verifyd.Account, error) {
	key := c.pairKey(user, pass)
	now := c.now()
	if a, ok := c.lookup(key, now); ok {
		return a, nil
	}

	if len(pass) > MaxPasswordLength || len(user) > MaxPasswordLength {
		// Nothing stored can match; refuse with the usual cost so the limit
		// itself is not a cheap probe.
		return nil, c.refuse(ctx, pass)
	}
	a, err := c.store.FindAccountByName(ctx, user)
	if verifyd.ErrorCode(err) == verifyd.ENOTFOUND {
		subtle.ConstantTimeCompare(Digest(pass), c.dummy.key)
		return nil, c.refuse(ctx, pass)
	}
	if err != nil {
		return nil, err
	}

	ok := false
	if a.SecretDigest != nil {
		ok = subtle.ConstantTimeCompare(Digest(pass), a.SecretDigest) == 1
	} else {
		subtle.ConstantTimeCompare(Digest(pass), c.dummy.key)
	}
	byDigest := ok
	if !ok && a.PasswordHash != "" {
		p, perr := parseHash(a.PasswordHash)
		if perr != nil {
			return nil, c.refuse(ctx, pass)
		}
		if ok, err = c.argon2(ctx, p, pass); err != nil {
			return nil, err
		}
		if !ok {
			return nil, unauthorized()
		}
	} else if !ok {
		return nil, c.refuse(ctx, pass)
	}
	if a.Disabled {
		if byDigest {
			// Only a digest was compared: without the dummy run this refusal
			// would be quicker than a wrong secret's, and so tell a leaked
			// secret of a disabled account from a wrong one.
			return nil, c.refuse(ctx, pass)
		}
		return nil, unauthorized()
	}
	c.remember(key, a, now)
	copied := *a
	return &copied, nil
}

// refuse runs the dummy argon2id and returns the refusal.
func (c *Checker) refuse(ctx context.Context, pass string) error {
	if _, err := c.argon2(ctx, c.dummy, pass); err != nil {
		return err
	}
	return unauthorized()
}

// argon2 runs one argon2id check under the semaphore.
func (c *Checker) argon2(ctx context.Context, p *argonParams, pass string) (bool, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return false, verifyd.Errorf(verifyd.EUNAVAILABLE, "too many credential checks are waiting")
	}
	defer func() { <-c.sem }()
	if c.onArgon2 != nil {
		c.onArgon2()
	}
	return p.match(pass), nil
}

// pairKey is the cache key of a presented pair. The user's length is
// included so that ("ab", "c") and ("a", "bc") differ.
func (c *Checker) pairKey(user, pass string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.cacheKey)
	var n [8]byte
	for i, l := 0, uint64(len(user)); i < 8; i++ {
		n[i] = byte(l >> (8 * i))
	}
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(pass))
	var k [sha256.Size]byte
	copy(k[:], m.Sum(nil))
	return k
}

// lookup returns a copy of the cached account for key, if fresh.
func (c *Checker) lookup(key [sha256.Size]byte, now time.Time) (*verifyd.Account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[key]
	if !ok {
		return nil, false
	}
	if !now.Before(e.expires) {
		delete(c.cache, key)
		return nil, false
	}
	a := e.account
	return &a, true
}

// remember remembers a positive check. When the cache is full it first drops
// expired entries, then, if still full, an arbitrary one: a dropped entry
// costs one more check, never a wrong answer.
func (c *Checker) remember(key [sha256.Size]byte, a *verifyd.Account, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= c.maxCached {
		for k, e := range c.cache {
			if !now.Before(e.expires) {
				delete(c.cache, k)
			}
		}
		for k := range c.cache {
			if len(c.cache) < c.maxCached {
				break
			}
			delete(c.cache, k)
		}
	}
	c.cache[key] = cached{account: *a, expires: now.Add(c.ttl)}
}
