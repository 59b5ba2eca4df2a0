"""Allow-lists for the config values that reach a root shell, a unit, a mount or the
Docker daemon: each value must be one that is known good, and each list says where
it comes from upstream. Anything else is refused with the sentence its module gives.

- ``directories``: the jobs' data directories (DATA_ROOTS) and Docker's volume root;
- ``restic``: the storage back-ends' environment (STORAGE_ENV) and the repository
  forms each back-end parses (REPOSITORY_FORMS);
- ``daemon``: the Docker service the units require, GPU devices, json-file log options.
"""
