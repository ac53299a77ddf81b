package history

import (
	"context"
	_ "embed"
	"strings"

	"github.com/redis/go-redis/v9"
)

// versionLua is put in front of every script that writes a user's keys.
// bump_version advances the user's version (meta field "v"), which the page
// cache compares (see pagecache.go): every change to the timeline, the
// progress hash or the meta flags must call it. A new counter starts at the
// server clock in microseconds rather than at 1, so versions never repeat
// after the keys are lost: a counter cannot outrun the clock, since each
// bump is a script call of its own.
const versionLua = `
local function bump_version()
  if redis.call('HINCRBY', KEYS[5], 'v', 1) == 1 then
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[5], 'v', t[1] .. string.rep('0', 6 - #t[2]) .. t[2])
  end
end
`

// The scripts each touch one user's keys only (one hash slot), so they run
// unchanged on Redis Cluster. Each returns what the Go side needs in one reply.
var (
	//go:embed apply.lua
	applySrc    string
	applyScript = redis.NewScript(versionLua + applySrc)

	//go:embed continue.lua
	continueSrc    string
	continueScript = redis.NewScript(continueSrc)

	//go:embed ops.lua
	opsSrc    string
	opsScript = redis.NewScript(versionLua + opsSrc)

	//go:embed warm.lua
	warmSrc    string
	warmScript = redis.NewScript(versionLua + warmSrc)

	touchScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], 'day')
local first = 0
if old ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'day', ARGV[1])
  first = 1
  if not old then first = 2 end -- a new user, or the marker was lost
end
return {first, redis.call('HEXISTS', KEYS[1], 'ps')}`)
)

// isNoScript reports whether err says the script cache lacks a script: after
// a Redis restart or failover, pipelined EVALSHA needs the script loaded again
// (redis.Script.Run does that by itself, pipelines do not).
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// evalShaPipelined runs one EVALSHA per element of args in one pipeline and
// retries once after loading the script when Redis reports NOSCRIPT. The
// scripts are idempotent, so running some of them twice is harmless.
func evalShaPipelined(ctx context.Context, rdb redis.UniversalClient, sc *redis.Script, n int, args func(i int) ([]string, []any)) ([]*redis.Cmd, error) {
	for attempt := 0; ; attempt++ {
		cmds := make([]*redis.Cmd, n)
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := 0; i < n; i++ {
				keys, argv := args(i)
				cmds[i] = sc.EvalSha(ctx, p, keys, argv...)
			}
			return nil
		})
		noScript := false
		for _, c := range cmds {
			if isNoScript(c.Err()) {
				noScript = true
				break
			}
		}
		if noScript && attempt == 0 {
			if err := sc.Load(ctx, rdb).Err(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return cmds, nil
	}
}
