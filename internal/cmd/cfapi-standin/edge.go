package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

// parseEdge reads -edge HOST=STATUS:COUNT[:ORIGINSTATUS].
func parseEdge(v string) (cfapitest.EdgeRow, error) {
	bad := fmt.Errorf("want HOST=STATUS:COUNT[:ORIGINSTATUS], e.g. www.example.com=502:1204:502, got %q", v)
	host, rest, ok := strings.Cut(v, "=")
	parts := strings.Split(rest, ":")
	if !ok || host == "" || len(parts) < 2 || len(parts) > 3 {
		return cfapitest.EdgeRow{}, bad
	}
	edge, err1 := strconv.Atoi(parts[0])
	count, err2 := strconv.ParseInt(parts[1], 10, 64)
	origin := 0
	var err3 error
	if len(parts) == 3 {
		origin, err3 = strconv.Atoi(parts[2])
	}
	if err1 != nil || err2 != nil || err3 != nil || edge < 100 || edge > 599 || count < 0 || origin < 0 || origin > 599 {
		return cfapitest.EdgeRow{}, bad
	}
	return cfapitest.EdgeRow{Host: host, Edge: edge, Origin: origin, Count: count, SampleInterval: 1}, nil
}
