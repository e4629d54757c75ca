# boot.py: the Python half of mqttflow-python.so (workers/python/pyshim_main.c embeds it).
#
# What is easier said in Python than in C and runs once per module or per error: importing a
# callback module (a *.py path or a dotted name), resolving its function or task class,
# init()/fini(), finding where an exception happened, and the task-class call. The per-message
# path of a plain function never comes here.
import importlib
import importlib.util
import json
import os
import sys
import traceback

import mqttflow

_by_spec = {}  # module spec as configured -> module
_order = []  # modules in import order (init order; fini runs in reverse)
_inited = []


class Missing(Exception):
    """A function that the module does not define; file is the module's source."""

    def __init__(self, msg, file):
        super().__init__(msg)
        self.file = file


def setup(venv, paths):
    sys.argv = ["mqttflow-worker"]
    if venv:
        if not os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
            raise ImportError("runtime.python.venv %s: no pyvenv.cfg (not a virtual environment)"
                              % venv)
        sp = os.path.join(venv, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
        if not os.path.isdir(sp):
            raise ImportError("runtime.python.venv %s: no %s (made by another Python than %d.%d?)"
                              % (venv, sp, sys.version_info[0], sys.version_info[1]))
        import site
        before = list(sys.path)
        site.addsitedir(sp)
        added = [p for p in sys.path if p not in before]
        sys.path[:] = added + before
    for p in reversed(paths):
        sys.path.insert(0, p)


def _import(spec):
    mod = _by_spec.get(spec)
    if mod is not None:
        return mod
    if spec.endswith(".py"):
        folder = os.path.dirname(spec)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # its siblings import as they would under `python3 x.py`
        name = os.path.splitext(os.path.basename(spec))[0]
        if name in sys.modules:
            name = "_mqttflow_%d_%s" % (len(_by_spec), name)
        s = importlib.util.spec_from_file_location(name, spec)
        if s is None:
            raise ImportError("cannot import %s" % spec)
        mod = importlib.util.module_from_spec(s)
        sys.modules[name] = mod
        try:
            s.loader.exec_module(mod)
        except BaseException:
            del sys.modules[name]
            raise
    else:
        mod = importlib.import_module(spec)
    _by_spec[spec] = mod
    _order.append(mod)
    return mod


def resolve(spec, function):
    """(callable, is_task_class) for function of module spec."""
    mod = _import(spec)
    fn = getattr(mod, function, None)
    src = getattr(mod, "__file__", None) or spec
    if fn is None:
        raise Missing("no function %r in module %s" % (function, spec), src)
    if isinstance(fn, type):
        if not callable(getattr(fn, "process", None)):
            raise Missing("class %r of %s has no process() method (a task class needs one)"
                          % (function, spec), src)
        if not hasattr(fn, "publish_message"):
            # the Python framework's task classes inherit it; one without a base class (its
            # own example) gets it from here
            fn.publish_message = _publish_message
        return fn, True
    if not callable(fn):
        raise Missing("%r of %s is a %s, not a function" % (function, spec, type(fn).__name__),
                      src)
    return fn, False


def _publish_message(self, client_name, topic, payload):
    if not isinstance(payload, (bytes, bytearray, memoryview, str)):
        payload = json.dumps(payload)
    mqttflow._publish_inherit(client_name, topic, payload)


def run_task(cls, msg, task_config):
    """The Python framework's task style: cls(topic, payload, userdata, task_config).process().

    payload is what that framework gave: the parsed JSON when the payload is JSON, else the
    text."""
    try:
        payload = msg.json()
    except ValueError:
        payload = msg.payload.decode("utf-8", "replace")
    task = cls(msg.topic, payload, {"_client_name": msg.client_id}, task_config)
    d = getattr(task, "__dict__", None)
    if d is not None:
        # its example task class keeps nothing in __init__ and reads self.topic in process()
        d.setdefault("topic", msg.topic)
        d.setdefault("payload", payload)
        d.setdefault("task_config", task_config)
    return task.process()


def init_all():
    for mod in _order:
        if mod in _inited:
            continue
        f = getattr(mod, "init", None)
        if callable(f):
            r = f()
            if r is not None and not (type(r) is int and r == 0):
                raise RuntimeError("%s.init() returned %r: expected None or 0"
                                   % (mod.__name__, r))
        _inited.append(mod)


def fini_all():
    for mod in reversed(_inited):
        f = getattr(mod, "fini", None)
        if callable(f):
            try:
                f()
            except BaseException as e:
                mqttflow.log("ERROR", "%s.fini() raised:\n%s" % (mod.__name__, format_exc(e)))
    _inited.clear()


def format_exc(e):
    return "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip("\n")


def where(e):
    """(file, line, col, one-line message, traceback) of exception e."""
    tb = format_exc(e)
    if isinstance(e, SyntaxError) and e.filename:
        return (e.filename, e.lineno or 0, e.offset or 0,
                "%s: %s" % (type(e).__name__, e.msg), tb)
    if isinstance(e, Missing):
        return (e.file, 1, 1, str(e), "")
    msg = "%s: %s" % (type(e).__name__, e)
    # the import machinery's own frames say nothing about the user's code: a module that is
    # not found is then reported at the config's `module:` instead
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not f.filename.startswith("<") and "/importlib/" not in f.filename]
    if not frames:
        return ("", 0, 0, msg, tb)
    f = frames[-1]
    col = (f.colno + 1) if getattr(f, "colno", None) is not None else 1
    return (f.filename, f.lineno or 0, col, msg, tb)
