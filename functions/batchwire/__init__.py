"""batchwire core: the decisions behind the four functions, as plain functions over data."""
