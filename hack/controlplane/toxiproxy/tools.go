//go:build tools

// Package tools records the Toxiproxy server command built by ../build.sh so
// that `go mod tidy` keeps its requirements in go.mod/go.sum. It is never compiled.
package tools

import (
	_ "github.com/Shopify/toxiproxy/v2/cmd/server"
)
