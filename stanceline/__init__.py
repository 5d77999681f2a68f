"""The `stanceline` command, above both packages: it stands on `training` and `serving`, neither on it."""
