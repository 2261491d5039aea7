package firewall

// Render returns the wanted table as `nft` text, in the layout of
// `nft list table inet <Table>`.
func Render(cfg Config, w Want) string { return "" }
