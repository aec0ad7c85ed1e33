//go:build !chaos

package chaos

// fullByDefault: without the chaos build tag the suite runs ShortSize.
const fullByDefault = false
