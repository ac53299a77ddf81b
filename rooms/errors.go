package rooms

import (
	"errors"
	"fmt"
)

// Refusals the caller can act on are *refusal.Error (internal/refusal);
// the errors below are this package's own failures, which no caller can
// fix by changing the request.

// ErrNoProducer is returned by Danmaku and Gift on a Board without Events.
var ErrNoProducer = errors.New("board: no events producer configured")

// ErrUnavailable wraps failures of Redis or Kafka: nothing was accepted.
var ErrUnavailable = errors.New("board: dependency unavailable")

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}
