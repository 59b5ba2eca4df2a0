"""The model layer: value types, the App/Service vocabulary, host jobs, Site; no Pulumi."""
