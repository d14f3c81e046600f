// Package deploy holds what runs the two-site world as containers (SPEC §6e): the
// image recipes under deploy/images (built by `make images` for an engine without a
// registry), the files docker-compose.two-gateways.yml mounts (deploy/compose), and a
// unit test that loads that compose file with compose-go and checks its topology.
package deploy
