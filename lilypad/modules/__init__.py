"""Modules: naming a module, fetching it and rendering its template into a spec.

* :mod:`lilypad.modules.reference` - module references (``cowsay:v0.0.1``,
  ``github.com/foo/bar:v1``, local paths), parsed without I/O;
* :mod:`lilypad.modules.resolve` - :class:`~lilypad.modules.resolve.ModuleResolver`:
  a reference to a commit and a checkout of the module's files (git cache,
  built-in modules), checked against an allowlist
  (:mod:`lilypad.protocol.allowlist`) before anything is fetched;
* :mod:`lilypad.modules.template` - rendering with Go's own ``text/template``, through
  the Go helper that :mod:`lilypad.modules.gotemplate_helper` finds or builds
  (source: ``lilypad/modules/gotemplate/``);
* :mod:`lilypad.modules.inputs` - ``KEY=VALUE`` job inputs and their limits;
* :mod:`lilypad.modules.spec` - the rendered JSON spec (``machine``, ``job``, ...)
  and :func:`lilypad.modules.spec.render_spec`, which combines the last three.

Nothing is imported here, so importing the package stays cheap.
"""

__all__: list[str] = []
