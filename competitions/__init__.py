"""Competition plug-ins: one sub-package per competition, each exposing `competition`."""
