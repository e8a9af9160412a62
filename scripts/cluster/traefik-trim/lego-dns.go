// Package dns stands in for lego's DNS-01 provider registry in the e2e tests' Traefik build
// (scripts/cluster/build-node.sh, docs/e2e.md). Upstream's registry links every DNS provider lego supports,
// each with its cloud SDK: about 850 of Traefik's 2,500 packages. The tests use no ACME at all, so this
// build keeps lego (HTTP-01 and TLS-ALPN-01 still compile) and refuses every DNS-01 provider by name.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v4/challenge"
)

// NewDNSChallengeProviderByName has the signature of lego's registry; it always fails.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("ACME DNS-01 provider %q is not part of this Traefik build: "+
		"it was built for the e2e tests with no DNS-01 providers (use the upstream release)", name)
}
