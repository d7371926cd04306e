package testbed

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RequireNFTables is RequireRoot plus a check that the nftables `nft` tool
// is installed (Debian: nftables); it skips loudly if not. Call it first in
// tests that use NewNATChain or SetLoss.
func RequireNFTables(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip(skipPrefix + "nftables `nft` not found (Debian: nftables): " + err.Error())
	}
}

// runNFT loads script with `nft -f -` inside n. One script is one atomic
// transaction: either all of it applies or none.
func runNFT(n *NS, script string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := n.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("in %s: nft -f -: %w: %s\nscript:\n%s", n.Name, err, strings.TrimSpace(string(out)), script)
	}
	return nil
}

// replaceTable returns nft commands that atomically replace table (e.g.
// "inet loss") by body, or just delete it when body is empty. Declaring
// the table first makes the delete valid whether or not it existed (nft
// 1.0 has no "destroy").
func replaceTable(table, body string) string {
	s := "table " + table + "\ndelete table " + table + "\n"
	if body != "" {
		s += "table " + table + " {\n" + body + "}\n"
	}
	return s
}
