package http

import (
	"fmt"
	"testing"
	"time"

	"verifyd"
)

// A country pumped through many ranges, none of which holds enough sends
// for the watch to judge it alone, is blocked as a country: sends to a
// range of it the pump never used are refused, with the cooldown as their
// Retry-After, and sends to another country are not.
func TestConversionWatchBlocksAPumpedCountry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		for _, kv := range [][2]string{{"watch", "on"}, {"watch.minSends", "20"}, {"watch.cooldown", "2h"}} {
			if err := s.Set(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}))
	// Four ranges of 8 sends each, 32 in the country, none verified.
	for r := range 4 {
		e.pump(fmt.Sprintf("336123%d", r), 8, 0)
	}
	e.advance(verifyd.WatchDelay + time.Second)
	r := e.runWatch()
	if len(r.Started) != 1 || r.Started[0].Kind != verifyd.WatchCountry || r.Started[0].Subject != "FR" || r.Started[0].Sends != 32 {
		t.Fatalf("started %+v, want France", r.Started)
	}
	const fresh = "3361239" + "0000"
	wantThrottled(t, e.createAs("", "", "", fresh), "to", "watchCountry", 7200)
	e.create(`{"to":"447979080215","from":"Test"}`)

	e.advance(7199 * time.Second)
	wantThrottled(t, e.createAs("", "", "", fresh), "to", "watchCountry", 1)
	e.advance(2 * time.Second)
	e.create(`{"to":"` + fresh + `","from":"Test"}`)
}
