"""Modules: rendering ``lilypad_module.json.tmpl`` with job inputs into a module spec.

* :mod:`lilypad.modules.template` - rendering with Go's own ``text/template``, through
  the Go helper that :mod:`lilypad.modules.gotemplate_helper` finds or builds
  (source: ``lilypad/modules/gotemplate/``);
* :mod:`lilypad.modules.inputs` - ``KEY=VALUE`` job inputs and their limits;
* :mod:`lilypad.modules.spec` - the rendered JSON spec (``machine``, ``job``, ...)
  and :func:`lilypad.modules.spec.render_spec`, which combines all three.

Nothing is imported here, so importing the package stays cheap.
"""

__all__: list[str] = []
