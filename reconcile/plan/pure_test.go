package plan

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pureImports are what the planner may import: computation on values it is given.
// No context, no clock, no file, network or process: every input is an argument.
var pureImports = []string{"bytes", "cmp", "encoding/json", "errors", "fmt", "hash/fnv", "maps", "math", "net/url",
	"reflect", "regexp", "sigs.k8s.io/yaml", "slices", "sort", "strconv", "strings", "time", "time/tzdata"}

// clockCalls read or wait on the clock: the planner is given its now.
var clockCalls = []string{"Now", "Since", "Until", "Sleep", "After", "Tick", "NewTimer", "NewTicker", "AfterFunc"}

func TestPlan_ImportsNothingThatDoesIOAndReadsNoClock(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := strings.Fields(string(out))
	if len(imports) == 0 {
		t.Fatal("go list named no imports: the check would pass on anything")
	}
	for _, imp := range imports {
		if !slices.Contains(pureImports, imp) {
			t.Errorf("package plan imports %s, which is not among the pure imports it may have", imp)
		}
	}
	files, _ := filepath.Glob("*.go")
	fs := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fs, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "time" && slices.Contains(clockCalls, sel.Sel.Name) {
					t.Errorf("%s: time.%s: the planner reads no clock; it is given now", fs.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}
