"""Provisioning: one module per role, templates beside them. Runs through the Provider
interface only, so the same code configures netns nodes and VMs."""
