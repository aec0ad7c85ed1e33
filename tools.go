//go:build tools

// This file keeps the module's chosen libraries in go.mod while the packages
// that use them are being written; it is never built.
package tools

import (
	_ "github.com/agext/levenshtein"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/go-git/go-git/v5"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/hashicorp/go-version"
	_ "github.com/hashicorp/hcl/v2"
	_ "github.com/hashicorp/hcl/v2/hclwrite"
	_ "github.com/mattn/go-isatty"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/prometheus/exporter-toolkit/web"
	_ "github.com/prometheus/procfs"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/zclconf/go-cty/cty/function/stdlib"
	_ "go.uber.org/goleak"
	_ "golang.org/x/mod/sumdb/dirhash"
	_ "golang.org/x/sys/unix"
)
