package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"
)

// Leftovers lists a run's containers (running or not) and networks, found by label.
func (b *Backend) Leftovers(ctx context.Context, runDir string) ([]string, error) {
	ctrs, nets, err := b.labelled(ctx, runDir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range ctrs {
		out = append(out, "container "+c)
	}
	for _, n := range nets {
		out = append(out, "network "+n)
	}
	return out, nil
}

// Sweep force-removes a run's containers with their volumes, then its networks, and
// returns how many it found. No engine means nothing of a run can be left: 0.
func (b *Backend) Sweep(ctx context.Context, runDir string) (int, error) {
	defer b.forget(runDir)
	cli, err := b.engine(ctx)
	if err != nil {
		return 0, nil
	}
	ctrs, nets, err := b.labelled(ctx, runDir)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, id := range ctrs {
		if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", id, err))
		}
	}
	for _, id := range nets {
		if _, err := cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{}); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", id, err))
		}
	}
	return len(ctrs) + len(nets), errors.Join(errs...)
}

// labelled lists the ids of a run's containers and networks.
func (b *Backend) labelled(ctx context.Context, runDir string) (ctrs, nets []string, err error) {
	if runDir == "" {
		return nil, nil, nil
	}
	cli, err := b.engine(ctx)
	if err != nil {
		return nil, nil, err
	}
	f := client.Filters{}.Add("label", LabelRun+"="+runDir)
	cl, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, nil, fmt.Errorf("list the run's containers: %w", err)
	}
	for _, c := range cl.Items {
		ctrs = append(ctrs, c.ID[:12])
	}
	nl, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, nil, fmt.Errorf("list the run's networks: %w", err)
	}
	for _, n := range nl.Items {
		nets = append(nets, n.ID[:12])
	}
	return ctrs, nets, nil
}
