package wire

import "testing"

func TestKey(t *testing.T) {
	if got, want := Key("p:", 42, KindViewers), "p:{r42}:viewers"; got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
}
