package recommend

import "strconv"

// ListenerKeys are the Redis keys radio keeps of a listener (listener.go:
// r{uid}:x, :a, :c), for the erasure of a user (package lifecycle), which
// deletes them whether or not this node runs the radio role. All share the
// hash slot {uid}.
func ListenerKeys(prefix string, uid uint64) []string {
	base := prefix + "r{" + strconv.FormatUint(uid, 10) + "}:"
	return []string{base + "x", base + "a", base + "c"}
}
