package breaker

import (
	"context"
	"errors"
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
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
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
