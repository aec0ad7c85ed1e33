package spec

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions are the functions available in plugs.hcl: env(), file() and the
// string and collection functions of go-cty's stdlib.
func (p *Parser) functions(baseDir string) map[string]function.Function {
	getenv := p.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return map[string]function.Function{
		"env":        envFunc(getenv),
		"file":       fileFunc(baseDir),
		"abs":        stdlib.AbsoluteFunc,
		"ceil":       stdlib.CeilFunc,
		"chomp":      stdlib.ChompFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"compact":    stdlib.CompactFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"distinct":   stdlib.DistinctFunc,
		"element":    stdlib.ElementFunc,
		"flatten":    stdlib.FlattenFunc,
		"floor":      stdlib.FloorFunc,
		"format":     stdlib.FormatFunc,
		"formatlist": stdlib.FormatListFunc,
		"indent":     stdlib.IndentFunc,
		"join":       stdlib.JoinFunc,
		"jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"keys":       stdlib.KeysFunc,
		"length":     stdlib.LengthFunc,
		"lookup":     stdlib.LookupFunc,
		"lower":      stdlib.LowerFunc,
		"max":        stdlib.MaxFunc,
		"merge":      stdlib.MergeFunc,
		"min":        stdlib.MinFunc,
		"range":      stdlib.RangeFunc,
		"regex":      stdlib.RegexFunc,
		"replace":    stdlib.ReplaceFunc,
		"reverse":    stdlib.ReverseListFunc,
		"sort":       stdlib.SortFunc,
		"split":      stdlib.SplitFunc,
		"strrev":     stdlib.ReverseFunc,
		"substr":     stdlib.SubstrFunc,
		"title":      stdlib.TitleFunc,
		"tobool":     stdlib.MakeToFunc(cty.Bool),
		"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":      stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":   stdlib.MakeToFunc(cty.String),
		"trim":       stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"upper":      stdlib.UpperFunc,
		"values":     stdlib.ValuesFunc,
		"zipmap":     stdlib.ZipmapFunc,
	}
}

// envFunc returns the value of an environment variable, "" when unset.
func envFunc(getenv func(string) string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or an empty string when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(getenv(args[0].AsString())), nil
		},
	})
}

// maxFileFuncSize caps what file() reads: it is for tokens and small
// snippets, not for data.
const maxFileFuncSize = 1 << 20

// fileFunc reads a file relative to the deployment's folder.
func fileFunc(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the content of a file, relative to the folder of plugs.hcl.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			if !filepath.IsAbs(path) {
				path = filepath.Join(baseDir, path)
			}
			st, err := os.Stat(path)
			if err != nil {
				return cty.NilVal, fmt.Errorf("no file %s: %w", path, err)
			}
			if st.Size() > maxFileFuncSize {
				return cty.NilVal, fmt.Errorf("file %s is larger than 1 MiB", path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return cty.NilVal, fmt.Errorf("read %s: %w", path, err)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

// evalContext is the evaluation context of plugs.hcl expressions.
func (p *Parser) evalContext(baseDir string, vars map[string]cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: p.functions(baseDir),
	}
}
