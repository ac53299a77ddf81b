package breaker

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisHook returns a go-redis hook that guards every command and pipeline
// of the client it is added to with b: while the circuit is open they fail
// at once with an *OpenError (set on each command); otherwise each outcome
// is reported to b. Add it before any hook that queues commands (such as
// internal/redisbatch), so that it sees them as the caller issued them.
func (b *Breaker) RedisHook() redis.Hook { return redisHook{b} }

type redisHook struct{ b *Breaker }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if setup(cmd) {
			return next(ctx, cmd)
		}
		done, err := h.b.Allow()
		if err != nil {
			cmd.SetErr(err)
			return err
		}
		err = next(ctx, cmd)
		done(redisFault(ctx, err))
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !setup(c) }) {
			return next(ctx, cmds)
		}
		done, err := h.b.Allow()
		if err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		err = next(ctx, cmds)
		done(redisFault(ctx, err))
		return err
	}
}

// setup reports the commands go-redis sends to set up a new connection,
// through the hooks of the command that needed it. They are part of that
// command's call: guarding them again would have the half-open probe
// refuse its own connection, and the circuit could never close.
func setup(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "auth", "select", "readonly", "client":
		return true
	}
	return false
}

// redisFault classifies a command's error. Redis answered when the error is
// a reply of its own (redis.Nil, a script error, WRONGTYPE): that is a
// healthy Redis, except for the replies of a server that cannot serve yet
// (LOADING after a restart, MASTERDOWN, BUSY with a runaway script).
// Network errors and timeouts are failures, unless the caller's own
// context was cancelled (the client left).
func redisFault(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil || errors.Is(err, ErrOpen) {
		return Excluded(err)
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "MASTERDOWN", "BUSY ", "TRYAGAIN", "CLUSTERDOWN"} {
			if strings.HasPrefix(msg, p) {
				return err
			}
		}
		return nil
	}
	return err
}
