package ingest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/onair/onair/internal/migrate"
)

// TestBizEnumIsIngests: every biz Enum8 column of the migrations numbers
// the business lines as ingest does (records carry the number; ClickHouse
// reads it through the enum), so there is one list. It lives here, not in
// internal/migrate, because nothing under internal/ imports ingest.
func TestBizEnumIsIngests(t *testing.T) {
	want := []string{"'' = 0"}
	for i, name := range BizNames() {
		want = append(want, fmt.Sprintf("'%s' = %d", name, i+1))
	}
	ms, err := migrate.All()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\bbiz\s+Enum8\(([^)]*)\)`)
	seen := 0
	for _, m := range ms {
		for _, stmt := range m.SQL {
			for _, match := range re.FindAllStringSubmatch(stmt, -1) {
				seen++
				if got := strings.Join(strings.Fields(match[1]), " "); got != strings.Join(want, ", ") {
					t.Errorf("%s: biz Enum8(%s), want Enum8(%s)", m.Name, got, strings.Join(want, ", "))
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no biz Enum8 column found: the pattern is stale")
	}
}
