package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestREADMERolesAndUsage keeps README.md and the usage text in step with
// the code: the roles of README's "Roles" table and its dev/serve defaults
// are knownRoles and serveRoles; every command run dispatches and every
// loadtest subcommand loadtest.Main dispatches is in the usage text, and
// the usage names no other; README's commands table names every loadtest
// subcommand too.
func TestREADMERolesAndUsage(t *testing.T) {
	readme := readFile(t, "../../README.md")
	sec := section(t, readme, "## Roles")
	var roles []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z]+)` \\|").FindAllStringSubmatch(sec, -1) {
		roles = append(roles, m[1])
	}
	if !slices.Equal(roles, knownRoles) {
		t.Errorf("README's Roles table lists %v; the code knows %v (config.go knownRoles)", roles, knownRoles)
	}
	if want := "`onair dev` runs every role: `" + strings.Join(knownRoles, ",") + "`"; !strings.Contains(sec, want) {
		t.Errorf("README's Roles section lacks %q", want)
	}
	if want := "default `" + strings.Join(serveRoles, ",") + "`"; !strings.Contains(sec, want) {
		t.Errorf("README's Roles section lacks serve's %q", want)
	}
	if want := "(dev: `" + strings.Join(knownRoles, ",") + "`)"; !strings.Contains(readme, "`"+strings.Join(serveRoles, ",")+"` "+want) {
		t.Errorf("README's --roles row does not read `%s` %s", strings.Join(serveRoles, ","), want)
	}

	cmds := switchCases(t, "main.go", "run")
	for _, c := range cmds {
		if strings.HasPrefix(c, "-") || c == "help" {
			continue
		}
		if !strings.Contains(usage, "onair "+c) {
			t.Errorf("usage text lacks command %q", c)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^  onair ([a-z]+)`).FindAllStringSubmatch(usage, -1) {
		if !slices.Contains(cmds, m[1]) {
			t.Errorf("usage text names command %q, which run does not dispatch", m[1])
		}
	}
	subs := switchCases(t, "../../loadtest/main.go", "Main")
	subs = slices.DeleteFunc(subs, func(s string) bool { return strings.HasPrefix(s, "-") || s == "help" })
	m := regexp.MustCompile(`onair loadtest ([a-z0-9|]+)`).FindStringSubmatch(usage)
	if m == nil || !sameSet(strings.Split(m[1], "|"), subs) {
		t.Errorf("usage text lists loadtest %v; loadtest.Main dispatches %v", m, subs)
	}
	m = regexp.MustCompile(`bin/onair loadtest (run[a-z0-9\\|]+)`).FindStringSubmatch(readme)
	if m == nil || !sameSet(strings.Split(strings.ReplaceAll(m[1], `\|`, "|"), "|"), subs) {
		t.Errorf("README lists loadtest %v; loadtest.Main dispatches %v", m, subs)
	}
	for _, flag := range []string{"--pprof", "--retention", "--duration"} {
		if !strings.Contains(usage, flag) {
			t.Errorf("usage text lacks %s", flag)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text of the Markdown section starting at heading, up
// to the next heading of the same level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	rest := doc[i+len(heading)+2:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// switchCases returns the string cases of the first switch in function fn
// of file path: the commands a dispatcher knows.
func switchCases(t *testing.T, path, fn string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn {
			continue
		}
		ast.Inspect(fd, func(n ast.Node) bool {
			if len(out) > 0 {
				return false
			}
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			for _, st := range sw.Body.List {
				for _, e := range st.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						out = append(out, s)
					}
				}
			}
			return false
		})
	}
	if len(out) == 0 {
		t.Fatalf("no string switch in %s's %s", path, fn)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
