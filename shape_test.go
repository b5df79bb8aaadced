package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The shape the code keeps, so that a reader follows a pass without zig-zagging: main
// wires and nothing else, no file of the core is long, no function is long, and
// GitHub's words stay in its adapter (ghpoll).
const (
	maxMainLines     = 350
	maxCoreFileLines = 500
	maxFuncLines     = 60
)

// githubWords are GitHub's words for a job's status and conclusion: ghpoll maps them
// to the core's types, and the core never spells them.
var githubWords = []string{"completed", "failure", "cancelled", "queued", "in_progress"}

// productionFiles returns the Go files that build the command (the fakes of the
// *test packages and the tests aside), under dir.
func productionFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(d.Name(), "test") || d.Name() == "testdata"):
			return filepath.SkipDir
		case !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go"):
			out = append(out, path)
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("no production files under %s: %v", dir, err)
	}
	return out
}

func TestShape_MainIsWiringAndTheCoreIsShort(t *testing.T) {
	main, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(main, []byte("\n")); n > maxMainLines {
		t.Errorf("main.go has %d lines, more than %d: it wires, and the command lives in reconcile/command", n, maxMainLines)
	}
	for _, path := range productionFiles(t, "reconcile") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(data, []byte("\n")); n > maxCoreFileLines {
			t.Errorf("%s has %d lines, more than %d", path, n, maxCoreFileLines)
		}
	}
}

func TestShape_NoFunctionIsLong(t *testing.T) {
	fset := token.NewFileSet()
	funcs := 0
	for _, path := range productionFiles(t, ".") {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				funcs++
				if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > maxFuncLines {
					t.Errorf("%s: %s has %d lines, more than %d", path, fd.Name.Name, n, maxFuncLines)
				}
			}
		}
	}
	if funcs < 100 {
		t.Fatalf("found %d functions: the walk missed the code", funcs)
	}
}

func TestShape_GitHubsWordsStayInGhpoll(t *testing.T) {
	fset := token.NewFileSet()
	for _, path := range productionFiles(t, "reconcile") {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && slices.Contains(githubWords, s) {
					t.Errorf("%s: GitHub's %q in the core: map it in ghpoll (ghpoll/words.go)", fset.Position(lit.Pos()), s)
				}
			}
			return true
		})
	}
}
