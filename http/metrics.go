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
	// Cancelled is called after a DELETE cancelled a pending verification.
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

// refusingLimit names the limit behind err when err is a send-limit refusal
// (ok false otherwise). The store's contract is to answer exactly
// l.Throttled(wait) of the refusing limit, and Throttled rounds wait up to
// the whole seconds it keeps in RetryAfter, so rebuilding each candidate's
// refusal from RetryAfter finds the one that matches in every field.
func refusingLimit(err error, limits []verifyd.Limit) (name string, ok bool) {
	var e *verifyd.Error
	if !errors.As(err, &e) || len(e.Failures) != 1 || e.Failures[0].Code != verifyd.FailThrottled {
		return "", false
	}
	for _, l := range limits {
		c := l.Throttled(e.RetryAfter)
		if c.Code == e.Code && c.Message == e.Message && c.RetryAfter == e.RetryAfter &&
			len(c.Failures) == 1 && c.Failures[0] == e.Failures[0] {
			return l.Name, true
		}
	}
	return "", true
}
