// Package docker stands in for Traefik's Docker and Swarm providers in the e2e tests' Traefik build
// (scripts/cluster/build-node.sh, docs/e2e.md): that build keeps only the Kubernetes providers, so
// this one keeps its configuration type (the static configuration refers to it) and refuses to start.
package docker

import (
	"errors"

	ptypes "github.com/traefik/paerser/types"
	"github.com/traefik/traefik/v3/pkg/config/dynamic"
	"github.com/traefik/traefik/v3/pkg/safe"
)

var errRemoved = errors.New("Docker and Swarm providers: not part of this Traefik build " +
	"(the e2e tests' build leaves it out, docs/e2e.md; use the upstream release)")

// Provider refuses to start (Docker and Swarm providers).
type Provider struct {
	HTTPClientTimeout ptypes.Duration `description:"Unused in this build." json:"httpClientTimeout,omitempty" toml:"httpClientTimeout,omitempty" yaml:"httpClientTimeout,omitempty"`
}

// Init always fails: the provider was left out of this build.
func (p *Provider) Init() error { return errRemoved }

// Provide always fails: the provider was left out of this build.
func (p *Provider) Provide(_ chan<- dynamic.Message, _ *safe.Pool) error { return errRemoved }

// SwarmProvider refuses to start (Docker and Swarm providers).
type SwarmProvider struct {
	RefreshSeconds    ptypes.Duration `description:"Unused in this build." json:"refreshSeconds,omitempty" toml:"refreshSeconds,omitempty" yaml:"refreshSeconds,omitempty"`
	HTTPClientTimeout ptypes.Duration `description:"Unused in this build." json:"httpClientTimeout,omitempty" toml:"httpClientTimeout,omitempty" yaml:"httpClientTimeout,omitempty"`
}

// Init always fails: the provider was left out of this build.
func (p *SwarmProvider) Init() error { return errRemoved }

// Provide always fails: the provider was left out of this build.
func (p *SwarmProvider) Provide(_ chan<- dynamic.Message, _ *safe.Pool) error { return errRemoved }
