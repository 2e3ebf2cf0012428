"""The scenario library, shipped with the package as `mittelbau.scenarios`: TOML files of
registry overrides, run by path or by name (`mittelbau run baseline`,
`mittelbau run equal-budget/funding`)."""
