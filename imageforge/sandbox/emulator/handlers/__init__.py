"""The ARM resource handlers and the route table.

- ``routes``: every path, method and api-version family the emulator serves;
- ``common``: ids, lookups, input validation, paging, the PUT/DELETE long-running operations;
- ``resourcegroups`` (and ``teardown``, their contents' deletion), ``tags`` (the Tags API);
- ``galleries`` (galleries, image definitions), ``versions`` (image versions), with
  ``versionsource`` (their source), ``versionspec`` (their body) and ``replication`` (their
  background work);
- ``images`` (managed images), ``marketplace`` (the sandbox marketplace's image versions);
- ``vms`` (VM reads, DELETE), ``vmcreate`` (PUT), ``vmspec`` (what a PUT may ask for),
  ``vmpower`` (deallocate, generalize);
- ``network/``: virtual networks, subnets, NSGs, public IPs, NICs (see its docstring);
- ``operations`` (the LRO monitors), ``restart`` (what a restart resumes or fails).
- ``locks`` (management locks, and their enforcement on every route), ``sharing`` (a
  gallery's sharing profile and share action), ``authorization`` (role assignments),
  ``subscriptions`` (the caller's subscriptions and tenant).
"""
