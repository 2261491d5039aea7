package firewall

import (
	"context"
	"errors"
)

// Manager reads and writes cfguard's table in one network namespace.
type Manager struct {
	cfg Config
}

// New validates cfg and opens a lasting netlink connection.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg}, nil
}

// Close releases the netlink connection.
func (m *Manager) Close() error { return nil }

// Read returns cfguard's table as the kernel holds it.
func (m *Manager) Read(ctx context.Context) (State, error) {
	return State{}, errors.New("not implemented")
}

// Plan reads the kernel and returns what Apply would change; it writes nothing.
func (m *Manager) Plan(ctx context.Context, w Want) (Change, error) {
	return Change{}, errors.New("not implemented")
}

// Apply makes the kernel hold exactly w in one netlink transaction. When
// the kernel already does, it writes nothing and returns an empty Change.
func (m *Manager) Apply(ctx context.Context, w Want) (Change, error) {
	return Change{}, errors.New("not implemented")
}

// Remove deletes cfguard's table (and nothing else). existed is false when
// it was already gone.
func (m *Manager) Remove(ctx context.Context) (existed bool, err error) {
	return false, errors.New("not implemented")
}
