package http

import (
	"errors"
	"time"

	"verifyd"
)

// Observer is told what the server did, so that an operator can count it
// (metrics.Metrics implements it). Its methods run on the request's
// goroutine, after the fact, and must be quick and never block. They are
// handed domain values so that the observer picks its own labels; it must
// never label by phone number or code.
type Observer interface {
	// Request is called once per request, with the route pattern that
	// matched ("unmatched" for none), the status answered and the time taken.
	Request(route string, status int, d time.Duration)
	// Created is called after a verification was committed (v.State is
	// Pending, or NotSent for a dead number).
	Created(v *verifyd.Verification)
	// Throttled is called when a send limit refused a create; limit is the
	// limit's name ("number", "prefix", ...), "" when it cannot be told.
	Throttled(limit string)
	// Validated is called after a validate changed v, with the status it
	// answered.
	Validated(v *verifyd.Verification, status verifyd.Status)
	// Cancelled is called after a DELETE finished a pending verification:
	// v.State is Cancelled, or Expired when its validity had ended first.
	Cancelled(v *verifyd.Verification)
}

// nopObserver is the observer of a server built without one.
type nopObserver struct{}

func (nopObserver) Request(string, int, time.Duration)              {}
func (nopObserver) Created(*verifyd.Verification)                   {}
func (nopObserver) Throttled(string)                                {}
func (nopObserver) Validated(*verifyd.Verification, verifyd.Status) {}
func (nopObserver) Cancelled(*verifyd.Verification)                 {}

// observer returns the configured Observer, or one that does nothing.
func (s *Server) observer() Observer {
	if s.cfg.Observer == nil {
		return nopObserver{}
	}
	return s.cfg.Observer
}

// refusingLimit names the limit behind err when err is a send-limit
// refusal.
func refusingLimit(err error) (name string, ok bool) {
	var e *verifyd.Error
	if !errors.As(err, &e) || e.Limit == "" {
		return "", false
	}
	return e.Limit, true
}
