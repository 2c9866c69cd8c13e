// Package logfmttest checks a program's log vocabulary from its tests: that
// each action, and each key, is declared once, and that no file outside the
// vocabulary, its tests included, makes a logfmt.Action or logfmt.Key of its
// own. A module's vocabulary test is one call:
//
//	func TestVocabulary(t *testing.T) {
//		logfmttest.CheckVocabulary(t, logfmttest.Module{
//			Path: "lotterycentral.example/client", Dir: "../..",
//			Vocab: "lotterycentral.example/client/internal/vocab",
//			MinConstants: 10, MinUses: 50,
//		})
//	}
//
// It is a package for tests only (like net/http/httptest): no binary links it.
package logfmttest

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
)

// Module is a Go module whose log vocabulary CheckVocabulary checks.
type Module struct {
	Path  string // the module's path, as its go.mod declares it
	Dir   string // its directory (the one holding go.mod), relative to the test's or absolute
	Vocab string // the import path of its vocabulary, a package of the module

	// A check that no longer resolves the logfmt types, or the vocabulary's
	// constants, would find nothing wrong, and pass: these minimums, set
	// somewhat under the module's real counts, tell that it still sees them
	// (a failure prints the counts it saw).
	MinConstants int // the vocabulary declares at least this many actions and keys
	MinUses      int // the module's other packages, tests included, use them at least this often

	// Glossary, if set, is a document (relative to the test's directory, or
	// absolute) that must name every action and key of the vocabulary in
	// backquotes: an operator reads what a line means there.
	Glossary string
}

// CheckVocabulary fails t if two of m's vocabulary constants of one type
// (two actions, or two keys) share a value, or if any file of m outside the
// vocabulary, test files included, makes a logfmt.Action or logfmt.Key from
// a string: by conversion, or by passing, returning, storing or declaring a
// constant where an Action or a Key goes. Every action and key a module logs,
// or a test waits for, comes from its vocabulary.
func CheckVocabulary(t *testing.T, m Module) {
	t.Helper()
	r, err := check(m)
	require.NoError(t, err)
	assert.Empty(t, r.duplicates, "%s: declared more than once", m.Vocab)
	assert.GreaterOrEqual(t, r.constants, m.MinConstants, "%s: the type check no longer sees the vocabulary's constants", m.Vocab)
	assert.Empty(t, r.violations, "an action or key not from %s", m.Vocab)
	assert.GreaterOrEqual(t, r.uses, m.MinUses, "%s: the type check no longer sees the vocabulary's uses", m.Path)
	if m.Glossary != "" {
		doc, err := os.ReadFile(m.Glossary)
		require.NoError(t, err)
		assert.Empty(t, missingFrom(string(doc), r.names), "%s: names %s does not explain", m.Vocab, m.Glossary)
	}
}

// missingFrom lists the names doc does not show in backquotes.
func missingFrom(doc string, names []string) []string {
	var missing []string
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			missing = append(missing, n)
		}
	}
	return missing
}

// report is what check found.
type report struct {
	duplicates []string // `Action "x": A, B`
	constants  int      // the vocabulary's actions and keys
	names      []string // their values, sorted, each once
	violations []string // "dir/file.go:line:col: expression", sorted
	uses       int      // uses of the vocabulary's constants outside it
}

// check type-checks m's vocabulary, then every other package of m, each with
// its test files.
func check(m Module) (report, error) {
	var r report
	if err := checkModuleFile(m); err != nil {
		return r, err
	}
	logfmtDir, err := logfmtSource(m.Dir)
	if err != nil {
		return r, err
	}
	c := newChecker(m, logfmtDir)
	vocab, err := c.Import(m.Vocab)
	if err != nil {
		return r, fmt.Errorf("the vocabulary %s: %w", m.Vocab, err)
	}
	r.duplicates = duplicatesOf(vocab, logfmtPath)
	consts := constsOf(vocab, logfmtPath)
	r.constants = len(consts)
	for _, k := range consts {
		r.names = append(r.names, constant.StringVal(k.Val()))
	}
	slices.Sort(r.names)
	r.names = slices.Compact(r.names)
	pkgs, err := c.modulePackages()
	if err != nil {
		return r, err
	}
	for _, pkg := range pkgs {
		info := newInfo()
		c.check(pkg.path, pkg.files, info)
		r.violations = append(r.violations, c.literals(info)...)
		r.uses += c.vocabUses(info)
	}
	slices.Sort(r.violations)
	return r, nil
}

// checkModuleFile makes sure m.Dir holds the module m.Path.
func checkModuleFile(m Module) error {
	if m.Path == "" || m.Dir == "" || m.Vocab == "" {
		return fmt.Errorf("logfmttest.Module %+v: Path, Dir and Vocab are required", m)
	}
	if m.Vocab != m.Path && !strings.HasPrefix(m.Vocab, m.Path+"/") {
		return fmt.Errorf("the vocabulary %s is not a package of the module %s", m.Vocab, m.Path)
	}
	f, err := os.Open(filepath.Join(m.Dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("the module %s: %w", m.Path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			if got := strings.Trim(strings.TrimSpace(rest), `"`); got != m.Path {
				return fmt.Errorf("%s declares the module %s, not %s", f.Name(), got, m.Path)
			}
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%s declares no module", f.Name())
}

// logfmtPath is the import path of the package that declares Action and Key.
var logfmtPath = reflect.TypeFor[logfmt.Action]().PkgPath()

// logfmtSource is the directory of logfmt's source: this package's parent,
// else (a build with -trimpath) where the go command finds it from moduleDir.
func logfmtSource(moduleDir string) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Dir(filepath.Dir(file))
		if _, err := os.Stat(filepath.Join(dir, "logfmt.go")); err == nil {
			return dir, nil
		}
	}
	cmd := exec.Command("go", "list", "-find", "-f", "{{.Dir}}", logfmtPath)
	cmd.Dir = moduleDir
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, exit.Stderr)
		}
		return "", fmt.Errorf("find the source of %s: go list: %w", logfmtPath, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// checker type-checks a module's packages from source. Only the types of
// logfmt, of the vocabulary and of the module's own packages matter here, so
// every other import is an empty package and the errors it causes are
// ignored. Build constraints are ignored too: a file behind a build tag (a
// test that needs Docker, say) is checked like any other.
type checker struct {
	m         Module
	logfmtDir string
	fset      *token.FileSet
	pkgs      map[string]*types.Package
}

func newChecker(m Module, logfmtDir string) *checker {
	return &checker{m: m, logfmtDir: logfmtDir, fset: token.NewFileSet(), pkgs: map[string]*types.Package{}}
}

// Import implements types.Importer.
func (c *checker) Import(importPath string) (*types.Package, error) {
	if p, ok := c.pkgs[importPath]; ok {
		return p, nil
	}
	var p *types.Package
	if dir, ok := c.sourceDir(importPath); ok {
		files, err := c.parseDir(dir, false)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no Go files in %s", dir)
		}
		p = c.check(importPath, files, nil)
	} else {
		p = types.NewPackage(importPath, packageName(importPath))
		p.MarkComplete()
	}
	c.pkgs[importPath] = p
	return p, nil
}

// newInfo is what check records for literals and vocabUses.
func newInfo() *types.Info {
	return &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}}
}

// check type-checks one package's files into info (if not nil), ignoring
// errors (see checker).
func (c *checker) check(importPath string, files []*ast.File, info *types.Info) *types.Package {
	conf := types.Config{Importer: c, Error: func(error) {}}
	p, _ := conf.Check(importPath, c.fset, files, info)
	return p
}

// sourceDir is where a package checked from source lives.
func (c *checker) sourceDir(importPath string) (string, bool) {
	if importPath == logfmtPath {
		return c.logfmtDir, true
	}
	if importPath == c.m.Path {
		return c.m.Dir, true
	}
	if rest, ok := strings.CutPrefix(importPath, c.m.Path+"/"); ok {
		return filepath.Join(c.m.Dir, filepath.FromSlash(rest)), true
	}
	return "", false
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// packageName guesses an import's name from its path: "math/rand/v2" is rand.
func packageName(importPath string) string {
	name := path.Base(importPath)
	if majorVersion.MatchString(name) && path.Dir(importPath) != "." {
		name = path.Base(path.Dir(importPath))
	}
	return name
}

func (c *checker) parseDir(dir string, tests bool) ([]*ast.File, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") && !tests {
			continue
		}
		f, err := parser.ParseFile(c.fset, name, nil, 0)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// actionOrKey reports whether t is the type logfmt.Action or logfmt.Key.
func actionOrKey(t types.Type) bool {
	n, ok := t.(*types.Named)
	if !ok || n.Obj().Pkg() == nil || n.Obj().Pkg().Path() != logfmtPath {
		return false
	}
	return n.Obj().Name() == "Action" || n.Obj().Name() == "Key"
}

// vocabConst is the vocabulary's constant e names, if it names one.
func (c *checker) vocabConst(info *types.Info, e ast.Expr) (*types.Const, bool) {
	var id *ast.Ident
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		id = e
	case *ast.SelectorExpr:
		id = e.Sel
	default:
		return nil, false
	}
	k, ok := info.Uses[id].(*types.Const)
	return k, ok && k.Pkg() != nil && k.Pkg().Path() == c.m.Vocab
}

// literals lists every constant expression of type Action or Key that is not
// one of the vocabulary's constants: a literal converted, passed or stored
// as one, or a constant built from one.
func (c *checker) literals(info *types.Info) []string {
	var found []string
	for e, tv := range info.Types {
		if tv.Value == nil || !actionOrKey(tv.Type) {
			continue
		}
		if _, ok := c.vocabConst(info, e); ok {
			continue
		}
		found = append(found, fmt.Sprintf("%s: %s", c.position(e.Pos()), types.ExprString(e)))
	}
	return found
}

// position is pos, its file named relative to the module's directory.
func (c *checker) position(pos token.Pos) string {
	p := c.fset.Position(pos)
	if rel, err := filepath.Rel(c.m.Dir, p.Filename); err == nil && !strings.HasPrefix(rel, "..") {
		p.Filename = filepath.ToSlash(rel)
	}
	return p.String()
}

// vocabUses counts the uses of the vocabulary's constants.
func (c *checker) vocabUses(info *types.Info) int {
	n := 0
	for e := range info.Types {
		if _, ok := c.vocabConst(info, e); ok {
			n++
		}
	}
	return n
}

// constsOf lists p's constants whose type is named Action or Key in typePkg.
func constsOf(p *types.Package, typePkg string) []*types.Const {
	var consts []*types.Const
	for _, name := range p.Scope().Names() {
		k, ok := p.Scope().Lookup(name).(*types.Const)
		if !ok {
			continue
		}
		if n, ok := k.Type().(*types.Named); ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == typePkg &&
			(n.Obj().Name() == "Action" || n.Obj().Name() == "Key") {
			consts = append(consts, k)
		}
	}
	return consts
}

// duplicatesOf lists, as `Type "value": Name1, Name2`, the values that more
// than one of p's Action constants, or more than one of its Key constants,
// share. An action and a key may share one ("tls").
func duplicatesOf(p *types.Package, typePkg string) []string {
	names := map[string][]string{}
	for _, k := range constsOf(p, typePkg) {
		if k.Val().Kind() != constant.String {
			continue // a type error (an untyped literal of another kind)
		}
		v := fmt.Sprintf("%s %q", k.Type().(*types.Named).Obj().Name(), constant.StringVal(k.Val()))
		names[v] = append(names[v], k.Name())
	}
	var dups []string
	for v, ns := range names {
		if len(ns) > 1 {
			slices.Sort(ns)
			dups = append(dups, v+": "+strings.Join(ns, ", "))
		}
	}
	slices.Sort(dups)
	return dups
}

// pkgFiles is one package of the module, test files included.
type pkgFiles struct {
	path  string
	files []*ast.File
}

// modulePackages parses every package of the module but the vocabulary's,
// each with its test files; an external test package (package x_test) is a
// package of its own. Directories the go command ignores (testdata, names
// starting with . or _) and nested modules are skipped.
func (c *checker) modulePackages() ([]pkgFiles, error) {
	var pkgs []pkgFiles
	err := filepath.WalkDir(c.m.Dir, func(dir string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if dir != c.m.Dir {
			if strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		rel, err := filepath.Rel(c.m.Dir, dir)
		if err != nil {
			return err
		}
		importPath := path.Join(c.m.Path, filepath.ToSlash(rel))
		if importPath == c.m.Vocab {
			return nil
		}
		files, err := c.parseDir(dir, true)
		if err != nil {
			return err
		}
		byName := map[string][]*ast.File{}
		var names []string
		for _, f := range files {
			if _, ok := byName[f.Name.Name]; !ok {
				names = append(names, f.Name.Name)
			}
			byName[f.Name.Name] = append(byName[f.Name.Name], f)
		}
		for _, name := range names {
			p := importPath
			if strings.HasSuffix(name, "_test") {
				p += "_test"
			}
			pkgs = append(pkgs, pkgFiles{p, byName[name]})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no packages in %s besides the vocabulary", c.m.Dir)
	}
	return pkgs, nil
}
