package reconcile

import (
	"strings"

	"github.com/plugs-dev/plugs/instance"
)

// configDiff returns the changed lines between two rendered configs, shown
// in their redacted form. The diff runs over the real configs, so that a
// change of a secret value alone still shows its line — as "(sensitive)" on
// both sides — instead of an empty diff; it falls back to diffing the
// redacted texts when a config and its redacted form do not line up.
func configDiff(before, after *instance.Spec) []DiffLine {
	x, y := splitLines(before.Config), splitLines(after.Config)
	xs, ys := splitLines(before.Redacted), splitLines(after.Redacted)
	if len(x) != len(xs) || len(y) != len(ys) {
		return diffLines(xs, ys, xs, ys)
	}
	return diffLines(x, y, xs, ys)
}

// diffLines returns the lines removed from x and added in y, in order, by a
// longest-common-subsequence diff, rendered with the parallel lines of xs
// and ys. Configs are a few dozen lines, so the quadratic table is cheap.
func diffLines(x, y, xs, ys []string) []DiffLine {
	// Trim the common prefix and suffix: most changes touch one line.
	for len(x) > 0 && len(y) > 0 && x[0] == y[0] {
		x, y, xs, ys = x[1:], y[1:], xs[1:], ys[1:]
	}
	for len(x) > 0 && len(y) > 0 && x[len(x)-1] == y[len(y)-1] {
		x, y, xs, ys = x[:len(x)-1], y[:len(y)-1], xs[:len(xs)-1], ys[:len(ys)-1]
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []DiffLine
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] > lcs[i+1][j]):
			out = append(out, DiffLine{Kind: DiffAdded, Text: ys[j]})
			j++
		default:
			out = append(out, DiffLine{Kind: DiffRemoved, Text: xs[i]})
			i++
		}
	}
	return out
}

func splitLines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
