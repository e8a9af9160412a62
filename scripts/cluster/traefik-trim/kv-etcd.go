// Package etcd stands in for Traefik's etcd KV provider in the e2e tests' Traefik build
// (scripts/cluster/build-node.sh, docs/e2e.md): that build keeps only the Kubernetes providers, so
// this one keeps its configuration type (the static configuration refers to it) and refuses to start.
package etcd

import (
	"errors"

	"github.com/traefik/traefik/v3/pkg/config/dynamic"
	"github.com/traefik/traefik/v3/pkg/safe"
)

var errRemoved = errors.New("etcd KV provider: not part of this Traefik build " +
	"(the e2e tests' build leaves it out, docs/e2e.md; use the upstream release)")

// Provider refuses to start (etcd KV provider).
type Provider struct{}

// Init always fails: the provider was left out of this build.
func (p *Provider) Init() error { return errRemoved }

// Provide always fails: the provider was left out of this build.
func (p *Provider) Provide(_ chan<- dynamic.Message, _ *safe.Pool) error { return errRemoved }
