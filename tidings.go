// Package tidings holds the domain of Tidings, a small team's groupware in
// which every change reaches the people it concerns at once: users, projects,
// items, the events their changes make, and the messages that carry those
// events to each recipient.
//
// The package imports nothing from the module. Its interfaces are implemented
// by one package per technology (sqlstore, hub, http) and wired together in
// cmd/tidings.
package tidings

import "time"

// Clock returns the current time. Services take one so that tests can move
// time instead of sleeping.
type Clock func() time.Time

// Limits shared by the API and the store.
const (
	// MaxBatch is the most messages one answer carries.
	MaxBatch = 500

	// MaxBatchBytes bounds the JSON of one answer, its messages and what
	// wraps them; a single larger message goes alone.
	MaxBatchBytes = 1 << 20

	// MaxDetailLength is the most characters of an old or new value in a
	// message's details; a longer one is cut and ends with "…". The item's
	// page has the whole text.
	MaxDetailLength = 500

	// MaxPublishTTL is the longest lifetime a published message may ask for.
	MaxPublishTTL = 24 * time.Hour

	// MaxPublishAhead is how far in the future a published message may start.
	MaxPublishAhead = 30 * 24 * time.Hour

	// DefaultPageSize and MaxPageSize bound list answers.
	DefaultPageSize = 100
	MaxPageSize     = 500
)
