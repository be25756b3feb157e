"""Call events: one record per invocation of a model, algorithm, APP, cloud software or tool."""
