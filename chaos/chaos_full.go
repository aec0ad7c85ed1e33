//go:build chaos

package chaos

// fullByDefault: the chaos build tag (make chaos) runs FullSize.
const fullByDefault = true
