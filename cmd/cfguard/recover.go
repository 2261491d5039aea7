package main

import (
	"context"

	"github.com/cfguard/cfguard/systemd/recovery"
)

// watch --recover restarts units through systemd's D-Bus API.
func init() {
	newRecoverer = func(ctx context.Context) (recovery.Recoverer, func(), error) {
		r, err := recovery.New(ctx)
		if err != nil {
			return nil, nil, err
		}
		return r, r.Close, nil
	}
}
