package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestAppend(t *testing.T) {
	f := func(in string) {
		t.Helper()
		want, _ := json.Marshal(in)
		if in == "\xff" {
			want = []byte(`"\ufffd"`)
		}
		if got := Append(nil, in); !bytes.Equal(got, want) {
			t.Fatalf("Append(%q) = %s, want %s", in, got, want)
		}
	}
	f("")
	f("ios-7f3a")
	f("a\"b\\c\n\t\r\x01<>&")
	f("héllo 世界")
	f("\xff")
}
