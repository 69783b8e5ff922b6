"""Figures drawn from result files (matplotlib, no pyplot state): fig5 (what a pool offers),
fig6 (the furthest target per space). The `figures` stage calls these functions."""
