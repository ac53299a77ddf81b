package openapi

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDocumentIsValid(t *testing.T) {
	if _, err := Document(); err != nil {
		t.Fatal(err)
	}
}

func TestDocumented(t *testing.T) {
	f := func(method, path string, want bool) {
		t.Helper()
		got, err := Documented(method, path)
		if err != nil || got != want {
			t.Errorf("Documented(%s, %s) = %v, %v; want %v", method, path, got, err, want)
		}
	}
	f("GET", "/v1/history", true)
	f("DELETE", "/v1/history/:biz/:item_id", true)
	f("POST", "/v1/continue/:biz/:item_id/hide", true)
	f("PATCH", "/v1/history", false)
	f("GET", "/v1/nope", false)
	f("GET", "/debug/pprof/*any", true)
}

// TestDocsSelfContained: nothing in the repository points outside it (a
// clone has no sibling directories); the HTTP reference is docs/api.md and this
// document.
func TestDocsSelfContained(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "var", "bin", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".md", ".go", ".yaml", ".sh", ".lua", ".sql":
		default:
			if d.Name() != "Makefile" {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("../"+"shared")) {
			t.Errorf("%s refers to ../%s, which a clone of the repository does not have", path, "shared")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
