// Package consulcatalog stands in for Traefik's Consul Catalog provider in the e2e tests' Traefik build
// (scripts/cluster/build-node.sh, docs/e2e.md): that build keeps only the Kubernetes providers, so
// this one keeps its configuration type (the static configuration refers to it) and refuses to start.
package consulcatalog

import (
	"errors"

	"github.com/traefik/traefik/v3/pkg/config/dynamic"
	"github.com/traefik/traefik/v3/pkg/safe"
)

var errRemoved = errors.New("Consul Catalog provider: not part of this Traefik build " +
	"(the e2e tests' build leaves it out, docs/e2e.md; use the upstream release)")

// ProviderBuilder is the configuration entry; it builds one provider, which refuses to start.
type ProviderBuilder struct{}

// BuildProviders returns one provider whose Init reports that it was left out.
func (p *ProviderBuilder) BuildProviders() []*Provider { return []*Provider{{}} }

// Provider refuses to start (Consul Catalog provider).
type Provider struct{}

// Init always fails: the provider was left out of this build.
func (p *Provider) Init() error { return errRemoved }

// Provide always fails: the provider was left out of this build.
func (p *Provider) Provide(_ chan<- dynamic.Message, _ *safe.Pool) error { return errRemoved }
